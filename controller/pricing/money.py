"""Money arithmetic for the cost engine: the minor unit, rounding once, sharing the rounding remainder.

Amounts stay exact `Decimal` until the very end. Then the total is rounded once, ROUND_HALF_UP, to the
currency's minor unit (JPY 1, EUR 0.01, KWD 0.001), and the parts that make it up (net + tax; price
lines + min/max adjustment) are shared out so that the rounded parts add up to the rounded total
exactly (`allocate`, the largest-remainder method):
1. every part is rounded down (toward −∞) to the minor unit;
2. the units still missing to reach the target go, one each, to the parts with the largest remainder
   (ties: the part listed first).
A part is therefore always within one minor unit of its exact value, a part that is exact (zero
included) is never changed, and parts that are not negative never become negative.

Boundary: pure `Decimal` functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from controller.config.refdata import CURRENCY_MINOR_UNITS

DEFAULT_MINOR_UNITS = 2


def minor_unit(currency: str) -> Decimal:
    """The currency's smallest unit as a Decimal exponent: Decimal('0.01') for EUR, Decimal('1') for JPY."""
    return Decimal(1).scaleb(-CURRENCY_MINOR_UNITS.get(currency.upper(), DEFAULT_MINOR_UNITS))


def round_money(amount: Decimal, unit: Decimal) -> Decimal:
    return amount.quantize(unit, ROUND_HALF_UP)


def allocate(parts: Sequence[Decimal], target: Decimal, unit: Decimal) -> list[Decimal]:
    """Round `parts` to `unit` so that they add up to `target` (see the module doc).

    `target` must be a whole number of units between the parts' sum rounded down and rounded up.
    """
    floors = [p.quantize(unit, ROUND_FLOOR) for p in parts]
    missing = (target - sum(floors, Decimal(0))) / unit
    if missing != missing.to_integral_value() or not 0 <= missing <= len(parts):
        raise ValueError(f"cannot share {target} out over {list(parts)} in units of {unit}")
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] - floors[i]), i))
    for i in order[: int(missing)]:
        floors[i] += unit
    return [f.quantize(unit) for f in floors]


def split_tax(amount: Decimal, rate_percent: Decimal, includes_tax: bool) -> tuple[Decimal, Decimal, Decimal]:
    """(net, tax, gross), exact, of an amount declared with or without tax."""
    rate = rate_percent / 100
    if includes_tax:
        net = amount / (1 + rate)
        return net, amount - net, amount
    tax = amount * rate
    return amount, tax, amount + tax
