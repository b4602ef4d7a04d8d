"""A real central system on localhost port 0, a real SQLite store in a tmp dir, and simulated chargers.

Integration tests drive real websockets end to end; nothing is mocked. `run()` bounds every scenario in
time and checks that no asyncio task leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from controller.config import DesiredState
from controller.hw.server import CentralSystem, ServerSettings, utc_now
from controller.hw.simulator import SimulatedCharger
from controller.runtime.reconcile import FleetReconciler, ReconcileSettings
from controller.runtime.state import DesiredHolder
from controller.store.sqlite import SqliteStore
from tests.config.ownerrepo import Doc, load
from tests.hw.kit import run

__all__ = ["Harness", "calls_to", "chargers", "csms", "desired_of", "run", "wait_until"]


def calls_to(obj: Any, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Record every call of `obj`'s coroutine method `name` from now on (arguments as given; the real method
    still runs): e.g. that an answer did not wait for a store read."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    method = getattr(obj, name)

    async def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return await method(*args, **kwargs)

    setattr(obj, name, recorded)
    return calls


def desired_of(*docs: Doc) -> DesiredState:
    result = load(*docs)
    assert result.desired is not None, [d.message for d in result.diagnostics]
    return result.desired


@dataclasses.dataclass
class Harness:
    central: CentralSystem
    store: SqliteStore
    holder: DesiredHolder
    reconciler: FleetReconciler
    tmp: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.central.port}/ocpp"

    def charger(self, identity: str, password: str | None = None, **kw: Any) -> SimulatedCharger:
        kw.setdefault("time_scale", 0.01)
        kw.setdefault("reconnect_delay", 0.05)
        kw.setdefault("call_timeout", 5.0)
        return SimulatedCharger(identity, self.url, password, **kw)


@contextlib.asynccontextmanager
async def csms(tmp: Path, desired: DesiredState, *, env: Mapping[str, str] | None = None,
               settings: ServerSettings | None = None, db: str = "chargeops.db",
               reconcile: ReconcileSettings | None = None) -> AsyncIterator[Harness]:
    holder = DesiredHolder(desired)
    store = await SqliteStore.open(tmp / db, owner=desired.owner.name)
    box: list[FleetReconciler] = []
    central = CentralSystem(holder, store, settings or ServerSettings(port=0, call_timeout=3.0), env=env or {},
                            on_connect=lambda identity, reason: box[0].enqueue(identity, reason))
    reconciler = FleetReconciler(holder, store, central.port_for, utc_now,
                                 reconcile or ReconcileSettings(call_timeout=3.0, retry_base=0.2, retry_max=2.0),
                                 env=env or {}, tls=central.settings.tls)
    reconciler.sessions_of = central.sessions.connectors_busy
    reconciler.connected_since = central.connected_since
    box.append(reconciler)
    await reconciler.start()
    await central.start()
    try:
        yield Harness(central, store, holder, reconciler, tmp)
    finally:
        await central.stop()
        await reconciler.close()
        await store.close()


@contextlib.asynccontextmanager
async def chargers(h: Harness, names: list[str]) -> AsyncIterator[dict[str, SimulatedCharger]]:
    """Simulated chargers for `names` (upper-cased identities), started, and stopped on the way out."""
    cps = {n.upper(): h.charger(n.upper()) for n in names}
    for cp in cps.values():
        await cp.start()
    try:
        yield cps
    finally:
        for cp in cps.values():
            await cp.stop()


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    async with asyncio.timeout(timeout):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(what)
