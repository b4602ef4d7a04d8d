"""The fleet snapshot the dashboard draws: one JSON object with everything the fleet page shows.

Role: pure assembly of what the controller already knows — the reconciler's fleet summary and per-station
status (sync, health, revisions, errors, held / suspended), the desired state (names, sites, coordinates,
visibility) and the store's records (connector statuses, last seen) and open sessions — into one value.
The dashboard's event stream sends it again only when it changes, so nothing in it ticks by itself (no
"generated at", last-seen times in whole seconds, the config source without its attempt times).

No idTag is part of a snapshot.

Boundary: pure; values in, a JSON-ready dict out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from controller.config.model import DesiredState
from controller.runtime.status import StationStatus
from controller.store.records import StationRecord

Obj = dict[str, Any]

FAULT_STATUSES = frozenset({"faulted"})


def _seconds(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _steady(source: Mapping[str, Any] | None) -> Obj | None:
    """The config source's status without the times that change on every poll."""
    if source is None:
        return None
    return {k: v for k, v in source.items() if not (k.endswith("_at") or k.endswith("At"))}


def station_entry(identity: str, status: StationStatus | None, desired: DesiredState | None,
                  record: StationRecord | None, open_sessions: int, online: bool) -> Obj:
    st = desired.station_for_identity(identity) if desired is not None else None
    ordered = sorted(record.connectors, key=lambda c: c.connector_id) if record else []
    connectors = [{"id": c.connector_id, "status": c.status, "errorCode": c.error_code} for c in ordered]
    coordinates = None
    if st is not None and st.coordinates is not None:
        coordinates = {"lat": st.coordinates.latitude, "lng": st.coordinates.longitude}
    s = status or StationStatus(identity)
    return {
        "identity": identity,
        "name": st.name if st is not None else s.name,
        "displayName": (st.display_name or st.name) if st is not None else (s.name or identity),
        "site": st.site if st is not None else None,
        "visibility": st.visibility if st is not None else None,
        "activated": st.activated if st is not None else False,
        "coordinates": coordinates,
        "sync": s.sync.value,
        "health": s.health.label,
        "online": online,
        "lastAppliedRevision": s.last_applied_revision,
        "lastAttemptedRevision": s.last_attempted_revision,
        "lastSeen": _seconds(record.last_seen) if record else None,
        "openSessions": open_sessions,
        "connectors": connectors,
        "faulted": any(c.status.strip().lower() in FAULT_STATUSES for c in ordered),
        "lastError": s.last_error,
        "held": s.held,
        "suspended": s.suspended,
        "stalled": s.stalled,
        "removed": s.removed or (st is None and desired is not None),
        "pendingChanges": s.pending_changes,
        "waitingForWave": s.waiting_for_wave,
        "notes": list(s.notes),
    }


def fleet_snapshot(*, fleet: Mapping[str, Any], statuses: Iterable[StationStatus], desired: DesiredState | None,
                   records: Iterable[StationRecord], open_sessions: Mapping[str, int], online: Collection[str],
                   source: Mapping[str, Any] | None = None) -> Obj:
    """The whole dashboard state: fleet summary, revisions, held / failed commit, rollout, every station."""
    by_status = {s.identity.upper(): s for s in statuses}
    by_record = {r.identity.upper(): r for r in records}
    identities: dict[str, str] = {}
    for s in by_status.values():
        identities.setdefault(s.identity.upper(), s.identity)
    if desired is not None:
        for st in desired.stations.values():
            identities.setdefault(st.identity.upper(), st.identity)
    connected = {i.upper() for i in online}
    sessions = {k.upper(): v for k, v in open_sessions.items()}
    stations = [station_entry(identity, by_status.get(key), desired, by_record.get(key), sessions.get(key, 0),
                              key in connected)
                for key, identity in identities.items()]
    stations.sort(key=lambda e: (str(e["displayName"]).lower(), e["identity"]))
    owner = None if desired is None else {"name": desired.owner.name, "displayName": desired.owner.display_name}
    return {
        "owner": owner,
        "revision": fleet.get("revision"),
        "appliedRevision": fleet.get("appliedRevision"),
        "failedRevision": fleet.get("failedRevision"),
        "held": fleet.get("held"),
        "rollout": fleet.get("rollout"),
        "source": _steady(source),
        "sync": fleet.get("sync", {}),
        "health": fleet.get("health", {}),
        "online": len(connected & set(identities)),
        "stations": stations,
    }
