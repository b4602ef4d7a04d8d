"""The cost engine: a session's price under a tariff, as lines, min/max adjustment, net, tax and total.

`price_session(tariff, billing, facts, tz)`: `tariff` is the one in force at the session's start as the
charger reported it (the caller picks it from the tariff history), `billing` the owner's billing
settings, `tz` the station's time zone (`station_zone`).

Prices in force
- The driver's group: the first entry of the tariff's groupPrices whose group the driver is in decides.
  `free: true`: the session costs nothing (no fee, no minimum). Otherwise the group's prices apply at
  all times and parts left out are 0 (the schema's rule; windows do not apply to group prices).
- Otherwise the base prices, and inside a window the window's prices over the base (parts left out keep
  the base price). Windows are in force by the station's wall clock (`controller.pricing.windows`).

Components, one line per (component, window) with quantity, unit price and amount; lines with no
quantity or no price are left out:
- session fee: once, at the prices in force at the start.
- energy (kWh): per window segment, the register at the segment's end − at its start.
- charging time (h): [start, charging end) (`controller.pricing.activity`), per window segment.
- idle time (h): [charging end, stop), extended to the plug-out when the idle fee says untilUnplug,
  less the grace period: the first graceMinutes of idle time are free. graceMinutes and untilUnplug are
  those of the idle fee in force when idle time begins; the hourly rate follows the windows. With
  untilUnplug and no plug-out yet, idle is counted up to the stop and the breakdown is `provisional`.

Boundary rule (energy across a window boundary): the register at the boundary is interpolated linearly
between the two readings around it, the nearest one before and the nearest one after
(`energy.energy_at`); before the first or after the last reading nothing is extrapolated. Why not the
single nearest reading: it moves all the energy between two samples to one side (with 15-minute samples,
up to 15 minutes of energy at the wrong price) and flips with which side of the midpoint the boundary
falls on. Interpolation assumes constant power between samples, the best estimate the data supports; it
is exact when a reading falls on the boundary, and the segments' energies add up exactly to the session
energy (the differences telescope).

Min / max apply to the sum of the lines, in the terms the prices are declared in (with or without tax);
a session that costs nothing stays free (the schema's minPrice rule).

Tax: the tariff's rate, else the owner's. Prices including tax: gross = price, net = gross / (1 + rate);
excluding: net = price, gross = net x (1 + rate).

Rounding, once, at the end (`controller.pricing.money`): everything is exact `Decimal` until then.
`total` = gross rounded ROUND_HALF_UP to the currency's minor unit; `net` and `tax` are allocated to add
up to `total`; the lines and the adjustment are allocated to add up to the declared amount (`total` when
prices include tax, `net` when not). Allocation rounds every part down and gives the missing units, one
each, to the parts with the largest remainder, ties to the first listed (lines in the order session
fee, energy, charging time, idle time, each in order of first use; the adjustment last). So the rounded
lines add up to `subtotal`, `subtotal + adjustment` to the declared amount and `net + tax` to `total`.
Quantities are shown to 6 decimals; amounts come from the exact quantities.

Boundary: pure; no I/O and no clock (the facts carry every time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

from controller.config import model as m

from .activity import Activity, StatusChange, activity
from .energy import PowerReading, Reading, clean_readings, energy_between, hours
from .money import allocate, minor_unit, round_money, split_tax
from .windows import split, window_at

SESSION_FEE = "session_fee"
ENERGY = "energy"
CHARGING_TIME = "charging_time"
IDLE_TIME = "idle_time"
COMPONENTS = (SESSION_FEE, ENERGY, CHARGING_TIME, IDLE_TIME)
_UNITS = {SESSION_FEE: "session", ENERGY: "kWh", CHARGING_TIME: "h", IDLE_TIME: "h"}
_SHOWN = Decimal("0.000001")


@dataclasses.dataclass(frozen=True, slots=True)
class SessionFacts:
    """What is known about a session, gathered by the caller.

    `start` / `stop`: the charger's reported times (aware). `groups`: the driver's access groups.
    `readings`: the energy register timeline (`EnergyResult.readings`). `statuses` / `power`: the
    connector's status timeline and power readings (for charging vs idle time). `plug_out`: when the
    cable was unplugged, if known. `anomalies`: what was odd upstream (parsing, energy); any anomaly
    puts the breakdown under review.
    """

    start: dt.datetime
    stop: dt.datetime
    groups: tuple[str, ...] = ()
    readings: tuple[Reading, ...] = ()
    statuses: tuple[StatusChange, ...] = ()
    power: tuple[PowerReading, ...] = ()
    plug_out: dt.datetime | None = None
    anomalies: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class PriceLine:
    component: str  # SESSION_FEE | ENERGY | CHARGING_TIME | IDLE_TIME
    window: str | None  # None: base prices (or the group's)
    quantity: Decimal
    unit: str  # "session" | "kWh" | "h"
    unit_price: Decimal
    amount: Decimal  # rounded; in the declared terms (with or without tax)


@dataclasses.dataclass(frozen=True, slots=True)
class PriceBreakdown:
    tariff: str
    currency: str
    group: str | None  # the group price applied, if any
    lines: tuple[PriceLine, ...]
    subtotal: Decimal  # sum of the lines
    adjustment: Decimal  # min/max: positive up to minPrice, negative down to maxPrice
    adjustment_reason: str | None  # "min_price" | "max_price" | None
    net: Decimal
    tax: Decimal
    total: Decimal  # net + tax, what the driver pays
    tax_rate_percent: Decimal
    prices_include_tax: bool
    energy_wh: Decimal
    charging_time: dt.timedelta
    idle_time: dt.timedelta  # all idle time counted, grace included
    billed_idle_time: dt.timedelta
    provisional: bool  # idle is charged until unplug and the cable is still in
    anomalies: tuple[str, ...]

    @property
    def under_review(self) -> bool:
        return bool(self.anomalies)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: amounts as decimal strings, times in seconds."""
        return {
            "tariff": self.tariff, "currency": self.currency, "group": self.group,
            "lines": [{"component": ln.component, "window": ln.window, "quantity": str(ln.quantity),
                       "unit": ln.unit, "unitPrice": str(ln.unit_price), "amount": str(ln.amount)}
                      for ln in self.lines],
            "subtotal": str(self.subtotal), "adjustment": str(self.adjustment),
            "adjustmentReason": self.adjustment_reason, "net": str(self.net), "tax": str(self.tax),
            "total": str(self.total), "taxRatePercent": str(self.tax_rate_percent),
            "pricesIncludeTax": self.prices_include_tax, "energyWh": str(self.energy_wh),
            "chargingSeconds": self.charging_time.total_seconds(), "idleSeconds": self.idle_time.total_seconds(),
            "billedIdleSeconds": self.billed_idle_time.total_seconds(), "provisional": self.provisional,
            "underReview": self.under_review, "anomalies": list(self.anomalies),
        }


