"""Gathering a session's facts: the plug-out rule and stored samples read as the cost engine reads them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from controller.billing.session import plug_out_time, sampled
from controller.pricing import StatusChange
from controller.store.records import MeterSample

T = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def at(minutes: int, status: str) -> StatusChange:
    return StatusChange(T + minutes * MIN, status)


def test_the_plug_out_is_the_first_available_at_or_after_the_stop() -> None:
    start, stop = T, T + 60 * MIN
    assert plug_out_time([at(0, "Charging"), at(60, "Finishing")], start, stop) is None  # cable still in
    assert plug_out_time([at(0, "Charging"), at(60, "Finishing"), at(75, "Available"), at(90, "Available")],
                         start, stop) == T + 75 * MIN
    # the EV left first: Available before the stop arrived
    assert plug_out_time([at(0, "Charging"), at(59, "Available")], start, stop) == stop
    # an Available from before the session says nothing about this one
    assert plug_out_time([at(-30, "Available"), at(0, "Charging")], start, stop) is None


def test_a_stored_sample_is_read_with_its_unit_and_a_signed_one_is_not_interpreted() -> None:
    s = MeterSample("ST-1", 1, 7, "2025-03-01T12:00:00Z", "12.5", T, unit="kWh")
    got = sampled(s)
    assert (got.value, got.unit, got.measurand, got.timestamp) == (Decimal("12.5"), "kWh",
                                                                   "Energy.Active.Import.Register", T)
    signed = sampled(MeterSample("ST-1", 1, 7, "2025-03-01T12:00:00Z", "<ocmf>", T, format="SignedData"))
    assert signed.signed and signed.value is None
