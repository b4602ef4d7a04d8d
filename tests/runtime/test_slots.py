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
