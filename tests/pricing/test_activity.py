"""Charging vs idle time (controller/pricing/activity.py): status timeline and power readings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from controller.pricing.activity import NOT_DRAWING, PAUSED, StatusChange, activity
from controller.pricing.energy import PowerReading

from .kit import UTC

T0 = dt.datetime(2026, 6, 17, 8, 0, tzinfo=UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def minutes(d: dt.timedelta) -> float:
    return d.total_seconds() / 60


def test_suspended_ev_after_charging_is_idle() -> None:
    a = activity(T0, at(120), [StatusChange(at(-1), "Preparing"), StatusChange(T0, "Charging"),
                               StatusChange(at(90), "SuspendedEV")])
    assert (minutes(a.charging_time), minutes(a.idle_time)) == (90, 30)


def test_suspended_evse_is_never_idle() -> None:
    a = activity(T0, at(120), [StatusChange(T0, "Charging"), StatusChange(at(60), "SuspendedEVSE")])
    assert a.idle_time == dt.timedelta(0) and a.periods[-1].kind == PAUSED


def test_only_the_suspended_ev_tail_after_the_last_charge_is_idle() -> None:
    a = activity(T0, at(120), [StatusChange(T0, "Charging"), StatusChange(at(30), "SuspendedEV"),
                               StatusChange(at(40), "Charging"), StatusChange(at(60), "SuspendedEVSE"),
                               StatusChange(at(100), "SuspendedEV")])
    assert (minutes(a.charging_time), minutes(a.idle_time)) == (100, 20)


def test_power_readings_show_idle_when_the_charger_keeps_saying_charging() -> None:
    a = activity(T0, at(120), [StatusChange(T0, "Charging")],
                 [PowerReading(at(0), Decimal(7400)), PowerReading(at(75), Decimal(12))])
    assert minutes(a.idle_time) == 45 and a.periods[-1].kind == NOT_DRAWING


def test_a_power_reading_older_than_the_status_is_stale() -> None:
    a = activity(T0, at(60), [StatusChange(at(10), "Charging")], [PowerReading(at(-5), Decimal(0))])
    assert a.idle_time == dt.timedelta(0)


def test_without_any_status_or_power_nothing_is_idle() -> None:
    assert activity(T0, at(60)).idle_time == dt.timedelta(0)


def test_a_session_that_never_draws_is_idle_from_its_start() -> None:
    a = activity(T0, at(60), [StatusChange(T0, "SuspendedEV")])
    assert a.charging_time == dt.timedelta(0) and minutes(a.idle_time) == 60
