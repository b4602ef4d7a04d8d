"""Races between a look in flight and what happens meanwhile (found under CPU load, where they made the canary
rollout test fail about one run in fifteen). Each test forces its interleaving by delaying one real store
read; nothing is mocked: the real store, central system, websockets and simulated chargers run."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

import controller.runtime.reconcile as reconcile_module
from controller.runtime.reconcile import FleetReconciler
from controller.runtime.rollout import Rollout
from tests.config.ownerrepo import Doc, owner, profile, station

from .harness import chargers, csms, desired_of, run, wait_until
from .test_reconcile import changes, synced

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def delayed(real: F, seconds: float, when: Callable[[tuple[Any, ...]], bool]) -> F:
    """`real`, whose result is returned `seconds` late when `when(args)` (the read itself happens at once)."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if when(args):
            await asyncio.sleep(seconds)
        return result

    return wrapper  # type: ignore[return-value]


def repo(names: list[str], hb: int, **rollout: Any) -> list[Doc]:
    return [owner(rollout=rollout or {"waves": [100]}),
            profile("all", {"ocppConfiguration": {"HeartbeatInterval": hb}}, selector={"labels": {"x": "y"}}),
            *(station(n, labels={"x": "y"}) for n in names)]


def test_refusals_forgotten_while_a_look_loads_the_bookkeeping_stay_forgotten(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restarted controller's first look loads a station's bookkeeping (still holding a refusal) while an
    operator's `forget_refusals` loads, clears and saves it: the look must not put its older copy back, or
    the refused change is never tried again (the station stalls on a refusal the store no longer holds)."""
    v1 = desired_of(*repo(["s-0"], 300))

    async def scenario() -> None:
        async with csms(tmp_path, v1) as h, h.charger("S-0") as cp:
            await wait_until(lambda: synced(h, v1.revision, "S-0"), 15, "v1 synced")
            cp.faults.reject_calls = True
            v2 = desired_of(*repo(["s-0"], 60))
            assert h.holder.offer(v2, v2.revision)
            h.reconciler.on_revision()
            await wait_until(lambda: h.reconciler.status["S-0"].stalled, 10, "refused")
            cp.faults.reject_calls = False
            await h.reconciler.close()
            loads: list[str] = []

            def first_load(args: tuple[Any, ...]) -> bool:
                loads.append(args[1])
                return len(loads) == 1  # the look's load (it comes first) returns late

            monkeypatch.setattr(reconcile_module, "load_bookkeeping",
                                delayed(reconcile_module.load_bookkeeping, 0.5, first_load))
            fresh = FleetReconciler(h.holder, h.store, h.central.port_for, h.reconciler.clock,
                                    h.reconciler.settings, env={})
            h.reconciler = fresh
            try:
                await fresh.start()  # takes the revision: a look of S-0 starts loading its bookkeeping
                await wait_until(lambda: len(loads) == 1, 5, "the look loading")
                await fresh.forget_refusals("S-0")  # loads (at once), clears and saves while the look waits
                await wait_until(lambda: synced(h, v2.revision, "S-0"), 10,
                                 "v2 applied after the refusal was forgotten")
                assert [c["value"] for c in changes(cp, "HeartbeatInterval")] == ["60", "60"]  # refused, then taken
                assert cp.config.get("HeartbeatInterval") == "60"
            finally:
                await fresh.close()

    run(scenario(), timeout=60)


def test_a_look_on_the_previous_revision_does_not_count_for_the_new_rollout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A look that began on revision 1 ends after revision 2's rollout started: converged on revision 1, it
    says nothing of revision 2. Counted as the canary's success, it let the second wave go before the canary
    had even been tried (and its refusal could no longer pause the rollout)."""
    names = [f"s-{i}" for i in range(5)]
    waves = {"waves": [20, 100], "failureThresholdPercent": 10, "minStationsForWaves": 2}
    v1 = desired_of(*repo(names, 300, **waves))
    v2 = desired_of(*repo(names, 60, **waves))
    canary = Rollout.start(v2.revision, [n.upper() for n in names], (20, 100), Decimal(10), 1).order[0]
    slow = {"on": False}

    async def scenario() -> None:
        async with csms(tmp_path, v1) as h, chargers(h, names) as cps:
            await wait_until(lambda: synced(h, v1.revision, *cps), 15, "v1 synced")
            monkeypatch.setattr(reconcile_module, "observed_from_store",
                                delayed(reconcile_module.observed_from_store, 0.5,
                                        lambda args: slow["on"] and args[1].upper() == canary))
            slow["on"] = True
            h.reconciler.enqueue(canary, "drift-check")  # a look of the canary on revision 1, held 0.5 s
            await asyncio.sleep(0.1)
            cps[canary].faults.reject_calls = True
            assert h.holder.offer(v2, v2.revision)
            h.reconciler.on_revision()  # revision 2's rollout: the canary alone in wave 1
            await wait_until(lambda: h.reconciler.rollout is not None and h.reconciler.rollout.paused, 10,
                             "the canary's refusal pauses the rollout")
            assert "wave 1" in (h.reconciler.rollout.paused or "")
            await asyncio.sleep(0.3)
            for ident, cp in cps.items():
                if ident != canary:  # the second wave never started
                    assert cp.config.get("HeartbeatInterval") == "300", ident

    run(scenario(), timeout=60)


def test_a_look_that_planned_before_its_refusal_was_forgotten_plans_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`resume_rollout` forgets the canary's refusal while a look of the canary is planning with it: that
    plan has nothing to send (the refused value is not retried), and concluding from it called the canary
    converged on the new revision with the old value still on the charger, a success that could let the
    next wave out before the canary took the change. The look plans again instead: the canary is never
    Synced on the new revision with the old value, and no later station gets the change before it."""
    names = [f"s-{i}" for i in range(5)]
    waves = {"waves": [20, 100], "failureThresholdPercent": 10, "minStationsForWaves": 2}
    v1 = desired_of(*repo(names, 300, **waves))
    v2 = desired_of(*repo(names, 60, **waves))
    canary = Rollout.start(v2.revision, [n.upper() for n in names], (20, 100), Decimal(10), 1).order[0]
    violations: list[str] = []

    async def scenario() -> None:
        async with csms(tmp_path, v1) as h, chargers(h, names) as cps:
            await wait_until(lambda: synced(h, v1.revision, *cps), 15, "v1 synced")
            cps[canary].faults.reject_calls = True
            assert h.holder.offer(v2, v2.revision)
            h.reconciler.on_revision()
            await wait_until(lambda: h.reconciler.rollout is not None and h.reconciler.rollout.paused, 10, "paused")
            cps[canary].faults.reject_calls = False
            hold = {"on": True}
            monkeypatch.setattr(h.reconciler, "_pending_reservations",
                                delayed(h.reconciler._pending_reservations, 0.3,
                                        lambda args: hold["on"] and args[0].upper() == canary))

            async def watch() -> None:
                while True:
                    st = h.reconciler.status.get(canary)
                    canary_value = cps[canary].config.get("HeartbeatInterval")
                    if st is not None and st.last_applied_revision == v2.revision and canary_value != "60":
                        violations.append(f"{canary} Synced on v2 with HeartbeatInterval {canary_value}")
                    ahead = [i for i, cp in cps.items() if i != canary and cp.config.get("HeartbeatInterval") == "60"]
                    if ahead and canary_value != "60":
                        violations.append(f"{ahead} got the change before the canary")
                    await asyncio.sleep(0.002)

            watcher = asyncio.create_task(watch())
            try:
                h.reconciler.enqueue(canary, "drift-check")  # a look that plans with the refusal, held 0.3 s
                await asyncio.sleep(0.1)
                hold["on"] = False
                await h.reconciler.resume_rollout()  # forgets the refusal meanwhile
                await wait_until(lambda: synced(h, v2.revision, *cps), 15, "v2 everywhere")
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            assert violations == []
            assert [c["value"] for c in changes(cps[canary], "HeartbeatInterval")] == ["60", "60"]

    run(scenario(), timeout=60)


def test_a_state_write_after_the_store_closed_is_dropped_without_an_error(tmp_path: Path) -> None:
    """A look that ends while the controller stops may still persist rollout progress: the write is dropped
    (progress is written again after a restart), not left as a task whose exception nobody retrieves."""
    from controller.runtime.reconcile import ReconcileSettings
    from controller.runtime.state import DesiredHolder
    from controller.store.sqlite import SqliteStore

    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "c.db", owner="o")
        rec = FleetReconciler(DesiredHolder(), store, lambda identity: None, lambda: dt.datetime.now(dt.UTC),
                              ReconcileSettings())
        await rec._write_state("rollout", {"n": 1})
        assert await store.get_state("rollout") == {"rollout": {"n": 1}}
        await store.close()
        await rec._write_state("rollout", {"n": 2})  # closed: dropped, no exception

    asyncio.run(main())
