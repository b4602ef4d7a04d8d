"""The controller's garbage-collector policy: settled objects leave the collector's scans, garbage cycles
among them are still found by the periodic full pass, and stopping leaves nothing frozen."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator

from controller.runtime.gcpolicy import GcPolicy, GcSettings


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@contextlib.contextmanager
def young_collections() -> Iterator[list[int]]:
    """Counts the young-generation collections that start inside the block (in the list's one item)."""
    young = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            young[0] += 1

    gc.callbacks.append(count)
    try:
        yield young
    finally:
        gc.callbacks.remove(count)


def _cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def test_settle_freezes_and_the_full_pass_finds_frozen_cycles() -> None:
    policy = GcPolicy(GcSettings(freeze=True))
    try:
        held: list[Node] = [_cycle()]  # long-lived state, later dropped (an old revision, say)
        gone = weakref.ref(held[0])
        gc.disable()  # no automatic collection may run behind the test's back
        try:
            policy.settle()
            assert gc.get_freeze_count() > 0
            held.clear()  # now an unreachable cycle among frozen objects
            gc.collect()  # frozen objects are skipped: the cycle survives a full collection
            assert gone() is not None
            found = policy.full()
            assert gone() is None and found >= 2
            assert policy.collected_by_full == found and gc.get_freeze_count() > 0
        finally:
            gc.enable()
    finally:
        gc.unfreeze()


def test_disabled_policy_freezes_nothing_and_stop_unfreezes() -> None:
    gc.unfreeze()
    off = GcPolicy(GcSettings(freeze=False))
    off.settle()
    assert gc.get_freeze_count() == 0

    async def run() -> int:
        on = GcPolicy(GcSettings(freeze=True, settle_every=0.01, full_every=3600))
        on.start()
        await asyncio.sleep(0.05)
        frozen = gc.get_freeze_count()
        settles = on.settles
        await on.stop()
        assert settles >= 2  # at start and on the timer
        return frozen

    assert asyncio.run(run()) > 0
    assert gc.get_freeze_count() == 0


def test_the_survivors_of_a_full_collection_are_frozen_until_stop() -> None:
    async def run() -> tuple[int, int, int]:
        policy = GcPolicy(GcSettings(freeze=True, settle_every=3600, full_every=3600))
        policy.start()
        try:
            created = [Node() for _ in range(5000)]  # state created after the last settle: young
            before = gc.get_freeze_count()
            gc.collect(2)  # a full collection, as the interpreter runs on its own
            after = gc.get_freeze_count()
            assert len(created) == 5000
            return before, after, policy.frozen_after_full
        finally:
            await policy.stop()

    before, after, frozen = asyncio.run(run())
    assert after >= before + 5000 and frozen == 1
    assert gc.get_freeze_count() == 0 and not any(getattr(cb, "__self__", None) for cb in gc.callbacks
                                                  if getattr(cb, "__name__", "") == "_after_collection")
    gc.collect(2)  # no policy any more: nothing is frozen by a full collection
    assert gc.get_freeze_count() == 0


def test_young_collections_run_every_young_threshold_allocations_while_the_policy_runs() -> None:
    interpreter = gc.get_threshold()

    async def run() -> tuple[tuple[int, ...], int, int]:
        policy = GcPolicy(GcSettings(freeze=False, young_threshold=5_000))
        policy.start()
        try:
            in_force = gc.get_threshold()
            gc.collect()
            with young_collections() as young:
                kept = [Node() for _ in range(20_000)]  # 20,000 tracked allocations that stay alive
            runs = young[0]
            assert len(kept) == 20_000
            return in_force, runs, 20_000 // 700
        finally:
            await policy.stop()

    in_force, runs, at_default = asyncio.run(run())
    assert in_force == (5_000, 100, *interpreter[2:])  # young every 5,000; middle every 100 young
    assert 2 <= runs <= 4 < at_default  # about 20,000 / 5,000, not 20,000 / 700
    assert gc.get_threshold() == interpreter  # stop puts the interpreter's thresholds back


def test_thresholds_of_zero_keep_the_interpreters() -> None:
    interpreter = gc.get_threshold()

    async def run() -> tuple[int, ...]:
        policy = GcPolicy(GcSettings(freeze=False, young_threshold=0, middle_threshold=0))
        policy.start()
        try:
            return gc.get_threshold()
        finally:
            await policy.stop()

    assert asyncio.run(run()) == interpreter


def test_overlapping_policies_put_the_interpreters_thresholds_back_when_the_last_one_stops() -> None:
    interpreter = gc.get_threshold()

    async def run() -> tuple[int, ...]:
        first = GcPolicy(GcSettings(freeze=False, young_threshold=5_000))
        second = GcPolicy(GcSettings(freeze=False, young_threshold=5_000))
        first.start()
        second.start()
        await first.stop()  # the second still runs: its thresholds stay in force
        while_second_runs = gc.get_threshold()
        await second.stop()
        return while_second_runs

    assert asyncio.run(run()) == (5_000, 100, *interpreter[2:])
    assert gc.get_threshold() == interpreter


def test_settling_without_a_collection_freezes_young_garbage_cycles_until_the_full_pass() -> None:
    policy = GcPolicy(GcSettings(freeze=True))
    gc.disable()
    try:
        young = _cycle()
        gone = weakref.ref(young)
        del young  # garbage, but only a collection can tell
        policy.settle(collect=False)
        assert gone() is not None and policy.settles == 1
        gc.collect()  # frozen: skipped
        assert gone() is not None
        assert policy.full() >= 2 and gone() is None
        young = _cycle()
        gone = weakref.ref(young)
        del young
        policy.settle()  # the default collects the young generations first: the cycle is freed
        assert gone() is None
    finally:
        gc.enable()
        gc.unfreeze()


def test_a_periodic_settle_waits_while_the_controller_is_busy_but_not_for_ever() -> None:
    # the settle's middle collection scans everything promoted since the last one (100-500 ms at fleet scale):
    # not in the middle of a rollout's calls, and never put off past max_defer
    async def run() -> tuple[int, int, int, int]:
        policy = GcPolicy(GcSettings(freeze=True, settle_every=0.05, max_defer=0.4, full_every=3600))
        busy = [True]
        policy.busy = lambda: busy[0]
        policy.start()
        try:
            start = policy.settles  # (start settles once)
            await asyncio.sleep(0.25)
            while_busy = policy.settles - start  # none yet: waiting, at most max_defer
            await asyncio.sleep(0.45)
            past_defer = policy.settles - start  # max_defer passed: settled though still busy
            busy[0] = False
            before = policy.settles
            await asyncio.sleep(0.3)
            return while_busy, past_defer, policy.settles - before, policy.deferred
        finally:
            await policy.stop()

    while_busy, past_defer, idle, deferred = asyncio.run(run())
    assert while_busy == 0 and past_defer >= 1 and deferred >= 1
    assert idle >= 3  # idle again: every settle_every


def test_a_surge_lets_a_burst_of_live_objects_pass_without_young_collections_until_idle() -> None:
    """After a revision is taken (`surge`), the looks' burst of objects is not scanned by young collections;
    once the controller is idle the thresholds are back and the heap settled. Without a surge, the same burst
    runs young collections every `young_threshold` allocations."""
    interpreter = gc.get_threshold()

    async def burst(policy: GcPolicy, surge: bool) -> tuple[int, tuple[int, ...]]:
        gc.collect()
        if surge:
            policy.surge()
        with young_collections() as young:
            kept = [Node() for _ in range(30_000)]  # alive until the "looks" are done
        during = gc.get_threshold()
        del kept
        return young[0], during

    async def run() -> tuple[int, int, tuple[int, ...], tuple[int, ...], int, int]:
        policy = GcPolicy(GcSettings(freeze=True, settle_every=3600, full_every=3600, young_threshold=5_000,
                                     surge_threshold=100_000, surge_max=5.0))
        busy = [True]
        policy.busy = lambda: busy[0]
        policy.start()
        try:
            plain, _ = await burst(policy, surge=False)
            surged, during = await burst(policy, surge=True)
            await asyncio.sleep(0.7)  # still busy: the surge holds
            held = gc.get_threshold()
            settles = policy.settles
            busy[0] = False
            await asyncio.sleep(0.7)  # idle: thresholds back, heap settled
            return plain, surged, during, held, policy.settles - settles, policy.surges
        finally:
            await policy.stop()

    plain, surged, during, held, settled, surges = asyncio.run(run())
    assert plain >= 5 and surged == 0
    assert during[0] == held[0] == 100_000
    assert settled == 1 and surges == 1
    assert gc.get_threshold() == interpreter


def test_a_surge_ends_after_surge_max_even_while_busy() -> None:
    async def run() -> tuple[int, int]:
        policy = GcPolicy(GcSettings(freeze=False, young_threshold=5_000, surge_threshold=100_000, surge_max=0.6))
        policy.busy = lambda: True
        policy.start()
        try:
            policy.surge()
            raised = gc.get_threshold()[0]
            await asyncio.sleep(1.5)
            return raised, gc.get_threshold()[0]
        finally:
            await policy.stop()

    assert asyncio.run(run()) == (100_000, 5_000)


def test_a_long_surge_freezes_as_it_goes_instead_of_one_long_young_collection() -> None:
    """Past half the surge threshold of new objects, the surge freezes them (no scan): a rollout of a minute
    never ends in one young collection of the whole threshold."""
    async def run() -> tuple[int, int, int]:
        policy = GcPolicy(GcSettings(freeze=True, settle_every=3600, full_every=3600, young_threshold=5_000,
                                     surge_threshold=40_000, surge_max=10.0))
        policy.busy = lambda: True
        policy.start()
        try:
            gc.collect()
            policy.surge()
            settles = policy.settles
            with young_collections() as young:
                kept = []
                for _ in range(6):  # 6 x 15,000 = 90,000 live objects over 3 s: past the threshold twice
                    kept.extend(Node() for _ in range(15_000))
                    await asyncio.sleep(0.6)
            assert len(kept) == 90_000
            return young[0], policy.settles - settles, gc.get_freeze_count()
        finally:
            await policy.stop()

    young, settles, frozen = asyncio.run(run())
    assert young == 0  # no young collection ran
    assert settles >= 2 and frozen >= 60_000


def test_a_periodic_settle_that_waited_its_longest_during_a_surge_freezes_without_a_scan() -> None:
    """A rollout outlasting `max_defer` (a 10,000-station change over slow links takes about a minute): the
    settle that runs then finds the surge's young objects (up to half the surge threshold) and freezes them
    without scanning; a young collection of them stalled the event loop 196 ms in such a change."""
    async def run() -> tuple[int, int, int]:
        policy = GcPolicy(GcSettings(freeze=True, settle_every=0.2, max_defer=0.4, full_every=3600,
                                     young_threshold=5_000, surge_threshold=100_000, surge_max=10.0))
        policy.busy = lambda: True
        policy.start()
        try:
            gc.collect()
            policy.surge()
            settles, deferred = policy.settles, policy.deferred
            with young_collections() as young:
                kept = [Node() for _ in range(30_000)]  # under half the surge threshold: the surge keeps them
                await asyncio.sleep(1.5)  # the periodic settle gives up waiting at least once
            assert len(kept) == 30_000 and policy.deferred > deferred
            return young[0], policy.settles - settles, gc.get_freeze_count()
        finally:
            await policy.stop()

    young, settles, frozen = asyncio.run(run())
    assert settles >= 1 and frozen >= 30_000
    assert young == 0
