"""The station planner: every reconciler, combined into one `Plan` per station, in phase order.

`plan_station` runs, for one declared station: pricing and configuration (features / data phases, one
read-back after the last ChangeConfiguration), access (local list, ClearCache), reservations and
availability, activation notes; it checks the combined actions for duplicates and contradictions (one
source per action; should two planners still ask for the same key or connector, the first wins and a
warning says so), sorts them by phase and takes the earliest `next_review_at`.

`plan_removed_station` makes a station that is no longer declared inert (never reset). A station whose
configuration was never read gets an empty plan marked unobserved: nothing is pushed blind. An offline
station is planned from what was last observed; the runtime applies the plan after it reconnects and is
read again.

Boundary: pure; desired state, observed station and now in, a `Plan` out. Rendering lives in `render`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from controller.config.access import ListEntry
from controller.config.effective import effective_station
from controller.config.model import DesiredState

from . import access, activation, availability, clock, configuration, pricing, reservations
from .actions import Action, Kind, Part, Plan, combine, info, sort_actions, warning
from .observed import ObservedStation
from .render import render_plan
from .reservations import PendingReservation

__all__ = ["PendingReservation", "local_list_snapshot", "plan_removed_station", "plan_station", "render_plan"]


def _identity(a: Action) -> tuple[object, ...]:
    p = a.payload
    if a.kind is Kind.CHANGE_CONFIGURATION:
        return (a.kind, str(p["key"]).upper())
    if a.kind is Kind.CHANGE_AVAILABILITY:
        return (a.kind, p["connectorId"])
    if a.kind is Kind.CANCEL_RESERVATION:
        return (a.kind, p["reservationId"])
    if a.kind is Kind.SEND_LOCAL_LIST:
        return (a.kind, p["listVersion"])
    return (a.kind,)


def consistent(part: Part) -> Part:
    """Drop repeated actions; on a contradiction keep the first and warn."""
    seen: dict[tuple[object, ...], Action] = {}
    kept: list[Action] = []
    notes = list(part.notes)
    for a in part.actions:
        key = _identity(a)
        first = seen.get(key)
        if first is None:
            seen[key] = a
            kept.append(a)
        elif dict(first.payload) != dict(a.payload):
            what = first.change.field if first.change else a.kind.value
            notes.append(warning(f"two reconcilers disagree on {what}; kept: {first.reason}", what))
    return Part(tuple(kept), tuple(notes), part.next_review_at, part.unchanged)


def _finish(part: Part, observed: ObservedStation) -> tuple[Action, ...]:
    actions = sort_actions(part.actions)
    return configuration.with_read_back(actions, observed.get_configuration_max_keys)


def plan_station(desired: DesiredState, identity: str, observed: ObservedStation | None, now: dt.datetime, *,
                 pending_reservations: Sequence[PendingReservation] = (),
                 snapshot_entries: Sequence[ListEntry] | None = None,
                 secrets: Mapping[str, str] | None = None) -> Plan:
    """The plan for one station (declared or not).

    `snapshot_entries`: the entries of the list snapshot the charger accepted (`observed.local_list_hash`);
    `secrets`: write-only values resolved by the shell (e.g. {"AuthorizationKey": ...}).
    """
    clock.aware(now)
    station = desired.station_for_identity(identity)
    if station is None:
        return plan_removed_station(identity, observed, now, pending_reservations=pending_reservations,
                                    revision=desired.revision)
    online = observed.online if observed is not None else False
    if observed is None or not observed.observed:
        note = info("not observed yet: its configuration has not been read, so nothing is planned until it is")
        return Plan(station.identity, notes=(note,), name=station.name, observed=False, online=online,
                    revision=desired.revision)
    eff = effective_station(desired, station, observed.boot)
    tz = clock.zone(station.timezone or desired.owner.timezone)
    owner_tz = clock.zone(desired.owner.timezone)
    part = combine((
        pricing.plan(desired, eff, observed, now, tz=tz),
        configuration.plan(eff, observed, now, tz=tz, secrets=secrets),
        access.plan(desired, eff, observed, now, snapshot_entries=snapshot_entries, owner_tz=owner_tz),
        reservations.plan(desired, eff, pending_reservations, now),
        availability.plan(eff, observed),
        activation.plan(eff),
    ))
    extra = []
    if eff.pending_boot_profiles:
        extra.append(info("profiles selected by boot information wait for a BootNotification: "
                          + ", ".join(eff.pending_boot_profiles), "profiles"))
    if not observed.online:
        extra.append(info("offline: planned from the last observation; applied after it reconnects and is "
                          "read again", "connection"))
    part = consistent(part)
    return Plan(eff.identity, _finish(part, observed), part.notes + tuple(extra), part.next_review_at,
                part.unchanged, name=station.name, online=observed.online, revision=desired.revision)


def plan_removed_station(identity: str, observed: ObservedStation | None, now: dt.datetime, *,
                         pending_reservations: Sequence[PendingReservation] = (), revision: str = "") -> Plan:
    """A station no longer in the repository: offline authorization off, inoperative, list emptied."""
    clock.aware(now)
    if observed is None or not observed.observed:
        note = info("removed from the repository and not observed: nothing to do until it connects")
        return Plan(identity, notes=(note,), removed=True, observed=False,
                    online=bool(observed and observed.online), revision=revision)
    part = consistent(activation.plan_removed(observed, now, pending_reservations))
    return Plan(identity, _finish(part, observed), part.notes, part.next_review_at, part.unchanged,
                removed=True, online=observed.online, revision=revision)


def local_list_snapshot(desired: DesiredState, identity: str, observed: ObservedStation | None,
                        now: dt.datetime) -> tuple[str, tuple[ListEntry, ...]] | None:
    """(hash, entries) of the list the station should hold, for the runtime's content-addressed snapshot
    store (kept before the SendLocalList whose `record` names the hash is applied); None when no list is
    pushed (offline authorization off, or the charger has no local list)."""
    station = desired.station_for_identity(identity)
    if station is None or observed is None or not observed.supports_local_list:
        return None
    eff = effective_station(desired, station, observed.boot)
    if not eff.offline_authorization:
        return None
    entries, _ = access.desired_list(desired, eff, observed, now, clock.zone(desired.owner.timezone))
    return access.shared_hash(entries), entries
