"""Session energy (controller/pricing/energy.py): meterStop − meterStart when plausible, else meter values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import model as m
from controller.pricing.energy import Reading, energy_at, evse_max_power_kw, power_readings, session_energy

from .kit import UTC, energy_sample

T0 = dt.datetime(2026, 6, 17, 8, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_a_plausible_meter_stop_gives_the_energy_with_no_review() -> None:
    r = session_energy(start=T0, stop=at(60), meter_start=1000, meter_stop=8000, max_power_kw=Decimal(11))
    assert (r.wh, r.source, r.under_review) == (Decimal(7000), "meter_stop", False)
    assert r.readings == (Reading(T0, Decimal(1000)), Reading(at(60), Decimal(8000)))


def test_an_implausible_meter_stop_falls_back_to_meter_values_and_flags_review() -> None:
    samples = [energy_sample(at(0), "1000"), energy_sample(at(30), "6000"), energy_sample(at(60), "11000")]
    r = session_energy(start=T0, stop=at(60), meter_start=1000, meter_stop=999_999, samples=samples,
                       max_power_kw=Decimal(11))  # at most 12.1 kWh in an hour
    assert (r.wh, r.source, r.under_review) == (Decimal(10000), "meter_values", True)
    assert "implausible" in r.anomalies[0]


def test_a_meter_stop_below_meter_start_is_never_a_negative_amount() -> None:
    r = session_energy(start=T0, stop=at(60), meter_start=5000, meter_stop=4000)
    assert r.wh == 0 and r.source == "none" and r.under_review


def test_kwh_samples_are_read_as_thousands_of_wh() -> None:
    samples = [energy_sample(at(0), "1.000", "kWh"), energy_sample(at(30), "6.5", "kWh"),
               energy_sample(at(60), "12.25", "KWH")]
    r = session_energy(start=T0, stop=at(60), meter_start=None, meter_stop=None, samples=samples,
                       max_power_kw=Decimal(22))
    assert r.wh == Decimal(11250) and r.source == "meter_values"
    assert [x.wh for x in r.readings] == [Decimal(1000), Decimal(6500), Decimal(12250)]


def test_kwh_samples_join_a_plausible_meter_stop_timeline() -> None:
    samples = [energy_sample(at(30), "4.5", "kWh")]
    r = session_energy(start=T0, stop=at(60), meter_start=1000, meter_stop=8000, samples=samples)
    assert [x.wh for x in r.readings] == [Decimal(1000), Decimal(4500), Decimal(8000)] and not r.under_review


def test_out_of_order_samples_are_sorted_by_time() -> None:
    samples = [energy_sample(at(60), "9000"), energy_sample(at(0), "1000"), energy_sample(at(30), "5000")]
    r = session_energy(start=T0, stop=at(60), meter_start=None, meter_stop=None, samples=samples)
    assert [x.wh for x in r.readings] == [Decimal(1000), Decimal(5000), Decimal(9000)] and r.wh == 8000


def test_a_reading_that_goes_down_is_dropped_and_flagged() -> None:
    samples = [energy_sample(at(0), "1000"), energy_sample(at(20), "4000"), energy_sample(at(40), "200"),
               energy_sample(at(60), "9000")]
    r = session_energy(start=T0, stop=at(60), meter_start=None, meter_stop=None, samples=samples)
    assert r.wh == 8000
    assert any("non-monotonic" in a and "200 Wh" in a for a in r.anomalies)


def test_a_reading_faster_than_the_evse_can_deliver_is_dropped_and_flagged() -> None:
    points = ((0, "0"), (10, "100"), (20, "200"), (30, "300"), (31, "100000"), (32, "100001"))
    r = session_energy(start=T0, stop=at(40), meter_start=None, meter_stop=None,
                       samples=[energy_sample(at(t), v) for t, v in points], max_power_kw=Decimal(11))
    assert r.wh == 300
    assert any(a.startswith("2 implausible") for a in r.anomalies)


def test_a_spike_inside_a_plausible_meter_stop_session_is_left_out_of_the_timeline() -> None:
    samples = [energy_sample(at(30), "50000")]
    r = session_energy(start=T0, stop=at(60), meter_start=1000, meter_stop=8000, samples=samples)
    assert r.wh == 7000 and len(r.readings) == 2 and r.under_review


def test_the_total_reading_wins_over_phase_readings() -> None:
    samples = [energy_sample(at(0), "1000"), energy_sample(at(0), "300", phase="L1"),
               energy_sample(at(60), "4000"), energy_sample(at(60), "1300", phase="L1")]
    r = session_energy(start=T0, stop=at(60), meter_start=None, meter_stop=None, samples=samples)
    assert r.wh == 3000


def test_phase_readings_are_summed_when_no_total_is_reported() -> None:
    samples = [energy_sample(at(t), str(v), phase=p)
               for t, v0 in ((0, 100), (60, 1100)) for p, v in (("L1", v0), ("L2", v0), ("L3-N", v0))]
    r = session_energy(start=T0, stop=at(60), meter_start=None, meter_stop=None, samples=samples)
    assert r.wh == 3000


def test_no_readings_at_all_count_as_zero_under_review() -> None:
    r = session_energy(start=T0, stop=at(60), meter_start=1000, meter_stop=None)
    assert (r.wh, r.source, r.under_review) == (Decimal(0), "none", True)


def test_other_measurands_and_unknown_units_are_not_energy() -> None:
    samples = [energy_sample(at(0), "1000"), energy_sample(at(30), "7000", measurand="Power.Active.Import"),
               energy_sample(at(45), "99", unit="varh"), energy_sample(at(60), "2000")]
    r = session_energy(start=T0, stop=at(60), meter_start=None, meter_stop=None, samples=samples)
    assert r.wh == 1000 and any("varh" in a for a in r.anomalies)


def test_the_evse_max_power_is_its_strongest_plug() -> None:
    evse = m.Evse(1, (m.Plug("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 16),
                      m.Plug("IEC_62196_T2_COMBO", "CABLE", "DC", 400, 125, Decimal(50))))
    assert evse_max_power_kw(evse) == Decimal(50)


def test_power_samples_are_read_in_watts() -> None:
    readings, _ = power_readings([energy_sample(at(0), "7.4", "kW", measurand="Power.Active.Import")])
    assert readings[0].w == Decimal("7400.0")


def test_between_two_readings_the_register_rises_linearly() -> None:
    timeline = (Reading(at(0), Decimal(0)), Reading(at(40), Decimal(8000)))
    assert energy_at(timeline, at(10)) == Decimal(2000)
    assert energy_at(timeline, at(-5)) == 0 and energy_at(timeline, at(90)) == 8000


register = st.one_of(st.integers(-10**6, 10**7).map(str),
                     st.decimals(-1000, 10**4, places=3, allow_nan=False).map(str))
samples_st = st.lists(st.tuples(st.integers(-30, 200), register, st.sampled_from(["Wh", "kWh", "W", "kwh"]),
                                st.sampled_from([None, None, "L1", "L2", "L3"])), max_size=12)


@settings(max_examples=150, deadline=None)
@given(meter_start=st.none() | st.integers(-100, 10**6), meter_stop=st.none() | st.integers(-100, 2 * 10**6),
       minutes=st.integers(-10, 600), raw=samples_st,
       power=st.none() | st.decimals(1, 350, places=1, allow_nan=False))
def test_energy_is_never_negative_and_the_timeline_never_falls(
        meter_start: int | None, meter_stop: int | None, minutes: int,
        raw: list[tuple[int, str, str, str | None]], power: Decimal | None) -> None:
    samples = [energy_sample(at(t), v, u, p) for t, v, u, p in raw]
    r = session_energy(start=T0, stop=at(minutes), meter_start=meter_start, meter_stop=meter_stop,
                       samples=samples, max_power_kw=power)
    assert r.wh >= 0
    assert all(a.at < b.at and a.wh <= b.wh for a, b in zip(r.readings, r.readings[1:]))
    if r.source != "meter_stop":
        assert r.under_review
    if r.source == "meter_stop":
        assert r.wh == Decimal(meter_stop or 0) - Decimal(meter_start or 0)
