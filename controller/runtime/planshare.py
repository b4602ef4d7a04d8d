"""Plans shared by stations whose planning inputs are equal: a fleet-wide change plans once per class.

Role: `plan_station` is pure, so two stations that give it equal inputs get equal plans but for whose they
are (the station's identity and name, on the plan and on each action). A revision that changes a profile
used by thousands of identical chargers would plan the same thing thousands of times; `SharedPlans` plans it
once and hands each station a copy made out to it.

Equal inputs, checked field by field against a plan made moments before (never guessed from a hash):

- the same desired state (the same object: one revision);
- the effective station, every field but the `Station` it came from, and of that `Station` only what the
  planner reads besides identity and name (its time zone); every other station field reaches the planner
  through the effective station;
- the observed station, every field but its identity and the time of its last read (the planners only ask
  whether it was ever read); configuration keys are interned (`config_key`), so comparing two chargers'
  configurations is mostly comparing pointers;
- the write-only secrets, and the accepted list: by its content address (`observed.local_list_hash`, part of
  the observed station), never entry by entry (5,000 cards against every class was the access change's
  whole CPU);
- no pending reservation (their ids and expiry times are the station's own: planned directly);
- the time: a plan is reused from its own `now` for at most `horizon` (1 s), never at or past its
  `next_review_at` (every time-driven change - tariff windows, UTC offsets, reboot windows - sets it) and
  never across a quarter hour (the only times a calendar day can turn in some time zone, which the local
  list's card validity follows).

Anything else - a station no longer declared, not observed yet - is planned directly. The tests hold the
invariant: the plan handed out equals `plan_station`'s for the same station, input by input.

Cost bound: candidates are bucketed by what cheaply tells classes apart (profiles, tariff, accepted list,
firmware, model) and at most `PER_BUCKET` are compared, so a fleet where every station differs pays a few
comparisons per station on top of planning it.

Boundary: runtime state (a small table per desired state) around the pure planner.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from collections.abc import Mapping, Sequence
from typing import TypeVar

from controller.config.access import ListEntry
from controller.config.effective import EffectiveStation, boot_matters, effective_station
from controller.config.model import DesiredState
from controller.reconcilers import ObservedStation, Plan, plan_station
from controller.reconcilers.planner import PendingReservation

_T = TypeVar("_T")
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
HORIZON = dt.timedelta(seconds=1)
PER_BUCKET = 4  # classes compared with: the newest planned within `HORIZON` with the same profiles, tariff,
MAX_BUCKETS = 1024  # accepted list, firmware and model (a fleet where every station differs pays 4 comparisons)
_QUARTER_HOUR_S = 900

# every field but the station's own (the `Station` an effective station came from; an observed station's
# identity and read time): taken as a tuple in C and compared element by element, identical objects at once
_effective_fields = operator.attrgetter(*(f.name for f in dataclasses.fields(EffectiveStation) if f.name != "station"))
_observed_fields = operator.attrgetter(*(f.name for f in dataclasses.fields(ObservedStation)
                                         if f.name not in ("identity", "read_at")))


def _same_effective(a: EffectiveStation, b: EffectiveStation) -> bool:
    return a.station.timezone == b.station.timezone and _effective_fields(a) == _effective_fields(b)


def _same_observed(a: ObservedStation, b: ObservedStation) -> bool:
    return (a.read_at is None) == (b.read_at is None) and _observed_fields(a) == _observed_fields(b)


def _quarter(t: dt.datetime) -> int:
    return int(t.timestamp()) // _QUARTER_HOUR_S


@dataclasses.dataclass(slots=True)
class _Class:
    eff: EffectiveStation
    observed: ObservedStation
    snapshot_entries: Sequence[ListEntry] | None
    secrets: Mapping[str, str]
    now: dt.datetime
    plan: Plan
    until: dt.datetime = dataclasses.field(init=False)  # now + HORIZON
    quarter: int = dataclasses.field(init=False)  # the quarter hour of now

    def __post_init__(self) -> None:
        self.until = self.now + HORIZON
        self.quarter = _quarter(self.now)

    def matches(self, eff: EffectiveStation, observed: ObservedStation, snapshot_entries: Sequence[ListEntry] | None,
                secrets: Mapping[str, str], now: dt.datetime, quarter: int) -> bool:
        """`quarter`: the quarter hour of `now` (`_quarter(now)`, asked once per plan, not per candidate)."""
        review = self.plan.next_review_at
        if not (self.now <= now < self.until) or (review is not None and now >= review) or quarter != self.quarter:
            return False
        if self.secrets != secrets or (self.snapshot_entries is None) != (snapshot_entries is None):
            return False
        # the accepted list's entries are those of `observed.local_list_hash`, their content address, which
        # the observed comparison covers: thousands of entries are never compared one by one
        return _same_effective(self.eff, eff) and _same_observed(self.observed, observed)


def _with(obj: _T, **changes: object) -> _T:
    """`dataclasses.replace(obj, **changes)` for a frozen dataclass instance with a `__dict__`, without running
    `__init__` again on values checked when `obj` was made: ~1 us instead of ~5 per action, for every
    station a shared plan is made out to."""
    values = getattr(obj, "__dict__", None)
    if values is None:
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    cls = type(obj)
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    new = object.__new__(cls)
    fresh = vars(new)
    if len(values) == len(names):  # nothing but the fields (the usual case): copied whole
        fresh.update(values)
        fresh.update(changes)
    else:  # fields only: nothing cached is copied
        fresh.update({name: values[name] for name in names}, **changes)
    return new


def made_out_to(plan: Plan, identity: str, name: str | None) -> Plan:
    """`plan` as the station `identity` (its declared spelling) named `name` would have it (the actions are
    the same: whom they go to is the plan's station)."""
    if plan.station == identity and plan.name == name:
        return plan
    return _with(plan, station=identity, name=name)


class SharedPlans:
    """`plan()` is `plan_station()`, planning once per class of stations with equal inputs."""

    def __init__(self, per_bucket: int = PER_BUCKET, max_buckets: int = MAX_BUCKETS) -> None:
        self.per_bucket = per_bucket
        self.max_buckets = max_buckets
        self._desired: DesiredState | None = None
        # candidates by what cheaply tells classes apart; each list oldest first, planned within `HORIZON`
        self._buckets: dict[tuple[object, ...], list[_Class]] = {}
        self.planned = 0  # plans made (plan_station called)
        self.shared = 0  # plans handed out from a class

    def plan(self, desired: DesiredState, identity: str, observed: ObservedStation | None, now: dt.datetime, *,
             pending_reservations: Sequence[PendingReservation] = (),
             snapshot_entries: Sequence[ListEntry] | None = None,
             secrets: Mapping[str, str] | None = None) -> Plan:
        """`plan_station(...)`. `snapshot_entries` must be the entries of `observed.local_list_hash` (as
        `controller.runtime.observe.observed_from_store` gives them): they are compared by that address."""
        secrets = secrets or {}
        station = desired.station_for_identity(identity)
        if station is None or observed is None or not observed.observed or pending_reservations:
            self.planned += 1
            return plan_station(desired, identity, observed, now, pending_reservations=pending_reservations,
                                snapshot_entries=snapshot_entries, secrets=secrets)
        if desired is not self._desired:
            self._desired, self._buckets = desired, {}
        eff = effective_station(desired, station, observed.boot if boot_matters(desired) else None)
        key = (eff.profiles, eff.tariff, observed.local_list_hash, observed.firmware, observed.model)
        bucket = self._buckets.get(key)
        if bucket is not None:
            while bucket and not now < bucket[0].until:
                del bucket[0]
            quarter = _quarter(now) if bucket else 0
            for cls in reversed(bucket):  # at most `per_bucket` comparisons, however varied the fleet
                if cls.matches(eff, observed, snapshot_entries, secrets, now, quarter):
                    self.shared += 1
                    return made_out_to(cls.plan, station.identity, station.name)
        self.planned += 1
        plan = plan_station(desired, identity, observed, now, snapshot_entries=snapshot_entries, secrets=secrets)
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._buckets.clear()
            bucket = self._buckets[key] = []
        bucket.append(_Class(eff, observed, snapshot_entries, dict(secrets), now, plan))
        if len(bucket) > self.per_bucket:
            del bucket[0]
        return plan
