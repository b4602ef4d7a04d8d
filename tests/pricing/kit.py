"""Builders for the cost-engine tests: tariffs, billing settings, samples, instants in a zone."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from controller.config import model as m
from controller.pricing import Reading
from controller.transactions import SampledValue

UTC = dt.UTC
AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
NYC = zoneinfo.ZoneInfo("America/New_York")
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SRC = m.Src("tariffs.yaml", 0)


def D(x: str | int) -> Decimal:
    return Decimal(str(x))


def price(session_fee: str | None = None, per_kwh: str | None = None, per_hour: str | None = None,
          idle: m.IdleFee | None = None) -> m.PriceComponents:
    return m.PriceComponents(
        session_fee=D(session_fee) if session_fee is not None else None,
        per_kwh=D(per_kwh) if per_kwh is not None else None,
        per_hour=D(per_hour) if per_hour is not None else None,
        idle=idle,
    )


def idle(per_hour: str, grace_minutes: int = 0, until_unplug: bool = False) -> m.IdleFee:
    return m.IdleFee(D(per_hour), grace_minutes, until_unplug)


def window(name: str, start: str, end: str, p: m.PriceComponents, days: tuple[str, ...] = ALL_DAYS,
           ) -> m.TariffWindow:
    return m.TariffWindow(name, days, start, end, p)


def tariff(p: m.PriceComponents, *, currency: str = "EUR", windows: tuple[m.TariffWindow, ...] = (),
           groups: tuple[m.GroupPrice, ...] = (), min_price: str | None = None, max_price: str | None = None,
           tax: str | None = None, name: str = "standard") -> m.Tariff:
    return m.Tariff(
        name=name, currency=currency, price=p, src=SRC, windows=windows, group_prices=groups,
        min_price=D(min_price) if min_price is not None else None,
        max_price=D(max_price) if max_price is not None else None,
        tax_rate_percent=D(tax) if tax is not None else None,
    )


def billing(include_tax: bool = True, rate: str = "21") -> m.Billing:
    return m.Billing(enabled=True, prices_include_tax=include_tax, tax_rate_percent=D(rate))


def local(tz: dt.tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A wall-clock time in `tz` (first occurrence when repeated)."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


def energy_sample(at: dt.datetime | None, value: str, unit: str = "Wh", phase: str | None = None,
                  measurand: str = "Energy.Active.Import.Register") -> SampledValue:
    return SampledValue(timestamp=at, value=Decimal(value), raw_value=value, measurand=measurand, unit=unit,
                        phase=phase, context="Sample.Periodic", location=None, signed=False)


def readings(start: dt.datetime, *points: tuple[int, int]) -> tuple[Reading, ...]:
    """Register readings as (minutes after start, Wh); elapsed minutes, also across a DST change."""
    t0 = start.astimezone(UTC)
    return tuple(Reading(t0 + dt.timedelta(minutes=mins), Decimal(wh)) for mins, wh in points)
