"""The global limit on concurrent applies: slots given back by applies stuck on an unanswered call, and the
cap on applies in flight."""

from __future__ import annotations

import asyncio

import pytest

from controller.runtime.slots import ApplySlots
from tests.store.helpers import async_test


@async_test
async def test_an_answer_within_the_time_keeps_the_slot_and_the_next_apply_waits() -> None:
    slots = ApplySlots(1, release_after=0.2)
    order: list[str] = []

    async def apply(name: str, answer_after: float) -> None:
        async with slots.hold() as slot:
            order.append(f"{name} start")
            with slot.waiting_for_answer():
                await asyncio.sleep(answer_after)
            order.append(f"{name} end")

    await asyncio.gather(apply("a", 0.05), apply("b", 0.05))
    assert order == ["a start", "a end", "b start", "b end"]
    assert slots.given_back == 0


@async_test
async def test_a_call_unanswered_past_the_time_gives_the_slot_away_and_the_apply_finishes_without_it() -> None:
    slots = ApplySlots(1, release_after=0.05)
    order: list[str] = []

    async def apply(name: str, answer_after: float) -> None:
        async with slots.hold() as slot:
            order.append(f"{name} start")
            with slot.waiting_for_answer():
                await asyncio.sleep(answer_after)
            order.append(f"{name} end (slot held: {slot.held})")

    await asyncio.gather(apply("slow", 0.3), apply("fast", 0.01))
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
    assert peak == 10 and slots.given_back == 30


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ApplySlots(0, release_after=None)
