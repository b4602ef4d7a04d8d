"""Pricing reconciler (controller/reconcilers/pricing.py): the DefaultPrice of the window in force, the next
look at the window boundary (23 h and 25 h days in Europe/Amsterdam), TimeOffset before daylight-saving
changes, and nothing for chargers without California Pricing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from controller.config import DesiredState
from controller.config.pricing_display import default_price_value
from controller.reconcilers import Kind, ObservedKey, Plan

from .kit import FakeCharger, charger, repo, station, tariff

UTC = dt.UTC
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CDCP = {"CustomDisplayCostAndPrice": "true"}


def priced(*windows: dict[str, Any]) -> DesiredState:
    return repo(tariff("standard", windows=list(windows), displayText="0.35 EUR/kWh"),
                station("st-1", tariff="standard"))


PEAK = {"name": "peak", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "17:00", "end": "21:00",
        "price": {"perKwh": "0.50"}}
NIGHT = {"name": "night", "days": ALL_DAYS, "start": "22:00", "end": "07:00", "price": {"perKwh": "0.20"}}


def prices(plan: Plan) -> list[str]:
    return [str(a.payload["value"]) for a in plan.actions
            if a.kind is Kind.CHANGE_CONFIGURATION and a.payload["key"] == "DefaultPrice"]


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.timezone(dt.timedelta(hours=2)))  # CEST


def test_the_price_of_the_window_in_force_is_pushed_and_the_next_look_is_the_window_boundary() -> None:
    ds = priced(PEAK)
    t = ds.tariffs["standard"]
    before = FakeCharger(charger(config=CDCP)).plan(ds, now=local(2026, 6, 17, 16, 0))
    assert prices(before) == [default_price_value(t)]
    assert before.next_review_at == dt.datetime(2026, 6, 17, 15, 0, tzinfo=UTC)  # 17:00 CEST
    fc = FakeCharger(charger(config=CDCP))
    fc.apply(before)
    during = fc.plan(ds, now=before.next_review_at)
    assert prices(during) == [default_price_value(t, t.windows[0])]
    assert json.loads(prices(during)[0])["chargingPrice"] == {"kWhPrice": 0.5, "hourPrice": 0, "flatFee": 0}
    assert during.next_review_at == dt.datetime(2026, 6, 17, 19, 0, tzinfo=UTC)  # 21:00 CEST
    fc.apply(during)
    assert fc.plan(ds, now=local(2026, 6, 17, 18, 0)).actions == ()


@pytest.mark.parametrize(("saturday", "night_hours", "day_hours"), [
    (dt.datetime(2026, 3, 28, 21, 0, tzinfo=UTC), 8, 23),  # 22:00 CET; clocks go forward that night
    (dt.datetime(2026, 10, 24, 20, 0, tzinfo=UTC), 10, 25),  # 22:00 CEST; clocks go back that night
    (dt.datetime(2026, 6, 13, 20, 0, tzinfo=UTC), 9, 24),  # an ordinary weekend
], ids=["23h-day", "25h-day", "24h-day"])
def test_window_boundaries_follow_the_wall_clock_across_daylight_saving_changes(
        saturday: dt.datetime, night_hours: int, day_hours: int) -> None:
    ds = priced(NIGHT)
    fc = FakeCharger(charger(config=CDCP))
    starts = fc.plan(ds, now=saturday)  # the night window starts: 22:00 local
    assert json.loads(prices(starts)[0])["chargingPrice"]["kWhPrice"] == 0.2
    morning = starts.next_review_at
    assert morning is not None and morning - saturday == dt.timedelta(hours=night_hours)  # 07:00 local
    fc.apply(starts)
    ends = fc.plan(ds, now=morning)
    assert json.loads(prices(ends)[0])["chargingPrice"]["kWhPrice"] == 0.35
    assert ends.next_review_at is not None and ends.next_review_at - saturday == dt.timedelta(hours=day_hours)


def test_time_offset_keys_announce_the_next_daylight_saving_change_and_the_plan_looks_again_then() -> None:
    offsets = {**CDCP, "TimeOffset": "+00:00", "NextTimeOffsetTransitionDateTime": "",
               "TimeOffsetNextTransition": ""}
    fc = FakeCharger(charger(config=offsets))
    plan = fc.plan(priced(), now=dt.datetime(2026, 3, 20, 12, tzinfo=UTC))
    values = {str(a.payload["key"]): a.payload["value"] for a in plan.actions
              if a.kind is Kind.CHANGE_CONFIGURATION and a.payload["key"] != "DefaultPrice"}
    assert values == {"TimeOffset": "+01:00", "NextTimeOffsetTransitionDateTime": "2026-03-29T01:00:00Z",
                      "TimeOffsetNextTransition": "+02:00"}
    assert plan.next_review_at == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    fc.apply(plan)
    respelt = ObservedKey("NextTimeOffsetTransitionDateTime", "2026-03-29T03:00:00+02:00")  # same instant
    fc.obs = dataclasses.replace(fc.obs, configuration={**fc.obs.configuration,
                                                        "NEXTTIMEOFFSETTRANSITIONDATETIME": respelt})
    assert fc.plan(priced(), now=dt.datetime(2026, 3, 20, 13, tzinfo=UTC)).actions == ()
    after = fc.plan(priced(), now=plan.next_review_at)
    assert {str(a.payload["key"]): a.payload["value"] for a in after.actions
            if a.kind is Kind.CHANGE_CONFIGURATION} == {
        "TimeOffset": "+02:00", "NextTimeOffsetTransitionDateTime": "2026-10-25T01:00:00Z",
        "TimeOffsetNextTransition": "+01:00"}


@pytest.mark.parametrize("config", [{}, {"CustomDisplayCostAndPrice": "false"}], ids=["absent", "false"])
def test_chargers_without_california_pricing_get_no_price_actions(config: dict[str, str]) -> None:
    plan = FakeCharger(charger(config=config)).plan(priced(PEAK), now=local(2026, 6, 17, 18, 0))
    assert prices(plan) == [] and plan.next_review_at is None


def test_an_equal_price_written_differently_is_left_alone() -> None:
    ds = priced()
    value = json.loads(default_price_value(ds.tariffs["standard"]))
    spaced = json.dumps(value, indent=1)
    assert FakeCharger(charger(config={**CDCP, "DefaultPrice": spaced})).plan(ds).actions == ()
