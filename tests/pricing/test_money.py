"""Money (controller/pricing/money.py): minor units and the largest-remainder allocation."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.pricing.money import allocate, minor_unit, round_money


def test_minor_units_follow_the_currency() -> None:
    assert (minor_unit("EUR"), minor_unit("JPY"), minor_unit("KWD")) == (Decimal("0.01"), Decimal(1),
                                                                        Decimal("0.001"))


def test_half_a_unit_rounds_up() -> None:
    assert round_money(Decimal("0.125"), Decimal("0.01")) == Decimal("0.13")
    assert round_money(Decimal("0.5"), Decimal(1)) == Decimal(1)


def test_the_remainder_goes_to_the_largest_remainders_then_the_first_listed() -> None:
    parts = [Decimal("1.004"), Decimal("1.004"), Decimal("1.007")]  # 3.015 -> 3.02
    assert allocate(parts, Decimal("3.02"), Decimal("0.01")) == [Decimal("1.01"), Decimal("1.00"),
                                                                  Decimal("1.01")]
    assert allocate([Decimal("0.005")] * 2, Decimal("0.01"), Decimal("0.01")) == [Decimal("0.01"),
                                                                                   Decimal("0.00")]


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.decimals(0, 1000, places=6, allow_nan=False), min_size=1, max_size=8),
       places=st.sampled_from([0, 2, 3]))
def test_rounded_parts_add_up_to_the_rounded_total_and_stay_within_one_unit(parts: list[Decimal],
                                                                           places: int) -> None:
    unit = Decimal(1).scaleb(-places)
    target = round_money(sum(parts, Decimal(0)), unit)
    out = allocate(parts, target, unit)
    assert sum(out, Decimal(0)) == target
    assert all(o >= 0 and abs(o - p) < unit and (o == p or p != p.quantize(unit)) for o, p in zip(out, parts))
