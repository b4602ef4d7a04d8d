"""Chargers that misbehave while a change rolls out: the rest of the fleet converges undisturbed, and the
misbehaving one converges once it behaves.

Each scenario: a fleet of four stations synced on revision 1; one of them starts misbehaving; revision 2
(a profile change and a new card for every local list) is committed. The three others must reach Synced
on revision 2 while the fourth still misbehaves, without a reconnect and with each change sent once.
Then the fault is cleared and the fourth must reach Synced on revision 2 with the declared values on the
charger itself (configuration and local list), as stored by the controller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.hw.simulator import SimulatedCharger
from controller.runtime.status import Sync
from tests.config.ownerrepo import Doc
from tests.integration.harness import Harness, csms, desired_of, run, wait_until

from .kit import (
    FAST_RECONCILE,
    FAST_SERVER,
    Sabotage,
    answer_twice,
    fleet_repo,
    garbage,
    hang_up,
    reboot_losing_settings,
    synced,
)

NAMES = ["s-1", "s-2", "s-3", "bad"]
GOOD = ["S-1", "S-2", "S-3"]
APPLY = frozenset({"ChangeConfiguration", "SendLocalList"})


def _repo(interval: int, cards: int) -> list[Doc]:
    return fleet_repo(NAMES, interval, cards)


def _late(cp: SimulatedCharger) -> Callable[[bool], int]:
    """Answers later than the controller's call timeout (the simulator's own switch)."""
    def switch(on: bool) -> int:
        cp.faults.answer_delay = 1.6 if on else 0.0
        return len(cp.received)
    return switch


def _sabotage(cp: SimulatedCharger, kind: str) -> Callable[[bool], int]:
    effects = {"drops mid-apply": (hang_up, APPLY), "answers twice": (answer_twice, None),
               "reboots and loses its settings": (reboot_losing_settings, APPLY), "sends garbage": (garbage, None)}
    effect, actions = effects[kind]
    saboteur = Sabotage(cp, effect, actions)

    def switch(on: bool) -> int:
        saboteur.on = on
        return saboteur.triggered
    return switch


FAULTS = ["drops mid-apply", "answers late", "answers twice", "reboots and loses its settings", "sends garbage"]


@pytest.mark.parametrize("fault", FAULTS)
def test_one_misbehaving_charger_does_not_hold_up_the_fleet_and_converges_once_it_behaves(
        tmp_path: Path, fault: str) -> None:
    v1 = desired_of(*_repo(30, 2))

    async def scenario() -> None:
        async with csms(tmp_path, v1, settings=FAST_SERVER, reconcile=FAST_RECONCILE) as h:
            cps = {n.upper(): h.charger(n.upper(), call_timeout=2.0) for n in NAMES}
            bad = cps["BAD"]
            switch = _late(bad) if fault == "answers late" else _sabotage(bad, fault)
            for cp in cps.values():
                await cp.start()
            try:
                await _scenario(h, cps, bad, switch, fault)
            finally:
                for cp in cps.values():
                    await cp.stop()

    run(scenario(), timeout=40)


async def _scenario(h: Harness, cps: dict[str, SimulatedCharger], bad: SimulatedCharger,
                    switch: Callable[[bool], int], fault: str) -> None:
    v1 = h.holder.revision
    assert v1 is not None
    await wait_until(lambda: synced(h, v1, *cps), 15, "revision 1 synced")
    connects = {i: cp.connect_count for i, cp in cps.items()}
    sent = {i: len(cp.calls("ChangeConfiguration")) for i, cp in cps.items()}
    lists = {i: len(cp.calls("SendLocalList")) for i, cp in cps.items()}

    before = switch(True)
    v2 = desired_of(*_repo(15, 3))
    t0 = time.perf_counter()
    assert h.holder.offer(v2, v2.revision)
    h.reconciler.on_revision()

    # the rest of the fleet converges, undisturbed, while the bad one misbehaves
    await wait_until(lambda: synced(h, v2.revision, *GOOD), 10, f"the fleet synced while one {fault}")
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, f"the fleet took {elapsed:.1f}s next to a charger that {fault}"
    for identity in GOOD:
        cp = cps[identity]
        assert cp.connect_count == connects[identity], f"{identity} was disconnected"
        assert [c.payload for c in cp.calls("ChangeConfiguration")[sent[identity]:]] == [
            {"key": "MeterValueSampleInterval", "value": "15"}]
        pushes = cp.calls("SendLocalList")[lists[identity]:]
        assert len(pushes) == 1 and pushes[0].payload["updateType"] == "Differential"
        assert cp.config.get("MeterValueSampleInterval") == "15" and cp.local_list.lookup("CARD-0002")
    if fault == "answers twice":
        # harmless: every answer arrives (twice); the duplicates are dropped and the charger converges anyway,
        # through more calls than the malformed-frame limit of a connection, without being disconnected
        await wait_until(lambda: synced(h, v2.revision, "BAD"), 10, "converged while answering twice")
        for _ in range(8):  # drift reads: two more calls each
            looks = h.reconciler.looks
            h.reconciler.enqueue("BAD", "drift")
            await wait_until(lambda n=looks: h.reconciler.looks > n, 5, "a drift read")  # type: ignore[misc]
        assert switch(True) >= before + 12
        assert bad.connect_count == connects["BAD"] and synced(h, v2.revision, "BAD")
        stats = h.central.connections["BAD"].conn.stats
        assert stats.duplicate_replies >= 10 and stats.bad_frames == 0
    else:
        # the bad one really misbehaved, more than once, and is not reported as converged meanwhile
        await wait_until(lambda: switch(True) >= before + 2, 10, f"the charger {fault} again and again")
        st = h.reconciler.status["BAD"]
        assert not (st.sync is Sync.SYNCED and st.last_applied_revision == v2.revision)

    # what the misbehaviour cost the bad one (and only the bad one)
    expected = {"drops mid-apply": lambda: bad.connect_count >= connects["BAD"] + 2,
                "reboots and loses its settings": lambda: bad.boot_count >= 3,
                "sends garbage": lambda: bad.connect_count >= connects["BAD"] + 1,  # closed with 1008
                "answers late": lambda: bad.connect_count == connects["BAD"]  # late answers dropped, no harm
                and h.central.connections["BAD"].conn.stats.late_replies >= 1,
                "answers twice": lambda: bad.connect_count == connects["BAD"]}
    await wait_until(expected[fault], 5, f"the cost of a charger that {fault}")

    # once it behaves, it converges, and what the charger holds is what was declared
    switch(False)
    await wait_until(lambda: synced(h, v2.revision, "BAD"), 15, f"the charger that {fault} converged")
    await bad.wait_for(lambda: bad.online, 5, "online")
    assert bad.config.get("MeterValueSampleInterval") == "15"
    assert bad.local_list.lookup("CARD-0002") is not None and bad.local_list.lookup("CARD-0000") is not None
    rec = await h.store.get_station("BAD")
    good = await h.store.get_station("S-1")
    assert rec is not None and good is not None
    assert rec.local_list_version == bad.local_list.version
    assert rec.local_list_hash == good.local_list_hash  # the same list as the rest of the fleet
    assert {k.key: k.value for k in rec.configuration}["MeterValueSampleInterval"] == "15"
    # and the rest of the fleet was left alone while it recovered
    for identity in GOOD:
        assert cps[identity].connect_count == connects[identity]
        assert len(cps[identity].calls("ChangeConfiguration")) == sent[identity] + 1