def station_zone(station: m.Station | None, owner: m.Owner) -> dt.tzinfo:
    """The station's time zone, else the owner's; UTC if neither names a known zone."""
    name = (station.timezone if station is not None else None) or owner.timezone
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def group_price(tariff: m.Tariff, groups: Sequence[str]) -> m.GroupPrice | None:
    """The first groupPrices entry (in the tariff's order) whose group the driver belongs to."""
    mine = set(groups)
    return next((g for g in tariff.group_prices if g.group in mine), None)


class _Lines:
    """Exact quantities per (component, window), in order of first use."""

    def __init__(self) -> None:
        self.qty: dict[tuple[str, str | None], Decimal] = {}
        self.price: dict[tuple[str, str | None], Decimal] = {}

    def add(self, component: str, window: str | None, qty: Decimal, price: Decimal | None) -> None:
        if qty <= 0 or price is None or price <= 0:
            return
        key = (component, window)
        self.qty[key] = self.qty.get(key, Decimal(0)) + qty
        self.price[key] = price

    def exact(self) -> list[tuple[str, str | None, Decimal, Decimal, Decimal]]:
        keys = sorted(self.qty, key=lambda k: COMPONENTS.index(k[0]))  # stable: first use within a component
        return [(c, w, self.qty[(c, w)], self.price[(c, w)], self.qty[(c, w)] * self.price[(c, w)])
                for c, w in keys]


def _clip(a: dt.datetime, b: dt.datetime, lo: dt.datetime, hi: dt.datetime) -> dt.timedelta:
    return max(dt.timedelta(0), min(b, hi) - max(a, lo))


def _aware(t: dt.datetime, what: str) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"SessionFacts.{what} must be timezone-aware")
    return t.astimezone(dt.UTC)


