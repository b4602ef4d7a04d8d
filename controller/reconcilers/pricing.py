"""Pricing reconciler: the tariff -> the charger's price display (OCA California Pricing), where supported.

Only for chargers whose `CustomDisplayCostAndPrice` reads true; nothing at all for the others.
- `DefaultPrice`: the value (`config.pricing_display`) for the tariff window in force at `now` in the
  station's time zone (base prices outside any window), sent when it differs (compared as JSON).
  `next_review_at` is the next window boundary, so the runtime looks again when the next window starts;
  boundaries are wall-clock times, so a window can be 23 or 25 hours away across a daylight-saving day.
- `TimeOffset` (the current UTC offset), `NextTimeOffsetTransitionDateTime` (the next daylight-saving
  change of the zone, RFC 3339 UTC) and `TimeOffsetNextTransition` (the offset after it): kept current
  on chargers that report these optional keys, and looked at again at the change.
The display follows the station's tariff (or, without one, the tariff all its EVSEs share); a station whose
EVSEs have different tariffs shows the station-level one, or the first by name, with a note.

Boundary: pure; desired state, effective station, observed station, now and the station's zone in.
"""

from __future__ import annotations

import datetime as dt

from controller.config import model as m
from controller.config.effective import EffectiveStation
from controller.config.pricing_display import default_price_value

from . import clock
from .actions import Action, Note, Part, Phase, earliest, info
from .configuration import collect, key_change
from .observed import ObservedStation


def _tariff(desired: m.DesiredState, eff: EffectiveStation) -> tuple[m.Tariff | None, Note | None]:
    names = sorted({e.tariff for e in eff.evses if e.tariff})
    name = eff.tariff or (names[0] if names else None)
    note = None
    if len(names) > 1:
        note = info(f"EVSEs have different tariffs ({', '.join(names)}); the price display shows {name}",
                    "DefaultPrice")
    return (desired.tariffs.get(name) if name else None), note


def _same_instant(a: str, b: str | None) -> bool:
    if b is None:
        return False
    try:
        return dt.datetime.fromisoformat(a.replace("Z", "+00:00")) == dt.datetime.fromisoformat(
            b.strip().replace("Z", "+00:00"))
    except ValueError:
        return False


def _same_offset(a: str, b: str | None) -> bool:
    def minutes(t: str) -> int | None:
        t = t.strip()
        sign = -1 if t.startswith("-") else 1
        h, _, mm = t.lstrip("+-").partition(":")
        return sign * (int(h) * 60 + int(mm or 0)) if h.isdigit() and (mm or "0").isdigit() else None
    return b is not None and minutes(a) is not None and minutes(a) == minutes(b)


def plan(desired: m.DesiredState, eff: EffectiveStation, observed: ObservedStation, now: dt.datetime, *,
         tz: dt.tzinfo) -> Part:
    if not observed.custom_display_cost_and_price or not eff.operative:
        return Part()
    tariff, note = _tariff(desired, eff)
    notes = (note,) if note else ()
    if tariff is None:
        return Part(notes=(*notes, info("no tariff applies: the price display is left as it is", "DefaultPrice")))
    window = clock.window_at(tariff.windows, now, tz)
    label = f"window {window.name!r}" if window else "base prices"
    results: list[Action | Note | None] = [
        key_change(observed, "DefaultPrice", default_price_value(tariff, window), phase=Phase.DATA,
                   reason=f"tariff {tariff.name!r}: {label} in force")]
    review = clock.next_boundary(tariff.windows, now, tz) if tariff.windows else None
    if observed.key("TimeOffset") is not None:
        offset = clock.format_offset(now.astimezone(tz).utcoffset())
        current = observed.value("TimeOffset")
        results.append(key_change(observed, "TimeOffset",
                                  current if current and _same_offset(offset, current) else offset,
                                  phase=Phase.DATA, reason="the station's UTC offset now"))
        change = clock.next_offset_change(now, tz)
        if change is not None:
            at, new_offset = change
            when = clock.format_instant(at)
            seen = observed.value("NextTimeOffsetTransitionDateTime")
            results.append(key_change(observed, "NextTimeOffsetTransitionDateTime",
                                      seen if seen and _same_instant(when, seen) else when, phase=Phase.DATA,
                                      reason="the next daylight-saving change", only_if_reported=True))
            nxt = clock.format_offset(new_offset)
            seen = observed.value("TimeOffsetNextTransition")
            results.append(key_change(observed, "TimeOffsetNextTransition",
                                      seen if seen and _same_offset(nxt, seen) else nxt, phase=Phase.DATA,
                                      reason="the UTC offset after the next daylight-saving change",
                                      only_if_reported=True))
            review = earliest(review, at)
    part = collect(results)
    return Part(part.actions, notes + part.notes, review, part.unchanged)
