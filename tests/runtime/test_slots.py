"""The global limit on concurrent applies: slots given back by applies stuck on an unanswered call, and the
cap on applies in flight."""

from __future__ import annotations

import asyncio

import pytest

from controller.runtime.slots import ApplySlots
from tests.store.helpers import async_test


async def applies(slots: ApplySlots, *answers: tuple[str, float]) -> list[str]:
    """Run one apply per (name, seconds until its call is answered) at once; what happened, in order."""
    order: list[str] = []

    async def apply(name: str, answer_after: float) -> None:
        async with slots.hold() as slot:
            order.append(f"{name} start")
            with slot.waiting_for_answer():
                await asyncio.sleep(answer_after)
            order.append(f"{name} end (slot held: {slot.held})")

    await asyncio.gather(*(apply(name, after) for name, after in answers))
    return order


@async_test
async def test_an_answer_within_the_time_keeps_the_slot_and_the_next_apply_waits() -> None:
    slots = ApplySlots(1, release_after=0.2)
    order = await applies(slots, ("a", 0.05), ("b", 0.05))
    assert order == ["a start", "a end (slot held: True)", "b start", "b end (slot held: True)"]
    assert slots.given_back == 0


@async_test
async def test_a_call_unanswered_past_the_time_gives_the_slot_away_and_the_apply_finishes_without_it() -> None:
    slots = ApplySlots(1, release_after=0.05)
    order = await applies(slots, ("slow", 0.3), ("fast", 0.01))
    assert order == ["slow start", "fast start", "fast end (slot held: True)", "slow end (slot held: False)"]
    assert slots.given_back == 1


@async_test
async def test_no_more_than_the_limit_and_a_quarter_are_in_flight_however_slow_the_chargers() -> None:
    slots = ApplySlots(8, release_after=0.01)
    in_flight = peak = 0

    async def apply() -> None:
        nonlocal in_flight, peak
        async with slots.hold() as slot:
            in_flight += 1
            peak = max(peak, in_flight)
            with slot.waiting_for_answer():
                await asyncio.sleep(0.1)
            in_flight -= 1

    await asyncio.gather(*(apply() for _ in range(30)))
    assert peak == 10 and 2 <= slots.given_back < 30 and slots.stragglers == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ApplySlots(0, release_after=None)


@async_test
async def test_an_urgent_look_takes_the_next_free_slot_ahead_of_the_bulk_of_a_revision() -> None:
    slots = ApplySlots(1, release_after=None)
    order: list[str] = []
    first_in = asyncio.Event()
    go = asyncio.Event()

    async def apply(name: str, urgent: bool) -> None:
        async with slots.hold(urgent=urgent):
            order.append(name)
            first_in.set()
            await go.wait()

    first = asyncio.create_task(apply("bulk-1", False))
    await first_in.wait()
    assert slots.in_use == 1
    rest = [asyncio.create_task(apply(n, u)) for n, u in (("bulk-2", False), ("bulk-3", False), ("retry", True))]
    await asyncio.sleep(0.01)  # all three are waiting
    go.set()
    await asyncio.gather(first, *rest)
    assert order == ["bulk-1", "retry", "bulk-2", "bulk-3"] and slots.in_use == 0


@async_test
async def test_a_waiter_cancelled_as_the_slot_reaches_it_passes_the_slot_on() -> None:
    slots = ApplySlots(1, release_after=None)
    holder_in, go = asyncio.Event(), asyncio.Event()
    got: list[str] = []

    async def apply(name: str, wait: asyncio.Event | None = None) -> None:
        async with slots.hold():
            got.append(name)
            if wait is not None:
                holder_in.set()
                await wait.wait()

    holder = asyncio.create_task(apply("holder", go))
    await holder_in.wait()
    doomed = asyncio.create_task(apply("doomed"))
    later = asyncio.create_task(apply("later"))
    await asyncio.sleep(0.01)
    go.set()
    await asyncio.sleep(0)  # the holder leaves and hands its slot to `doomed` ...
    doomed.cancel()  # ... which is cancelled before it runs
    await holder
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(later, 1.0)
    assert got == ["holder", "later"]


@async_test
async def test_each_unanswered_call_gives_its_slot_back_at_its_own_deadline_and_answered_ones_never_do() -> None:
    slots = ApplySlots(8, release_after=0.2)
    go = asyncio.Event()

    async def apply(answer_after: float) -> None:
        async with slots.hold() as slot:
            with slot.waiting_for_answer():
                await asyncio.sleep(answer_after)
            await go.wait()  # keep the slot (if it still holds one) until the end of the test

    first = asyncio.create_task(apply(1.0))
    await asyncio.sleep(0.02)
    quick = asyncio.create_task(apply(0.01))  # answered in time: never given back
    await asyncio.sleep(0.08)
    second = asyncio.create_task(apply(1.0))  # begins 0.1 s after the first
    await asyncio.sleep(0.15)  # 0.25 s: the first is past its deadline, the second is not
    assert slots.given_back == 1 and slots.in_use == 2
    await asyncio.sleep(0.1)  # 0.35 s: the second is too
    assert slots.given_back == 2 and slots.in_use == 1
    go.set()
    await asyncio.gather(first, quick, second)
    assert slots.in_use == 0 and slots.stragglers == 0 and not slots._watch