def price_session(tariff: m.Tariff, billing: m.Billing, facts: SessionFacts, tz: dt.tzinfo) -> PriceBreakdown:
    """The price of one session (see the module doc for every rule)."""
    with localcontext(Context(prec=34, rounding=ROUND_HALF_EVEN)):
        return _price(tariff, billing, facts, tz)


def _price(tariff: m.Tariff, billing: m.Billing, facts: SessionFacts, tz: dt.tzinfo) -> PriceBreakdown:
    anomalies = list(facts.anomalies)
    start, stop = _aware(facts.start, "start"), _aware(facts.stop, "stop")
    if stop < start:
        anomalies.append("stop is before start (charger clock?): priced as a session of no duration")
        stop = start
    readings, dropped = clean_readings(facts.readings)
    anomalies.extend(dropped)
    energy_wh = energy_between(readings, start, stop)
    act: Activity = activity(start, stop, facts.statuses, facts.power)

    gp = group_price(tariff, facts.groups)
    free = gp is not None and gp.free
    windows = () if gp is not None else tariff.windows

    def prices(w: m.TariffWindow | None) -> m.PriceComponents:
        if gp is not None:
            return gp.price
        return w.price.over(tariff.price) if w is not None else tariff.price

    idle_start = act.charging_end
    idle_fee = prices(window_at(windows, idle_start, tz)).idle
    idle_end, provisional = stop, False
    if idle_fee is not None and idle_fee.until_unplug and not free:
        plug_out = _aware(facts.plug_out, "plug_out") if facts.plug_out is not None else None
        if plug_out is None:
            provisional = True
        elif plug_out < stop:
            anomalies.append("plug-out is before stop (charger clock?): idle counted until the stop")
        else:
            idle_end = plug_out
    grace = dt.timedelta(minutes=idle_fee.grace_minutes if idle_fee is not None else 0)
    billed_from = min(idle_start + grace, idle_end)

    lines = _Lines()
    if not free:
        first = window_at(windows, start, tz)
        lines.add(SESSION_FEE, first.name if first else None, Decimal(1), prices(first).session_fee)
        for seg in split(start, idle_end, windows, tz):
            p = prices(seg.window)
            name = seg.window.name if seg.window is not None else None
            a, b = max(seg.start, start), min(seg.end, stop)
            lines.add(ENERGY, name, energy_between(readings, a, b) / 1000, p.per_kwh)
            lines.add(CHARGING_TIME, name, hours(_clip(seg.start, seg.end, start, act.charging_end)), p.per_hour)
            lines.add(IDLE_TIME, name, hours(_clip(seg.start, seg.end, billed_from, idle_end)),
                      p.idle.per_hour if p.idle is not None else None)
    exact = lines.exact()

    subtotal = sum((amount for *_, amount in exact), Decimal(0))
    adjustment, reason = Decimal(0), None
    if subtotal > 0 and tariff.min_price is not None and subtotal < tariff.min_price:
        adjustment, reason = tariff.min_price - subtotal, "min_price"
    elif tariff.max_price is not None and subtotal > tariff.max_price:
        adjustment, reason = tariff.max_price - subtotal, "max_price"
    rate = tariff.tax_rate_percent if tariff.tax_rate_percent is not None else billing.tax_rate_percent
    net, tax, gross = split_tax(subtotal + adjustment, rate, billing.prices_include_tax)

    unit = minor_unit(tariff.currency)
    total = round_money(gross, unit)
    net_r, tax_r = allocate([net, tax], total, unit)
    declared = total if billing.prices_include_tax else net_r
    *amounts, adjustment_r = allocate([*(amount for *_, amount in exact), adjustment], declared, unit)
    out_lines = tuple(PriceLine(c, w, qty.quantize(_SHOWN) if c != SESSION_FEE else qty, _UNITS[c],
                                price, amount)
                      for (c, w, qty, price, _), amount in zip(exact, amounts))
    return PriceBreakdown(
        tariff=tariff.name, currency=tariff.currency, group=gp.group if gp is not None else None,
        lines=out_lines, subtotal=sum(amounts, Decimal(0)).quantize(unit), adjustment=adjustment_r,
        adjustment_reason=reason, net=net_r, tax=tax_r, total=total, tax_rate_percent=rate,
        prices_include_tax=billing.prices_include_tax, energy_wh=energy_wh, charging_time=act.charging_time,
        idle_time=idle_end - idle_start, billed_idle_time=idle_end - billed_from, provisional=provisional,
        anomalies=tuple(anomalies),
    )
