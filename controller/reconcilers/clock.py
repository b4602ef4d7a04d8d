"""Local wall-clock arithmetic for the reconcilers: weekly windows, their boundaries, UTC offset changes.

Owners declare reboot windows and tariff windows as ``days`` + ``HH:MM`` start / end in the station's time
zone; an end at or before the start crosses midnight (the window belongs to the day it starts on) and
``24:00`` means the end of the day. Instants are always timezone-aware; local times are resolved with
`zoneinfo` (a wall time skipped by a daylight-saving change resolves with the offset before it, e.g.
02:30 on a spring-forward day is 03:30 summer time), so a day may last 23 or 25 hours.

Boundary: pure; `now` is passed in, never read from the system clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY = dt.timedelta(days=1)


class WeeklyWindow(Protocol):
    """Anything with ``days`` / ``start`` / ``end`` (a reboot window, a tariff window)."""

    @property
    def days(self) -> tuple[str, ...]: ...

    @property
    def start(self) -> str: ...

    @property
    def end(self) -> str: ...


W = TypeVar("W", bound=WeeklyWindow)


def zone(name: str | None) -> dt.tzinfo:
    """The time zone called `name` (validated by the loader); UTC when missing."""
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("the reconcilers need a timezone-aware `now`")
    return now


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _span(w: WeeklyWindow) -> tuple[int, int]:
    """Start and end in minutes from the start of the window's day (end > start; crossing -> end > 1440)."""
    s, e = _minutes(w.start), _minutes(w.end)
    return s, (e if e > s else e + 1440)


def window_at(windows: Sequence[W], at: dt.datetime, tz: dt.tzinfo) -> W | None:
    """The window in force at instant `at` (local wall time in `tz`), or None."""
    local = aware(at).astimezone(tz)
    minute = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    for w in windows:
        s, e = _span(w)
        if today in w.days and s <= minute < e:
            return w
        if e > 1440 and yesterday in w.days and minute < e - 1440:
            return w
    return None


def _local_instant(day: dt.date, minutes: int, tz: dt.tzinfo) -> dt.datetime:
    naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def boundaries(windows: Iterable[WeeklyWindow], after: dt.datetime, tz: dt.tzinfo,
               *, starts_only: bool = False) -> list[dt.datetime]:
    """Every window start (and end) strictly after `after` within the next 8 days, in UTC, sorted."""
    local_day = aware(after).astimezone(tz).date()
    out: set[dt.datetime] = set()
    for w in windows:
        s, e = _span(w)
        for offset in range(-1, 9):
            day = local_day + dt.timedelta(days=offset)
            if DAYS[day.weekday()] not in w.days:
                continue
            out.add(_local_instant(day, s, tz))
            if not starts_only:
                out.add(_local_instant(day, e, tz))
    return sorted(t for t in out if t > after)


def next_boundary(windows: Iterable[WeeklyWindow], after: dt.datetime, tz: dt.tzinfo,
                  *, starts_only: bool = False) -> dt.datetime | None:
    found = boundaries(windows, after, tz, starts_only=starts_only)
    return found[0] if found else None


def format_offset(offset: dt.timedelta | None) -> str:
    """A UTC offset as the California Pricing keys want it: ``+01:00``, ``-05:00``."""
    total = int((offset or dt.timedelta()).total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    h, m = divmod(abs(total), 60)
    return f"{sign}{h:02d}:{m:02d}"


def format_instant(at: dt.datetime) -> str:
    """RFC 3339 in UTC, whole seconds: ``2026-10-25T01:00:00Z``."""
    return aware(at).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_offset_change(after: dt.datetime, tz: dt.tzinfo,
                       horizon: dt.timedelta = dt.timedelta(days=400)) -> tuple[dt.datetime, dt.timedelta] | None:
    """The next instant after `after` at which `tz` changes its UTC offset, and the new offset.

    Found by stepping a day at a time and bisecting to the second; None for zones without changes.
    """
    start = aware(after).astimezone(dt.UTC).replace(microsecond=0)
    before = start.astimezone(tz).utcoffset()
    t = start
    end = start + horizon
    while t < end:
        nxt = t + _DAY
        if nxt.astimezone(tz).utcoffset() != before:
            lo, hi = 0, 86_400  # seconds after t: offset(lo) == before, offset(hi) != before
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (t + dt.timedelta(seconds=mid)).astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            at = t + dt.timedelta(seconds=hi)
            new = at.astimezone(tz).utcoffset()
            return at, new if new is not None else dt.timedelta()
        t = nxt
    return None