@async_test
async def test_a_slot_taken_without_waiting_only_when_one_is_free_and_nobody_waits() -> None:
    # take_now / take / give_back: what the reconciler uses instead of `async with hold()` (no coroutine when a
    # slot is free); an urgent waiter must not be overtaken by a look that finds the gate just given back
    slots = ApplySlots(2, release_after=None)
    first, second = slots.take_now(), slots.take_now()
    assert first is not None and second is not None and slots.in_use == 2
    assert slots.take_now() is None  # full
    bulk = asyncio.ensure_future(slots.take())
    urgent = asyncio.ensure_future(slots.take(urgent=True))
    await asyncio.sleep(0)
    slots.give_back(first)  # handed to the urgent waiter, not left free
    assert slots.take_now() is None and slots.in_use == 2
    got = await urgent
    assert not bulk.done()
    slots.give_back(second)
    slots.give_back(await bulk)
    slots.give_back(got)
    assert slots.in_use == 0 and slots.take_now() is not None


def test_the_adaptive_wait_follows_the_answers_as_tcp_follows_round_trips() -> None:
    slots = ApplySlots(4, release_after=3.0, adaptive=True)
    assert slots.wait == 3.0  # nothing answered yet: the ceiling
    slots.answered(0.2)  # first sample: SRTT 0.2, RTTVAR 0.1 -> 0.6
    assert slots.wait == pytest.approx(0.6)
    slots.answered(0.4)  # RTTVAR 0.1 + (0.2 - 0.1) / 4 = 0.125, SRTT 0.2 + 0.2 / 8 = 0.225 -> 0.725
    assert slots.wait == pytest.approx(0.725)
    for _ in range(50):
        slots.answered(0.01)  # a fast fleet: never below the floor
    assert slots.wait == pytest.approx(0.5)
    for _ in range(60):
        slots.answered(2.0)  # a steady slow one: its round trip
    assert slots.wait == pytest.approx(2.0, abs=0.01)
    for i in range(20):
        slots.answered(1.0 + 2.0 * (i % 2))  # a slow and unsteady one: never above the ceiling
    assert slots.wait == pytest.approx(3.0)
    fixed = ApplySlots(4, release_after=3.0)
    fixed.answered(0.2)
    assert fixed.wait == 3.0


@async_test
async def test_an_adaptive_slot_goes_once_a_call_is_late_for_this_fleet_not_after_the_fixed_time() -> None:
    slots = ApplySlots(1, release_after=3.0, adaptive=True)
    await applies(slots, *((f"quick {i}", 0.01) for i in range(5)))  # answered: the wait comes down to 0.5 s
    assert slots.wait == pytest.approx(0.5) and slots.given_back == 0
    order = await applies(slots, ("lost", 1.2), ("next", 0.01))
    assert order == ["lost start", "next start", "next end (slot held: True)", "lost end (slot held: False)"]
    assert slots.given_back == 1
    assert slots.wait > 0.5  # the late answer counts: the fleet looks slower now


@async_test
async def test_calls_that_fail_do_not_move_the_adaptive_wait() -> None:
    slots = ApplySlots(1, release_after=3.0, adaptive=True)
    async with slots.hold() as slot:
        for _ in range(3):
            with pytest.raises(TimeoutError), slot.waiting_for_answer():
                await asyncio.sleep(0.01)
                raise TimeoutError
    assert slots.wait == 3.0


@async_test
async def test_an_open_wait_is_judged_against_the_wait_in_force_when_it_grows() -> None:
    slots = ApplySlots(2, release_after=2.0, adaptive=True)
    for _ in range(5):
        slots.answered(0.01)  # 0.5 s in force: the timer of the next wait is armed for 0.5 s
    go = asyncio.Event()

    async def apply() -> None:
        async with slots.hold() as slot:
            with slot.waiting_for_answer():
                await go.wait()

    waiting = asyncio.create_task(apply())
    await asyncio.sleep(0.1)
    for _ in range(5):
        slots.answered(1.5)  # the fleet slowed down meanwhile: the wait grows past 1.5 s
    assert slots.wait > 1.5
    await asyncio.sleep(0.6)  # past the 0.5 s the timer was armed for, not past the wait in force
    assert slots.given_back == 0 and slots.in_use == 1
    go.set()
    await waiting
    assert slots.in_use == 0 and not slots._watch
