"""Window splitting (controller/pricing/windows.py): exact coverage, wall-clock rules, DST days."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import model as m
from controller.pricing.windows import Segment, split, window_at

from .kit import ALL_DAYS, AMS, NYC, UTC, local, price, window

HOUR = dt.timedelta(hours=1)
DAY_WINDOWS = tuple(window(d, "00:00", "24:00", price(per_kwh="1"), days=(d,)) for d in ALL_DAYS)


def covered(segments: tuple[Segment, ...], name: str) -> dt.timedelta:
    return sum((s.duration for s in segments if s.window and s.window.name == name), dt.timedelta())


def test_the_spring_forward_sunday_lasts_23_hours_in_amsterdam() -> None:
    segs = split(local(AMS, 2024, 3, 30, 12), local(AMS, 2024, 4, 1, 12), DAY_WINDOWS, AMS)
    assert covered(segs, "sun") == 23 * HOUR
    assert [s.window.name for s in segs if s.window] == ["sat", "sun", "mon"]


def test_the_fall_back_sunday_lasts_25_hours_in_amsterdam() -> None:
    segs = split(local(AMS, 2024, 10, 26, 12), local(AMS, 2024, 10, 28, 12), DAY_WINDOWS, AMS)
    assert covered(segs, "sun") == 25 * HOUR


def test_new_york_days_last_23_and_25_hours_on_its_own_dates() -> None:
    spring = split(local(NYC, 2024, 3, 9), local(NYC, 2024, 3, 12), DAY_WINDOWS, NYC)
    fall = split(local(NYC, 2024, 11, 2), local(NYC, 2024, 11, 5), DAY_WINDOWS, NYC)
    assert covered(spring, "sun") == 23 * HOUR and covered(fall, "sun") == 25 * HOUR
    assert covered(spring, "sat") == covered(fall, "mon") == 24 * HOUR


def test_a_night_window_applies_twice_in_the_repeated_hour() -> None:
    night = window("night", "00:00", "02:30", price(per_kwh="0.2"))
    segs = split(local(AMS, 2024, 10, 26, 23), local(AMS, 2024, 10, 27, 5), (night,), AMS)
    assert covered(segs, "night") == dt.timedelta(hours=3)  # 00:00-02:30 summer time + 02:00-02:30 winter time


def test_a_window_starting_in_the_skipped_hour_starts_at_the_jump() -> None:
    early = window("early", "02:30", "04:00", price(per_kwh="0.2"))
    segs = split(local(AMS, 2024, 3, 31, 0), local(AMS, 2024, 3, 31, 6), (early,), AMS)
    (inside,) = [s for s in segs if s.window]
    assert inside.start == dt.datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 03:00 summer time
    assert inside.duration == HOUR


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts_on() -> None:
    night = window("night", "22:00", "06:00", price(per_kwh="0.2"), days=("fri",))
    segs = split(local(AMS, 2026, 6, 19, 20), local(AMS, 2026, 6, 21, 8), (night,), AMS)  # fri 20:00 - sun 08:00
    assert [(s.start, s.end) for s in segs if s.window] == [
        (local(AMS, 2026, 6, 19, 22).astimezone(UTC), local(AMS, 2026, 6, 20, 6).astimezone(UTC))]


def test_without_windows_the_session_is_one_base_segment() -> None:
    start = local(AMS, 2024, 3, 31, 1)
    assert split(start, start + 5 * HOUR, (), AMS) == (Segment(start.astimezone(UTC),
                                                              (start + 5 * HOUR).astimezone(UTC), None),)


def test_an_empty_session_has_no_segments() -> None:
    start = local(AMS, 2024, 3, 31, 1)
    assert split(start, start, DAY_WINDOWS, AMS) == ()


clock = st.integers(0, 47).map(lambda h: f"{h // 2:02d}:{30 * (h % 2):02d}")
windows_st = st.lists(
    st.builds(lambda n, d, s, e: window(f"w{n}", s, e, price(per_kwh=str(n)), days=tuple(d)),
              st.integers(0, 9), st.sets(st.sampled_from(ALL_DAYS), min_size=1).map(sorted),
              clock, st.one_of(clock, st.just("24:00"))).filter(lambda w: w.start != w.end),
    max_size=4)
# (zone, an instant at which its UTC offset changes): 23- and 25-hour days, and a plain summer day
CHANGES = [(AMS, dt.datetime(2024, 3, 31, 1, tzinfo=UTC)), (AMS, dt.datetime(2024, 10, 27, 1, tzinfo=UTC)),
           (NYC, dt.datetime(2024, 3, 10, 7, tzinfo=UTC)), (NYC, dt.datetime(2024, 11, 3, 6, tzinfo=UTC)),
           (AMS, dt.datetime(2026, 6, 17, 10, tzinfo=UTC))]


@settings(max_examples=150, deadline=None)
@given(where=st.sampled_from(CHANGES), before=st.integers(0, 30 * 3600), after=st.integers(0, 30 * 3600),
       micros=st.integers(0, 999_999), windows=windows_st, probes=st.lists(st.floats(0, 1), max_size=5))
def test_windows_cover_the_whole_session_exactly_once(
        where: tuple[zoneinfo.ZoneInfo, dt.datetime], before: int, after: int, micros: int,
        windows: list[m.TariffWindow], probes: list[float]) -> None:
    # the session always spans the offset change; instants in UTC (aware arithmetic and == on a shared
    # ZoneInfo are wall-clock, and an instant in a repeated hour never equals one in another zone)
    tz, change = where
    start = (change - dt.timedelta(seconds=before, microseconds=micros)).astimezone(tz)
    stop = (change + dt.timedelta(seconds=after)).astimezone(tz)
    segs = split(start, stop, windows, tz)
    assert sum((s.duration for s in segs), dt.timedelta()) == stop.astimezone(UTC) - start.astimezone(UTC)
    if segs:
        assert segs[0].start == start.astimezone(UTC) and segs[-1].end == stop.astimezone(UTC)
    for a, b in itertools.pairwise(segs):
        assert a.end == b.start and a.window is not b.window
    for s in segs:
        assert s.duration > dt.timedelta(0)
        last = s.end - dt.timedelta(microseconds=1)
        assert window_at(windows, s.start, tz) is s.window is window_at(windows, last, tz)
        for p in probes:
            assert window_at(windows, min(s.start + (s.end - s.start) * p, last), tz) is s.window
