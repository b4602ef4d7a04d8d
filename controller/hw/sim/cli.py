"""``chargeops simulate``: run a fleet of simulated chargers against a central system.

Role: argument parsing, password loading and a random driver activity loop over ``Fleet``. Boundary:
no protocol logic. Passwords never come from the command line: ``--password-from FILE`` holds lines
``IDENTITY PASSWORD`` (``*`` for every other station; ``#`` comments), or set CHARGEOPS_SIM_PASSWORD.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.hw.sim.charger import SimulatedCharger
from controller.hw.sim.fleet import Fleet, identities_for
from controller.hw.sim.model import MODELS


@dataclass
class ActivityStats:
    started: int = 0
    refused: int = 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargeops simulate", description="Run simulated OCPP 1.6J chargers.")
    parser.add_argument("--url", required=True, help="central system URL without the identity, ws://host:port/ocpp")
    parser.add_argument("--count", type=int, default=1, help="number of chargers (default 1)")
    parser.add_argument("--prefix", default="SIM-", help="identity prefix: PREFIX0001, PREFIX0002...")
    parser.add_argument("--identities", help="comma-separated identities, or @FILE with one per line")
    parser.add_argument("--password-from", type=Path, help="file of 'IDENTITY PASSWORD' lines ('*' = default)")
    parser.add_argument("--model", choices=sorted(MODELS), default="basic")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 = until interrupted")
    parser.add_argument("--session-rate", type=float, default=1.0, help="sessions per charger per hour")
    parser.add_argument("--cards", default="", help="comma-separated idTags drivers use (default: generated)")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=1.0, help="protocol seconds -> real seconds factor")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    return parser


def read_identities(spec: str | None, count: int, prefix: str) -> list[str]:
    if not spec:
        return identities_for(count, prefix)
    if spec.startswith("@"):
        lines = Path(spec[1:]).read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [part.strip() for part in spec.split(",") if part.strip()]


def read_passwords(path: Path | None) -> dict[str, str]:
    passwords: dict[str, str] = {}
    default = os.environ.get("CHARGEOPS_SIM_PASSWORD")
    if default:
        passwords["*"] = default
    if path is None:
        return passwords
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(None, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected 'IDENTITY PASSWORD'")
        passwords[parts[0]] = parts[1].strip()
    return passwords


async def drive(
    charger: SimulatedCharger, rate_per_hour: float, cards: Sequence[str], rng: random.Random, stats: ActivityStats
) -> None:
    """Random driver activity: plug, card, charge a while, card again, unplug."""
    if rate_per_hour <= 0 or not cards:
        return
    scale = charger.time_scale
    while True:
        await asyncio.sleep(rng.expovariate(rate_per_hour / 3600) * scale)
        free = [cid for cid, c in charger.connectors.items() if cid > 0 and c.idle and not c.plugged]
        if not free:
            continue
        connector_id, card = rng.choice(free), rng.choice(list(cards))
        await charger.plug_in(connector_id)
        status = await charger.present_card(card, connector_id)
        if status == "Accepted":
            stats.started += 1
            await asyncio.sleep(rng.uniform(600, 3600) * scale)
            if charger.connectors[connector_id].transaction is not None:
                await charger.present_card(card, connector_id)
        else:
            stats.refused += 1
        await asyncio.sleep(30 * scale)
        await charger.unplug(connector_id)


async def _simulate(args: argparse.Namespace, identities: list[str], passwords: dict[str, str]) -> int:
    rng = random.Random(args.seed)
    cards = [c.strip() for c in args.cards.split(",") if c.strip()] or [f"CARD{n:04d}" for n in range(1, 51)]
    fleet = Fleet.build(
        args.url,
        identities=identities,
        passwords=passwords,
        model=args.model,
        connect_concurrency=args.connect_concurrency,
        time_scale=args.time_scale,
    )
    stats = ActivityStats()
    drivers: list[asyncio.Task[None]] = []
    try:
        online = await fleet.start(timeout=30.0)
        print(f"{online}/{len(fleet)} chargers online", flush=True)
        drivers = [asyncio.create_task(drive(c, args.session_rate, cards, rng, stats)) for c in fleet]
        if args.duration > 0:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    finally:
        for task in drivers:
            task.cancel()
        for task in drivers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await fleet.stop()
        discarded = sum(len(c.discarded) for c in fleet)
        print(
            f"sessions started {stats.started}, refused {stats.refused}, transaction messages discarded {discarded}",
            flush=True,
        )
    return 0 if fleet.chargers and any(c.connect_count for c in fleet) else 1


def simulate_main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``chargeops simulate``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        identities = read_identities(args.identities, args.count, args.prefix)
        passwords = read_passwords(args.password_from)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not identities:
        print("error: no identities to simulate", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_simulate(args, identities, passwords))
    except KeyboardInterrupt:
        return 130
