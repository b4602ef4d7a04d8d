"""The cost engine (controller/pricing/engine.py): table tests per rule, then the invariants as properties."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import model as m
from controller.pricing import PriceBreakdown, SessionFacts, StatusChange, price_session, session_energy
from controller.pricing.money import minor_unit

from .kit import AMS, NYC, D, billing, energy_sample, idle, local, price, readings, tariff, window

START = local(AMS, 2026, 6, 17, 16, 0)  # a Wednesday in summer
NO_TAX = billing(rate="0")


def after(minutes: int) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


def amounts(b: PriceBreakdown) -> dict[tuple[str, str | None], Decimal]:
    return {(ln.component, ln.window): ln.amount for ln in b.lines}


def test_a_session_crossing_the_peak_boundary_splits_energy_between_the_readings_around_it() -> None:
    t = tariff(price(per_kwh="0.30"), windows=(window("peak", "17:00", "21:00", price(per_kwh="0.50")),))
    facts = SessionFacts(START, after(120), readings=readings(START, (0, 0), (40, 8000), (80, 16000), (120, 24000)))
    b = price_session(t, NO_TAX, facts, AMS)
    # 17:00 lies between 16:40 (8000 Wh) and 17:20 (16000 Wh): the register reads 12000 Wh there
    assert [(ln.window, ln.quantity) for ln in b.lines] == [(None, D("12.000000")), ("peak", D("12.000000"))]
    assert amounts(b) == {("energy", None): D("3.60"), ("energy", "peak"): D("6.00")}
    assert b.total == D("9.60") and b.energy_wh == 24000


def test_the_session_fee_and_charging_time_follow_the_windows() -> None:
    t = tariff(price(session_fee="1.00", per_hour="1.00"),
               windows=(window("peak", "17:00", "21:00", price(per_hour="3.00")),))
    b = price_session(t, NO_TAX, SessionFacts(START, after(90)), AMS)
    assert amounts(b) == {("session_fee", None): D("1.00"), ("charging_time", None): D("1.00"),
                          ("charging_time", "peak"): D("1.50")}


def test_idle_time_is_billed_after_the_grace_period() -> None:
    t = tariff(price(idle=idle("6.00", grace_minutes=30)))
    facts = SessionFacts(START, after(180), statuses=(StatusChange(START, "Charging"),
                                                     StatusChange(after(90), "SuspendedEV")))
    b = price_session(t, NO_TAX, facts, AMS)
    assert b.idle_time == dt.timedelta(minutes=90) and b.billed_idle_time == dt.timedelta(hours=1)
    assert amounts(b) == {("idle_time", None): D("6.00")}


def test_idle_within_the_grace_period_is_free() -> None:
    t = tariff(price(idle=idle("6.00", grace_minutes=30)))
    facts = SessionFacts(START, after(100), statuses=(StatusChange(START, "Charging"),
                                                     StatusChange(after(90), "SuspendedEV")))
    assert price_session(t, NO_TAX, facts, AMS).total == 0


def test_suspended_evse_is_not_billed_as_idle() -> None:
    t = tariff(price(per_hour="2.00", idle=idle("6.00")))
    facts = SessionFacts(START, after(120), statuses=(StatusChange(START, "Charging"),
                                                     StatusChange(after(60), "SuspendedEVSE")))
    b = price_session(t, NO_TAX, facts, AMS)
    assert b.idle_time == dt.timedelta(0) and amounts(b) == {("charging_time", None): D("4.00")}


def test_idle_until_unplug_is_provisional_at_stop_and_final_at_unplug() -> None:
    t = tariff(price(idle=idle("6.00", grace_minutes=10, until_unplug=True)))
    statuses = (StatusChange(START, "Charging"), StatusChange(after(60), "SuspendedEV"))
    at_stop = price_session(t, NO_TAX, SessionFacts(START, after(80), statuses=statuses), AMS)
    assert at_stop.provisional and at_stop.total == D("1.00")  # 20 min idle - 10 grace
    final = price_session(t, NO_TAX, SessionFacts(START, after(80), statuses=statuses, plug_out=after(110)), AMS)
    assert not final.provisional and final.billed_idle_time == dt.timedelta(minutes=40) and final.total == 4


def test_prices_including_tax_are_split_into_net_and_tax() -> None:
    t = tariff(price(session_fee="10.00"))
    b = price_session(t, billing(include_tax=True, rate="21"), SessionFacts(START, after(60)), AMS)
    assert (b.subtotal, b.net, b.tax, b.total) == (D("10.00"), D("8.26"), D("1.74"), D("10.00"))


def test_prices_excluding_tax_get_tax_added() -> None:
    t = tariff(price(session_fee="10.00"))
    b = price_session(t, billing(include_tax=False, rate="21"), SessionFacts(START, after(60)), AMS)
    assert (b.subtotal, b.net, b.tax, b.total) == (D("10.00"), D("10.00"), D("2.10"), D("12.10"))


def test_the_tariff_tax_rate_wins_over_the_owner_rate() -> None:
    t = tariff(price(session_fee="10.00"), tax="9")
    b = price_session(t, billing(include_tax=False, rate="21"), SessionFacts(START, after(60)), AMS)
    assert (b.tax, b.total, b.tax_rate_percent) == (D("0.90"), D("10.90"), D(9))


def test_yen_amounts_round_to_whole_yen_half_up() -> None:
    t = tariff(price(per_kwh="35.5"), currency="JPY")
    facts = SessionFacts(START, after(60), readings=readings(START, (0, 0), (60, 10500)))  # 372.75 JPY
    b = price_session(t, billing(include_tax=True, rate="10"), facts, AMS)
    assert (b.total, b.net, b.tax, b.lines[0].amount) == (D(373), D(339), D(34), D(373))
    half = price_session(tariff(price(per_kwh="0.5"), currency="JPY"), NO_TAX,
                         SessionFacts(START, after(60), readings=readings(START, (0, 0), (60, 1000))), AMS)
    assert half.total == D(1)


def test_dinar_amounts_round_to_three_decimals_half_up() -> None:
    t = tariff(price(per_kwh="0.0125"), currency="KWD")
    b = price_session(t, NO_TAX, SessionFacts(START, after(60), readings=readings(START, (0, 0), (60, 1000))),
                      AMS)
    assert b.total == D("0.013") and b.total.as_tuple().exponent == -3


def test_rounded_lines_add_up_to_the_total_with_the_remainder_on_the_largest_remainder() -> None:
    t = tariff(price(session_fee="0.004", per_kwh="0.001", per_hour="0.007"))
    facts = SessionFacts(START, after(60), readings=readings(START, (0, 0), (60, 4000)))
    b = price_session(t, NO_TAX, facts, AMS)  # 0.004 + 0.004 + 0.007 = 0.015 -> 0.02
    assert b.total == D("0.02") and [ln.amount for ln in b.lines] == [D("0.01"), D("0.00"), D("0.01")]


def test_the_minimum_price_lifts_a_cheap_session_but_a_free_one_stays_free() -> None:
    t = tariff(price(per_kwh="0.30"), min_price="2.00")
    cheap = price_session(t, NO_TAX, SessionFacts(START, after(60), readings=readings(START, (0, 0), (60, 1000))),
                          AMS)
    assert (cheap.subtotal, cheap.adjustment, cheap.adjustment_reason, cheap.total) == (
        D("0.30"), D("1.70"), "min_price", D("2.00"))
    assert price_session(t, NO_TAX, SessionFacts(START, after(60)), AMS).total == 0


def test_the_maximum_price_caps_a_long_session() -> None:
    t = tariff(price(per_hour="2.00"), max_price="10.00")
    b = price_session(t, NO_TAX, SessionFacts(START, after(600)), AMS)
    assert (b.subtotal, b.adjustment, b.total) == (D("20.00"), D("-10.00"), D("10.00"))


def test_a_free_group_pays_nothing_and_the_tariff_order_of_groups_decides() -> None:
    groups = (m.GroupPrice("employees", free=True), m.GroupPrice("partners", price=price(per_kwh="0.10")))
    t = tariff(price(session_fee="1.00", per_kwh="0.30"), groups=groups, min_price="2.00")
    facts = SessionFacts(START, after(60), groups=("partners", "employees"),
                         readings=readings(START, (0, 0), (60, 10000)))
    b = price_session(t, NO_TAX, facts, AMS)
    assert (b.group, b.total, b.lines) == ("employees", 0, ())


def test_a_group_price_applies_at_all_times_with_parts_left_out_as_zero() -> None:
    groups = (m.GroupPrice("partners", price=price(per_kwh="0.10")),)
    t = tariff(price(session_fee="1.00", per_kwh="0.30"), groups=groups,
               windows=(window("peak", "16:00", "21:00", price(per_kwh="0.50")),))
    facts = SessionFacts(START, after(60), groups=("partners",), readings=readings(START, (0, 0), (60, 10000)))
    b = price_session(t, NO_TAX, facts, AMS)
    assert amounts(b) == {("energy", None): D("1.00")}


def test_an_implausible_meter_stop_is_priced_from_meter_values_under_review() -> None:
    samples = [energy_sample(START, "1000"), energy_sample(after(30), "6000"), energy_sample(after(60), "11000")]
    energy = session_energy(start=START, stop=after(60), meter_start=1000, meter_stop=900_000, samples=samples,
                            max_power_kw=Decimal(11))
    facts = SessionFacts(START, after(60), readings=energy.readings, anomalies=energy.anomalies)
    b = price_session(tariff(price(per_kwh="0.30")), NO_TAX, facts, AMS)
    assert b.energy_wh == 10000 and b.total == D("3.00") and b.under_review


def test_a_stop_before_the_start_is_priced_as_no_time_under_review() -> None:
    b = price_session(tariff(price(per_hour="2.00")), NO_TAX, SessionFacts(after(60), START), AMS)
    assert b.total == 0 and b.under_review


# --- properties ------------------------------------------------------------------------------------------

money = st.decimals(0, 50, places=4, allow_nan=False)
maybe_money = st.none() | money
clock = st.integers(0, 47).map(lambda h: f"{h // 2:02d}:{30 * (h % 2):02d}")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
idle_st = st.none() | st.builds(m.IdleFee, money, st.integers(0, 120), st.booleans())
prices_st = st.builds(m.PriceComponents, maybe_money, maybe_money, maybe_money, idle_st)
windows_st = st.lists(st.builds(lambda n, d, s, e, p: m.TariffWindow(f"w{n}", tuple(sorted(d)), s, e, p),
                                st.integers(0, 5), st.sets(st.sampled_from(DAYS), min_size=1), clock,
                                clock | st.just("24:00"), prices_st).filter(lambda w: w.start != w.end),
                      max_size=3)
groups_st = st.lists(st.builds(m.GroupPrice, st.sampled_from(["staff", "guests", "fleet"]), st.booleans(),
                               prices_st), max_size=2)


@st.composite
def tariffs(draw: st.DrawFn) -> m.Tariff:
    lo, hi = draw(maybe_money), draw(maybe_money)
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    unit = minor_unit(currency := draw(st.sampled_from(["EUR", "JPY", "KWD"])))
    return m.Tariff("t", currency, draw(prices_st), src=m.Src("t.yaml", 0), windows=tuple(draw(windows_st)),
                    group_prices=tuple(draw(groups_st)),
                    min_price=lo.quantize(unit) if lo is not None else None,
                    max_price=hi.quantize(unit) if hi is not None else None,
                    tax_rate_percent=draw(st.none() | st.decimals(0, 30, places=2, allow_nan=False)))


# (zone, an instant at which its UTC offset changes): sessions around 23- and 25-hour days
CHANGES = [(AMS, dt.datetime(2024, 3, 31, 1, tzinfo=dt.UTC)), (AMS, dt.datetime(2024, 10, 27, 1, tzinfo=dt.UTC)),
           (NYC, dt.datetime(2024, 3, 10, 7, tzinfo=dt.UTC)), (NYC, dt.datetime(2024, 11, 3, 6, tzinfo=dt.UTC))]
STATUSES = ["Charging", "SuspendedEV", "SuspendedEVSE", "Preparing"]


@st.composite
def sessions(draw: st.DrawFn) -> tuple[SessionFacts, zoneinfo.ZoneInfo]:
    tz, change = draw(st.sampled_from(CHANGES))
    start = change + dt.timedelta(seconds=draw(st.integers(-30 * 3600, 3600)))  # UTC: elapsed arithmetic
    seconds = draw(st.integers(0, 30 * 3600))
    stop = start + dt.timedelta(seconds=seconds)
    times = sorted(draw(st.lists(st.integers(-600, seconds + 600), max_size=8)))
    wh = draw(st.lists(st.integers(-500, 20_000), min_size=len(times), max_size=len(times)))
    regs = tuple(readings(start, *((t // 60, w) for t, w in zip(times, wh))))
    statuses = tuple(StatusChange(start + dt.timedelta(seconds=draw(st.integers(-60, seconds))),
                                  draw(st.sampled_from(STATUSES))) for _ in range(draw(st.integers(0, 4))))
    plug = draw(st.none() | st.integers(-600, 6 * 3600))
    return SessionFacts(start.astimezone(tz), stop.astimezone(tz),
                        groups=tuple(draw(st.lists(st.sampled_from(["staff", "guests"]), max_size=2))),
                        readings=regs, statuses=statuses,
                        plug_out=stop + dt.timedelta(seconds=plug) if plug is not None else None), tz


@settings(max_examples=200, deadline=None)
@given(t=tariffs(), session=sessions(), include_tax=st.booleans(), owner_rate=st.sampled_from(["0", "21", "7.7"]))
def test_every_price_is_non_negative_adds_up_and_respects_min_max_and_free_groups(
        t: m.Tariff, session: tuple[SessionFacts, zoneinfo.ZoneInfo], include_tax: bool, owner_rate: str) -> None:
    facts, tz = session
    b = price_session(t, billing(include_tax, owner_rate), facts, tz)
    unit = minor_unit(t.currency)
    parts = [b.total, b.net, b.tax, b.subtotal, b.adjustment, *(ln.amount for ln in b.lines)]
    assert all(p == p.quantize(unit) for p in parts)  # rounded to the minor unit
    assert b.total >= 0 and b.net >= 0 and b.tax >= 0 and b.energy_wh >= 0
    assert all(ln.amount >= 0 and ln.quantity > 0 and ln.unit_price > 0 for ln in b.lines)
    assert sum((ln.amount for ln in b.lines), Decimal(0)) == b.subtotal
    declared = b.subtotal + b.adjustment
    assert declared == (b.total if include_tax else b.net)
    assert b.net + b.tax == b.total
    if t.max_price is not None:
        assert declared <= t.max_price
    if t.min_price is not None and b.subtotal > 0:
        assert declared >= t.min_price
    mine = [g for g in t.group_prices if g.group in facts.groups]
    if mine and mine[0].free:
        assert b.total == 0 and b.lines == () and not b.provisional
    if b.subtotal == 0 and b.adjustment == 0:
        assert b.total == 0
    elapsed = max(dt.timedelta(0), facts.stop.astimezone(dt.UTC) - facts.start.astimezone(dt.UTC))
    assert b.charging_time <= elapsed and b.billed_idle_time <= b.idle_time


positive = st.decimals("0.01", 50, places=2, allow_nan=False)
paid_windows = st.lists(st.builds(lambda n, d, s, e, kwh, h: m.TariffWindow(f"w{n}", tuple(sorted(d)), s, e,
                                                                             m.PriceComponents(None, kwh, h)),
                                  st.integers(0, 5), st.sets(st.sampled_from(DAYS), min_size=1), clock,
                                  clock | st.just("24:00"), positive, positive).filter(lambda w: w.start != w.end),
                        max_size=3)


@settings(max_examples=100, deadline=None)
@given(windows=paid_windows, session=sessions(), kwh=positive, per_hour=positive)
def test_window_lines_account_for_all_the_energy_and_charging_time_of_the_session(
        windows: list[m.TariffWindow], session: tuple[SessionFacts, zoneinfo.ZoneInfo], kwh: Decimal,
        per_hour: Decimal) -> None:
    facts, tz = session
    t = tariff(m.PriceComponents(per_kwh=kwh, per_hour=per_hour), windows=tuple(windows))
    b = price_session(t, NO_TAX, SessionFacts(facts.start, facts.stop, readings=facts.readings), tz)
    shown = Decimal("0.000001") * len(b.lines)  # quantities are shown to 6 decimals
    energy = sum((ln.quantity for ln in b.lines if ln.component == "energy"), Decimal(0))
    hours = sum((ln.quantity for ln in b.lines if ln.component == "charging_time"), Decimal(0))
    assert abs(energy - b.energy_wh / 1000) <= shown
    assert abs(hours - Decimal(b.charging_time.total_seconds()) / 3600) <= shown
    elapsed = facts.stop.astimezone(dt.UTC) - facts.start.astimezone(dt.UTC)
    assert b.charging_time == elapsed  # no status timeline: nothing is idle
