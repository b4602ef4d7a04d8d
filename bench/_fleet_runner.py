"""The simulated side of bench_fleet_change.py, in its own process (so the controller's CPU is its own).

    python bench/_fleet_runner.py fleet URL IDENTITIES_FILE [--seed S] [--connect-timeout S]
    python bench/_fleet_runner.py baseline URL COUNT [--connect-timeout S]

Both modes talk JSON lines: events and answers on stdout, commands on stdin; logs go to stderr.

fleet
    One ``LatentCharger`` (a ``SimulatedCharger`` subclass; the simulator itself is unchanged) per
    identity in the file, started with ``Fleet``. Prints ``{"event": "ready", "online": k}`` once they
    are up (``"offline"`` lists those that are not). Latency is off until asked for; with it on, every
    call from the central system waits a random RTT (uniform between ``rtt_min`` and ``rtt_max``)
    before the charger answers it, and a share ``drop`` of the calls is lost on the way to the charger
    (never handled, never answered: the central system sees a timeout). Commands:

    ``{"cmd": "faults", "rtt_min": s, "rtt_max": s, "drop": p}``  set latency (all 0 = off)
    ``{"cmd": "mark"}``    remember where every charger's record of calls stands
    ``{"cmd": "counts"}``  calls since the mark: per station (ChangeConfiguration, GetConfiguration,
                           other calls received; calls lost), totals by action received and sent
    ``{"cmd": "quit"}``    stop the fleet and exit

baseline
    COUNT plain websockets clients (no OCPP layer): each answers every CALL frame it gets with a
    small CALLRESULT (``{"status": "Accepted"}`` for ChangeConfiguration, the key read back for
    GetConfiguration), after ``json.loads`` of the frame. Prints ``{"event": "ready", "connected": k}``;
    ``{"cmd": "quit"}`` closes them and exits.

Every wait is bounded: connecting by ``--connect-timeout``, the command loop by end of input, 10,000
commands and ``--max-seconds`` (default 1,800; the fleet stops and the runner exits then).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from _common import emit, raise_nofile, read_commands
from websockets.asyncio.client import ClientConnection, connect

from controller.hw.connection import Handler
from controller.hw.ocppj import Call
from controller.hw.sim.charger import SimulatedCharger
from controller.hw.sim.fleet import Fleet

MEASURED = ("ChangeConfiguration", "GetConfiguration")


@dataclass(slots=True)
class Latency:
    """Shared by every charger of the runner; flipped by the ``faults`` command."""

    rtt_min: float = 0.0
    rtt_max: float = 0.0
    drop: float = 0.0


class _LossyLink:
    """A websockets client connection that loses some incoming CALL frames (the rest passes through)."""

    def __init__(self, ws: ClientConnection, charger: LatentCharger) -> None:
        self._ws = ws
        self._charger = charger

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    async def send(self, message: str) -> None:
        await self._ws.send(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[str | bytes]:
        async for message in self._ws:
            if self._charger.loses(message):
                continue
            yield message


class LatentCharger(SimulatedCharger):
    """A simulated charger behind a slow, lossy link: answers wait a random RTT, some calls are lost."""

    def __init__(self, identity: str, url: str, latency: Latency, rnd: random.Random, **options: Any) -> None:
        super().__init__(identity, url, **options)
        self.latency = latency
        self.rnd = rnd
        self.lost = 0
        self._handlers = {action: self._delayed(handler) for action, handler in self._handlers.items()}

    def _delayed(self, inner: Handler) -> Handler:
        async def handler(call: Call) -> Mapping[str, Any]:
            lat = self.latency
            if lat.rtt_max > 0:
                await asyncio.sleep(self.rnd.uniform(lat.rtt_min, lat.rtt_max))
            return await inner(call)

        return handler

    def loses(self, message: str | bytes) -> bool:
        """True when this incoming frame is a CALL lost on the way (only while ``drop`` > 0)."""
        if self.latency.drop <= 0 or self.rnd.random() >= self.latency.drop:
            return False
        head = message[:4] if isinstance(message, str) else message[:4].decode("ascii", "replace")
        if not head.replace(" ", "").startswith("[2"):
            return False  # answers to the charger's own calls are not lost
        self.lost += 1
        return True

    async def _open(self) -> ClientConnection:
        ws = await super()._open()
        return cast(ClientConnection, _LossyLink(ws, self))


async def run_fleet(url: str, identities: list[str], seed: int, connect_timeout: float, max_seconds: float) -> None:
    latency = Latency()
    rnd = random.Random(seed)
    chargers = [
        LatentCharger(identity, url, latency, rnd, time_scale=1.0, reconnect_delay=1.0, call_timeout=10.0)
        for identity in identities
    ]
    fleet = Fleet(chargers, connect_concurrency=50)
    online = await fleet.start(timeout=connect_timeout)
    offline = [c.identity for c in chargers if not c.online]
    emit({"event": "ready", "online": online, "chargers": len(chargers), "offline": offline})
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_seconds):
                await serve_commands(chargers, latency, fleet)
    finally:
        await fleet.stop()
    emit({"event": "bye", "cpu": time.process_time()})


async def serve_commands(chargers: list[LatentCharger], latency: Latency, fleet: Fleet) -> None:
    marks: dict[str, tuple[int, int, int]] = {c.identity: (0, 0, 0) for c in chargers}
    async for command in read_commands():
        cmd = command.get("cmd")
        if cmd == "faults":
            latency.rtt_min = float(command.get("rtt_min", 0.0))
            latency.rtt_max = float(command.get("rtt_max", 0.0))
            latency.drop = float(command.get("drop", 0.0))
            emit({"ok": True})
        elif cmd == "mark":
            marks = {c.identity: (len(c.received), len(c.sent), c.lost) for c in chargers}
            emit({"ok": True, "cpu": time.process_time()})
        elif cmd == "counts":
            emit(counts_since(chargers, marks, fleet.online_count))
        elif cmd == "quit":
            return
        else:
            emit({"ok": False, "error": f"unknown command {cmd!r}"})


def counts_since(
    chargers: list[LatentCharger], marks: Mapping[str, tuple[int, int, int]], online: int
) -> dict[str, Any]:
    received: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    per_station: dict[str, list[int]] = {}
    for c in chargers:
        r0, s0, l0 = marks[c.identity]
        got = Counter(call.action for call in c.received[r0:])
        received.update(got)
        sent.update(call.action for call in c.sent[s0:])
        measured = [got[action] for action in MEASURED]
        per_station[c.identity] = [*measured, sum(got.values()) - sum(measured), c.lost - l0]
    return {
        "ok": True,
        "online": online,
        "per_station": per_station,
        "received": dict(received),
        "sent": dict(sent),
        "cpu": time.process_time(),
    }


GET_CONFIGURATION_REPLY = {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "600"}]}


async def run_baseline(url: str, count: int, connect_timeout: float, max_seconds: float) -> None:
    gate = asyncio.Semaphore(50)
    clients: list[ClientConnection] = []

    async def answer(ws: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                frame = json.loads(message)
                reply = GET_CONFIGURATION_REPLY if frame[2] == "GetConfiguration" else {"status": "Accepted"}
                await ws.send(json.dumps([3, frame[1], reply], separators=(",", ":")))

    async def one() -> None:
        async with gate:
            ws = await connect(url, compression=None, proxy=None, open_timeout=connect_timeout)
            clients.append(ws)

    async with asyncio.timeout(connect_timeout):
        await asyncio.gather(*(one() for _ in range(count)))
    tasks = [asyncio.create_task(answer(ws)) for ws in clients]
    emit({"event": "ready", "connected": len(clients)})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max_seconds):
            async for command in read_commands():
                if command.get("cmd") == "quit":
                    break
    for ws in clients:
        with contextlib.suppress(Exception):
            await ws.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    emit({"event": "bye", "cpu": time.process_time()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("fleet", "baseline"))
    ap.add_argument("url")
    ap.add_argument("target", help="fleet: a file of identities, one a line; baseline: the number of clients")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="stop and exit after this long in any case")
    args = ap.parse_args(argv)
    raise_nofile()  # a runner may hold thousands of sockets
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    if args.mode == "fleet":
        identities = [line.strip() for line in Path(args.target).read_text().splitlines() if line.strip()]
        asyncio.run(run_fleet(args.url, identities, args.seed, args.connect_timeout, args.max_seconds))
    else:
        asyncio.run(run_baseline(args.url, int(args.target), args.connect_timeout, args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
