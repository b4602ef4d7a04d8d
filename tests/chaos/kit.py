"""Shared pieces of the fault tests: a small fleet repository, convergence checks, sabotage of a simulated
charger's answers, and the `chargeops run` child process.

Everything runs on loopback with short real timeouts; every wait is bounded (`wait_until`, `run`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from controller.hw.ocppj import Call, parse_datetime
from controller.hw.server import ServerSettings
from controller.hw.sim.connectors import ReceivedCall
from controller.hw.simulator import SimulatedCharger
from controller.runtime.reconcile import ReconcileSettings
from controller.runtime.status import Sync
from controller.store.api import Store
from controller.store.records import TransactionStatus
from tests.config.ownerrepo import Doc, card, group, owner, profile, station
from tests.integration.harness import Harness

ONE_WAVE = {"rollout": {"waves": [100]}}
FAST_SERVER = ServerSettings(port=0, call_timeout=1.0)
FAST_RECONCILE = ReconcileSettings(call_timeout=1.0, retry_base=0.1, retry_max=0.8)


def fleet_repo(names: list[str], interval: int, cards: int = 2, **owner_spec: Any) -> list[Doc]:
    """Stations with a local list (offline authorization) and a profile setting MeterValueSampleInterval."""
    return [owner(**{**ONE_WAVE, **owner_spec}),
            group("drivers", *(card(f"CARD-{i:04}", f"drv-{i}") for i in range(cards))),
            profile("fleet", {"ocppConfiguration": {"MeterValueSampleInterval": interval}},
                    selector={"labels": {"fleet": "a"}}),
            *(station(n, labels={"fleet": "a"}, offlineAuthorization=True) for n in names)]


def synced(h: Harness, revision: str, *identities: str) -> bool:
    for identity in identities:
        st = h.reconciler.status.get(identity.upper())
        if st is None or st.sync is not Sync.SYNCED or st.last_applied_revision != revision:
            return False
    return True


# --------------------------------------------------------------------------------------- sabotage

Effect = Callable[[SimulatedCharger, Call, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


class Sabotage:
    """Wraps a simulated charger's answers to the central system's calls with a misbehaviour while `on`.

    The simulator's `Faults` switches cover late answers and refusals; effects that need the answer
    itself (answer twice, die before answering) wrap its handler table, the same one its connection
    dispatches to. `effect(cp, call, answer)` returns what the charger answers (or never returns).
    """

    def __init__(self, cp: SimulatedCharger, effect: Effect, actions: frozenset[str] | None = None) -> None:
        self.cp = cp
        self.effect = effect
        self.on = False
        self.triggered = 0
        table = cp._handlers  # the simulator's handler table, shared with every connection it opens
        for action, handler in list(table.items()):
            if actions is None or action in actions:
                table[action] = self._wrap(handler)

    def _wrap(self, handler: Callable[[Call], Awaitable[Mapping[str, Any]]]) -> Any:
        async def wrapped(call: Call) -> Mapping[str, Any]:
            answer = await handler(call)
            if not self.on:
                return answer
            self.triggered += 1
            return await self.effect(self.cp, call, answer)

        return wrapped


async def hang_up(cp: SimulatedCharger, call: Call, answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call was carried out, then the network died before the answer left (mid-apply)."""
    await cp.drop_connection()
    await asyncio.sleep(30)  # cancelled when the connection goes
    return answer


