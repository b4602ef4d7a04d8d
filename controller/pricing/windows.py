"""A session split at tariff-window boundaries, in the station's local wall-clock time.

A window (``days`` + ``HH:MM`` start / end, end at or before start = crossing midnight, belonging to the
day it starts on; ``24:00`` = the end of the day) is in force at an instant when the station's wall
clock at that instant reads inside it. On daylight-saving days that means:
- 23-hour day: wall times in the skipped hour never occur; a window boundary inside it takes effect at
  the jump (02:30 on a spring-forward day starts a window at 03:00 summer time).
- 25-hour day: wall times in the repeated hour occur twice and belong, both times, to the window whose
  wall time it is (a night window 00:00–02:30 applies during both 02:00–02:30).

`split` cuts [start, end) at every instant where the wall clock reads a window's start or end (one,
two or no instants per boundary, found with both `fold`s) and at every UTC-offset change, labels each
piece with the window in force at its first instant and merges neighbours with the same label. The
pieces are contiguous: they cover the session exactly once, whatever the day's length.

Boundary: pure; instants must be timezone-aware.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Sequence

from controller.config import model as m

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_US = 86_400_000_000
_MIN_US = 60_000_000
_STEP_S = 3600  # offset changes are looked for hour by hour (no zone changes twice within an hour)


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    """[start, end) in force under `window` (None = the base prices)."""

    start: dt.datetime
    end: dt.datetime
    window: m.TariffWindow | None

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start


def _minutes(hhmm: str) -> int:
    h, mm = hhmm.split(":")
    return int(h) * 60 + int(mm)


def _span(w: m.TariffWindow) -> tuple[int, int]:
    """Start and end in minutes from the start of the window's day (end > start; crossing: end > 1440)."""
    s, e = _minutes(w.start), _minutes(w.end)
    return s, (e if e > s else e + 1440)


def _aware(t: dt.datetime) -> dt.datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"timezone-aware instant needed, got {t!r}")
    return t


def window_at(windows: Sequence[m.TariffWindow], at: dt.datetime, tz: dt.tzinfo) -> m.TariffWindow | None:
    """The window in force at `at` (the first listed, should declared windows overlap), or None."""
    local = _aware(at).astimezone(tz)
    us = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000 + local.microsecond
    today, yesterday = DAYS[local.weekday()], DAYS[(local.weekday() - 1) % 7]
    for w in windows:
        s, e = _span(w)
        if today in w.days and s * _MIN_US <= us < e * _MIN_US:
            return w
        if e > 1440 and yesterday in w.days and us < (e - 1440) * _MIN_US:
            return w
    return None


def _instants(naive: dt.datetime, tz: dt.tzinfo) -> set[dt.datetime]:
    """Every instant at which the wall clock in `tz` reads `naive` (none in a gap, two in a repeat)."""
    out = set()
    for fold in (0, 1):
        t = naive.replace(tzinfo=tz, fold=fold).astimezone(dt.UTC)
        if t.astimezone(tz).replace(tzinfo=None) == naive:
            out.add(t)
    return out


def _offset_changes(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo) -> set[dt.datetime]:
    """The instants in (start, end) at which `tz` changes its UTC offset (found to the second)."""
    def offset(s: int) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(s, dt.UTC).astimezone(tz).utcoffset()

    out: set[dt.datetime] = set()
    lo_s, hi_s = math.floor(start.timestamp()), math.ceil(end.timestamp())
    t, before = lo_s, offset(lo_s)
    while t < hi_s:
        nxt = min(t + _STEP_S, hi_s)
        after = offset(nxt)
        if after != before:
            lo, hi = t, nxt  # offset(lo) == before != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            out.add(dt.datetime.fromtimestamp(hi, dt.UTC))
            before = after
        t = nxt
    return {c for c in out if start < c < end}


def split(start: dt.datetime, end: dt.datetime, windows: Sequence[m.TariffWindow],
          tz: dt.tzinfo) -> tuple[Segment, ...]:
    """[start, end) cut where the window in force changes (see the module doc); () when end <= start."""
    start, end = _aware(start).astimezone(dt.UTC), _aware(end).astimezone(dt.UTC)
    if end <= start:
        return ()
    cuts: set[dt.datetime] = {start, end}
    if windows:
        cuts |= _offset_changes(start, end, tz)
        first_day = start.astimezone(tz).date() - dt.timedelta(days=1)
        last_day = end.astimezone(tz).date() + dt.timedelta(days=1)
        day = first_day
        while day <= last_day:
            midnight = dt.datetime.combine(day, dt.time())
            for w in windows:
                if DAYS[day.weekday()] in w.days:
                    for minutes in _span(w):
                        for t in _instants(midnight + dt.timedelta(minutes=minutes), tz):
                            if start < t < end:
                                cuts.add(t)
            day += dt.timedelta(days=1)
    ordered = sorted(cuts)
    out: list[Segment] = []
    for a, b in itertools.pairwise(ordered):
        here = window_at(windows, a, tz)
        if out and out[-1].window is here:
            out[-1] = Segment(out[-1].start, b, here)
        else:
            out.append(Segment(a, b, here))
    return tuple(out)
