"""Charging time and idle time of a session, from the connector status timeline and power readings.

Each instant of the transaction [start, stop) takes the connector status in force (the last
StatusNotification at or before it; of several at one instant, the last given) and the latest power
reading at or before it, if taken no earlier than that status change (an older one is stale):
- SuspendedEVSE: paused (the charger holds power back): never idle, the driver is not at fault.
- SuspendedEV: not drawing.
- Charging: drawing, unless a power reading below `IDLE_POWER_W` says the EV draws nothing.
- any other status, or none: the power reading decides (>= `IDLE_POWER_W` drawing, below: not
  drawing); without one the instant is unknown and counts as possibly drawing, so idle time is never
  billed without evidence.

Charging ends at the end of the last period that is not "not drawing". Idle time is the rest of the
transaction, [charging_end, stop): after charging ended, while the EV draws no power (a session that
never draws is idle from its start). Charging time is [start, charging_end), "from start until
charging ends" as the tariff schema defines perHour; pauses before that count as charging time.
Idle after the stop until unplug is the engine's business (it depends on the tariff).

Instants are handled in UTC. Boundary: pure; statuses and power readings in, intervals out.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable
from decimal import Decimal

from .energy import PowerReading, utc

IDLE_POWER_W = Decimal(100)  # below this an EV "draws no power" (BMS and standby draw a few W)

DRAWING = "drawing"
NOT_DRAWING = "not_drawing"
PAUSED = "paused"
UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class StatusChange:
    """A StatusNotification of the session's connector: from `at` on, the connector is in `status`."""

    at: dt.datetime
    status: str


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    start: dt.datetime
    end: dt.datetime
    kind: str  # DRAWING | NOT_DRAWING | PAUSED | UNKNOWN


@dataclasses.dataclass(frozen=True, slots=True)
class Activity:
    """The transaction [start, stop) as periods; charging is [start, charging_end), idle the rest."""

    start: dt.datetime
    stop: dt.datetime
    charging_end: dt.datetime
    periods: tuple[Period, ...]

    @property
    def charging_time(self) -> dt.timedelta:
        return self.charging_end - self.start

    @property
    def idle_time(self) -> dt.timedelta:
        return self.stop - self.charging_end


def _kind(status: str | None, power_w: Decimal | None) -> str:
    s = (status or "").strip().lower()
    if s == "suspendedevse":
        return PAUSED
    if s == "suspendedev":
        return NOT_DRAWING
    if power_w is not None:
        return DRAWING if power_w >= IDLE_POWER_W else NOT_DRAWING
    return DRAWING if s == "charging" else UNKNOWN


def activity(start: dt.datetime, stop: dt.datetime, statuses: Iterable[StatusChange] = (),
             power: Iterable[PowerReading] = ()) -> Activity:
    """Classify the transaction [start, stop) (see the module doc); stop before start = no time at all."""
    start, stop = utc(start), utc(stop)
    if stop <= start:
        return Activity(start, start, start, ())
    changes = sorted((StatusChange(utc(c.at), c.status) for c in statuses), key=lambda c: c.at)
    readings = sorted((PowerReading(utc(r.at), r.w) for r in power), key=lambda r: r.at)
    change_at = [c.at for c in changes]
    reading_at = [r.at for r in readings]
    cuts = sorted({start, stop} | {t for t in change_at if start < t < stop}
                  | {t for t in reading_at if start < t < stop})
    periods: list[Period] = []
    for a, b in itertools.pairwise(cuts):
        i = bisect.bisect_right(change_at, a)
        j = bisect.bisect_right(reading_at, a)
        status = changes[i - 1] if i else None
        fresh = j and (status is None or readings[j - 1].at >= status.at)
        kind = _kind(status.status if status else None, readings[j - 1].w if fresh else None)
        if periods and periods[-1].kind == kind:
            periods[-1] = Period(periods[-1].start, b, kind)
        else:
            periods.append(Period(a, b, kind))
    charging_end = start
    for p in periods:
        if p.kind != NOT_DRAWING:
            charging_end = p.end
    return Activity(start, stop, charging_end, tuple(periods))