async def answer_twice(cp: SimulatedCharger, call: Call, answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """Answer, then send the same CALLRESULT again a moment later."""
    import json

    frame = json.dumps([3, call.message_id, dict(answer)])
    cp.spawn(cp.send_raw(frame), delay=0.02)
    return answer


async def reboot_losing_settings(cp: SimulatedCharger, call: Call, answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """Power-cycle in the middle of the call and come back with factory defaults (no answer)."""
    cp.spawn(cp.reboot(lose_settings=True))
    await asyncio.sleep(30)  # cancelled when the connection goes
    return answer


async def garbage(cp: SimulatedCharger, call: Call, answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """Send six malformed frames before every answer (the central system tolerates ten per connection)."""
    await cp.send_garbage(6)
    return answer


def received_since(cp: SimulatedCharger, mark: int, action: str) -> list[ReceivedCall]:
    return [c for c in cp.received[mark:] if c.action == action]


# ------------------------------------------------------------------------------- the controller process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_controller(repo: Path, db: Path, port: int, *, api_port: int | None = None,
                     token: str = "chaos-token", log: Path | None = None) -> subprocess.Popen[bytes]:
    """`chargeops run <repo>` as a child process (its log to `log`, or discarded)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CHARGEOPS_API_TOKEN": token}
    args = [sys.executable, "-m", "controller.cli", "run", str(repo), "--db", str(db), "--port", str(port),
            "--log-level", "warning"]
    if api_port is not None:
        args += ["--api-port", str(api_port)]
    if log is None:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=out)


def stop_controller(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------- transaction bookkeeping


async def drive(cp: SimulatedCharger, cards: tuple[str, str], stop: asyncio.Event, turns: int = 40) -> None:
    """A driver at each connector in turn: plug, card, charge a moment, card again, unplug (bounded)."""
    for turn in range(turns):
        if stop.is_set():
            return
        connector = 1 + turn % 2
        tag = cards[turn % 2]
        await cp.plug_in(connector)
        if await cp.present_card(tag, connector) == "Accepted":
            await asyncio.sleep(0.25)  # meter values meanwhile
            await cp.present_card(tag, connector)  # the same card again stops the session
        await cp.unplug(connector)
        await asyncio.sleep(0.05)


async def end_sessions(cps: list[SimulatedCharger], timeout: float = 15) -> None:
    """Stop every running session, unplug, and wait until every charger delivered its queue."""
    for cp in cps:
        for connector in range(1, cp.model.connectors + 1):
            await cp.stop_transaction(connector)
            await cp.unplug(connector)
    for cp in cps:
        await cp.drained(timeout)


async def nothing_lost_nothing_twice(store: Store, cps: list[SimulatedCharger], *,
                                     billing: bool = False) -> tuple[int, int, int]:
    """Compare what the chargers were answered with what the store holds (after their queues drained).

    Every answered StartTransaction exists once under the id it was given (a re-sent one got the same id);
    the station has no other row; every answered StopTransaction is recorded on it, as first sent; no
    orphan; every sample of an answered MeterValues is stored; with `billing`, every answered stop has its
    billing record, once (versions 1..n, never a version twice). Returns (sessions, started offline,
    samples).
    """
    rows = await store.list_transactions(limit=100_000)
    assert not [t for t in rows if t.status is TransactionStatus.ORPHAN]
    by_id = {t.id: t for t in rows}
    sessions = samples = 0
    for cp in cps:
        assert not cp.tx_queue, f"{cp.identity} still holds {len(cp.tx_queue)} messages"
        assert not cp.discarded, f"{cp.identity} gave up on messages: {cp.discarded}"
        assert all(tx.transaction_id is not None for tx in cp.transactions)
        starts: dict[tuple[Any, ...], int] = {}
        for sent in cp.sent_calls("StartTransaction"):
            if sent.reply is not None:
                p = sent.payload
                key = (p["connectorId"], p["idTag"], p["meterStart"], p["timestamp"])
                assert starts.setdefault(key, sent.reply["transactionId"]) == sent.reply["transactionId"]
        assert len(set(starts.values())) == len(starts)  # one id per session, never shared
        mine = [t for t in rows if t.station == cp.identity]
        assert len(mine) == len(starts), f"{cp.identity}: {len(mine)} rows for {len(starts)} sessions"
        for (connector, tag, meter_start, timestamp), tx_id in starts.items():
            tx = by_id[tx_id]
            assert (tx.station, tx.connector_id, tx.id_tag, tx.meter_start, tx.start_timestamp) == (
                cp.identity, connector, tag, meter_start, timestamp)
        sessions += len(starts)
        first_stop: dict[int, dict[str, Any]] = {}
        for sent in cp.sent_calls("StopTransaction"):
            if sent.reply is not None:
                first_stop.setdefault(sent.payload["transactionId"], sent.payload)
        assert set(first_stop) == set(starts.values())  # every session ended, and its end is recorded
        for tx_id, payload in first_stop.items():
            tx = by_id[tx_id]
            assert tx.status is TransactionStatus.STOPPED
            assert (tx.meter_stop, tx.stop_timestamp) == (payload["meterStop"], payload["timestamp"])
            if billing:
                versions = [r.version for r in await store.billing_records(tx_id)]
                assert versions and versions == list(range(1, len(versions) + 1)), (tx_id, versions)
        stored = {(parse_datetime(m.timestamp), m.value, m.transaction_id)
                  for m in await store.list_meter_values(station=cp.identity)}
        for sent in cp.sent_calls("MeterValues"):
            if sent.reply is None:
                continue
            for mv in sent.payload["meterValue"]:
                for sv in mv["sampledValue"]:
                    sample = (parse_datetime(mv["timestamp"]), sv["value"], sent.payload.get("transactionId"))
                    assert sample in stored, (cp.identity, sample)
                    samples += 1
    offline = sum(1 for cp in cps for tx in cp.transactions if tx.offline)
    return sessions, offline, samples
