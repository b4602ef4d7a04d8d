"""OCPI 2.2.1 Location / EVSE / Connector objects, built from the desired state and the live connector status.

Role: the pure core of map publication. `build_locations(desired, live, previous, config_time=...)` returns
every Location to publish, as plain JSON objects (dicts), ready for the Locations module (`ocpi_api`) and
for push. It never reads a clock: times come in as the config revision's time and the status records'
``received_at``.

How the owner's declarations become OCPI objects:

- Location: one per site (a station without ``site`` is a site of its own, named after the station) and
  per visibility class. Public stations -> id ``<site>``, ``publish: true``. Private stations ->
  ``publish: false`` with ``publish_allowed_to`` = one PublishTokenType per access group
  (``{"group_id": <group name>}``, the receiving partner filters); id ``<site>-private``, or
  ``<site>-private-<groups>`` when private stations of one site name different audiences (each audience
  gets its own Location, so no group is shown EVSEs meant for another). Hidden stations are never
  published. Ids and group ids longer than CiString(36) are shortened with a hash.
- Address, city, postal code, state and country (alpha-3) come from the first station of the Location with
  an address (any station of the same site as a fallback); coordinates are the stations' centroid.
  ``time_zone`` is the station's or the owner's. ``opening_times`` only when a station declares opening
  hours: the union of the stations' weekly periods (``24:00`` -> ``23:59``, as OCPI times stop there),
  ``twentyfourseven`` when that covers the whole week. ``operator`` is the owner's display name.
- EVSE: one per OCPP connector (OCPP 1.6 has no EVSE level; each plug of it is an OCPI Connector, ids
  ``"1"``, ``"2"``...). ``uid`` = ``<identity>-<connectorId>``; an EVSE that moves to another Location (site
  change, public <-> private) gets ``<identity>-<connectorId>-<hash of the Location id>`` there, so an
  uid never appears in two Locations. ``evse_id`` = eMI3 ``<country>*<party>*E<identity>*<connectorId>``
  with the identity upper-cased and every run of other characters than A-Z / 0-9 turned into ``*``
  (the power outlet part is at most 30 characters, hashed when longer).
  Capabilities: ``RFID_READER`` (OCPP 1.6 authorizes idTags), ``RESERVABLE`` when a reservable
  reservation policy applies. ``tariff_ids``: the EVSE's effective tariff. ``max_electric_power``: the
  declared (or derived) kW in W.
- Status (`ocpi_status`), from the connector's last StatusNotification: Available -> AVAILABLE;
  Preparing / Charging / SuspendedEV / SuspendedEVSE -> CHARGING (the EVSE is in use by a driver);
  Finishing -> BLOCKED (the session is over but the car or cable still occupies it, OCPI's "physical
  barrier"); Reserved -> RESERVED; Faulted -> OUTOFORDER; Unavailable -> INOPERATIVE; a station offline,
  never seen, a connector without status or an unknown value -> UNKNOWN. A Faulted / Unavailable status
  on connectorId 0 (the whole charge point) overrides AVAILABLE / UNKNOWN on its connectors.
- Never deleted: an EVSE published before whose station is removed from the repository or made hidden
  stays, with status REMOVED (in its old Location; a Location whose EVSEs are all REMOVED is kept).
  A station that is de-activated keeps its published EVSEs with status INOPERATIVE (it is still declared,
  just not operating); a station never published is only published once activated.
- ``last_updated``: an object equal to its previous version (ignoring ``last_updated``) keeps the previous
  value, so repeated builds are identical. A changed object gets the time of what changed (the status
  record's ``received_at``, the offline time, or ``config_time`` for a configuration change), and never
  less than its children's; a parent is therefore always at least as new as any of its children.

Boundary: pure; desired state, live status and the previous publication in, JSON objects out. No I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from controller.config import model as m
from controller.config.effective import EffectiveEvse, effective_station
from controller.store.records import ConnectorStatus, StationRecord

from .countries import alpha3

Obj = dict[str, Any]

OCPI_VERSION = "2.2.1"
REMOVED = "REMOVED"
UNKNOWN = "UNKNOWN"
INOPERATIVE = "INOPERATIVE"
ID_MAX = 36  # Location.id, EVSE.uid, Connector.id: CiString(36)
EVSE_ID_OUTLET_MAX = 30  # eMI3: at most 30 characters after the "E"

# OCPP 1.6 ChargePointStatus (compared case-insensitively) -> OCPI 2.2.1 Status
STATUS_MAP: Mapping[str, str] = {
    "available": "AVAILABLE",
    "preparing": "CHARGING",
    "charging": "CHARGING",
    "suspendedev": "CHARGING",
    "suspendedevse": "CHARGING",
    "finishing": "BLOCKED",
    "reserved": "RESERVED",
    "faulted": "OUTOFORDER",
    "unavailable": "INOPERATIVE",
}
_STATION_WIDE = {"faulted", "unavailable"}  # statuses on connectorId 0 that apply to every connector
_WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}
_DAY_MINUTES = 24 * 60


def ocpi_status(ocpp_status: str | None) -> str:
    """The OCPI EVSE status for an OCPP 1.6 connector status (UNKNOWN for None or an unknown value)."""
    if ocpp_status is None:
        return UNKNOWN
    return STATUS_MAP.get(ocpp_status.strip().lower(), UNKNOWN)


def format_datetime(t: dt.datetime) -> str:
    """OCPI DateTime: UTC, whole seconds, ``Z`` suffix (``2015-06-29T20:39:09Z``)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime: OCPI times are built from timezone-aware datetimes")
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> dt.datetime:
    """Parse an OCPI DateTime (no designator means UTC; ``Z`` and offsets accepted). ValueError if invalid."""
    t = dt.datetime.fromisoformat(text.strip())
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


# --- live status -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LiveStation:
    """What publication needs of a live station: online, its connectors' last StatusNotification, and
    when it went offline (`since`, used as the time of the UNKNOWN status)."""

    online: bool
    connectors: Mapping[int, ConnectorStatus] = dataclasses.field(default_factory=dict)
    since: dt.datetime | None = None

    @classmethod
    def from_record(cls, record: StationRecord) -> LiveStation:
        """From the store's record: offline since it was last seen."""
        return cls(online=record.online, connectors={c.connector_id: c for c in record.connectors},
                   since=None if record.online else record.last_seen)


def live_status(live: LiveStation | None, connector_id: int, default_time: dt.datetime) -> tuple[str, dt.datetime]:
    """(OCPI status, time of that status) of one connector; `default_time` when nothing better is known."""
    if live is None:
        return UNKNOWN, default_time
    if not live.online:
        return UNKNOWN, live.since or default_time
    cs = live.connectors.get(connector_id)
    status, at = (ocpi_status(cs.status), cs.received_at) if cs is not None else (UNKNOWN, default_time)
    whole = live.connectors.get(0)
    if whole is not None and whole.status.strip().lower() in _STATION_WIDE and status in ("AVAILABLE", UNKNOWN):
        status, at = ocpi_status(whole.status), max(at, whole.received_at)
    return status, at


# --- identifiers -----------------------------------------------------------------------------------------


def _hash(text: str, n: int) -> str:
    return hashlib.sha256(text.upper().encode()).hexdigest()[:n]


def shorten(ident: str, limit: int = ID_MAX) -> str:
    """`ident` if it fits `limit` characters, else its start plus a hash of the whole (still unique)."""
    if len(ident) <= limit:
        return ident
    return f"{ident[: limit - 9]}-{_hash(ident, 8)}"


def evse_uid(identity: str, connector_id: int) -> str:
    """The EVSE uid of an OCPP connector in the Location it was first published in."""
    return shorten(f"{identity}-{connector_id}")


def evse_id(country_code: str, party_id: str, identity: str, connector_id: int) -> str:
    """eMI3 EVSE ID ``<country>*<party>*E<identity>*<connectorId>`` (characters outside A-Z0-9 -> ``*``)."""
    outlet = re.sub(r"[^A-Z0-9]+", "*", identity.upper()).strip("*")
    suffix = f"*{connector_id}"
    room = EVSE_ID_OUTLET_MAX - len(suffix)
    if len(outlet) > room or not outlet:
        outlet = f"{outlet[: room - 7].rstrip('*')}*{_hash(identity, 6).upper()}".lstrip("*")
    return f"{country_code.upper()}*{party_id.upper()}*E{outlet}{suffix}"


def location_id(site: str, visibility: str, audience_suffix: str = "") -> str:
    """``<site>`` for public, ``<site>-private[-<audience>]`` for private Locations (CiString(36))."""
    if visibility == "public":
        return shorten(site)
    return shorten(f"{site}-private" + (f"-{audience_suffix}" if audience_suffix else ""))


# --- formatting helpers ----------------------------------------------------------------------------------


def geo(latitude: float, longitude: float) -> Obj:
    """OCPI GeoLocation: decimal strings with 5 to 7 decimals (``-?[0-9]{1,2}\\.[0-9]{5,7}``)."""
    return {"latitude": _decimal_text(latitude), "longitude": _decimal_text(longitude)}


def _decimal_text(value: float) -> str:
    d = Decimal(repr(round(float(value), 7)))
    exponent = d.as_tuple().exponent
    decimals = min(max(-exponent if isinstance(exponent, int) else 0, 5), 7)
    text = f"{d.quantize(Decimal(1).scaleb(-decimals)):f}"
    return text.lstrip("-") if Decimal(text) == 0 else text


def _clock(minutes: int) -> str:
    minutes = min(minutes, _DAY_MINUTES - 1)  # 24:00 -> 23:59: OCPI times stop at 23:59
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def opening_times(hours: Sequence[m.OpeningHours | None]) -> Obj | None:
    """OCPI Hours for the union of the stations' opening hours (None when no station declares any)."""
    if all(h is None for h in hours):
        return None
    per_day: dict[int, list[tuple[int, int]]] = {d: [] for d in range(1, 8)}
    for h in hours:
        if h is None or h.always_open:
            return {"twentyfourseven": True}
        for r in h.regular:
            start, end = _minutes(r.start), _minutes(r.end)
            for day in (_WEEKDAYS[d] for d in r.days):
                if end > start:
                    per_day[day].append((start, end))
                else:  # crosses midnight: the rest of the day, then the next morning
                    per_day[day].append((start, _DAY_MINUTES))
                    if end:
                        per_day[day % 7 + 1].append((0, end))
    merged = {day: _merge(spans) for day, spans in per_day.items()}
    if all(spans == [(0, _DAY_MINUTES)] for spans in merged.values()):
        return {"twentyfourseven": True}
    regular = [{"weekday": day, "period_begin": _clock(s), "period_end": _clock(e)}
               for day, spans in sorted(merged.items()) for s, e in spans if _clock(e) > _clock(s)]
    return {"twentyfourseven": False, "regular_hours": regular} if regular else None


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _watts(plug: m.Plug) -> int:
    return int(plug.power_kw * 1000)


# --- last_updated ----------------------------------------------------------------------------------------


def strip_timestamps(obj: Any) -> Any:
    """A copy of a JSON value without any ``last_updated`` (to tell a real change from a rebuild)."""
    if isinstance(obj, dict):
        return {k: strip_timestamps(v) for k, v in obj.items() if k != "last_updated"}
    if isinstance(obj, list):
        return [strip_timestamps(v) for v in obj]
    return obj


def _stamp(new: Obj, prev: Obj | None, change_times: Iterable[dt.datetime], children: Iterable[Obj] = ()) -> str:
    """``last_updated`` for `new`: the previous one when nothing changed, else the newest relevant time."""
    if prev is not None and strip_timestamps(prev) == strip_timestamps(new):
        return str(prev["last_updated"])
    times = [*change_times, *(parse_datetime(c["last_updated"]) for c in children)]
    if prev is not None:
        times.append(parse_datetime(prev["last_updated"]))
    return format_datetime(max(times))


def _without(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


# --- the build -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Group:
    id: str
    site: str
    visibility: str
    audience: tuple[str, ...]
    stations: tuple[m.Station, ...]


@dataclasses.dataclass(frozen=True)
class Publication:
    """The Locations to publish, by id (sorted), and the Locations that could not be built (id, why)."""

    locations: Mapping[str, Obj]
    skipped: tuple[tuple[str, str], ...] = ()

    def sorted(self) -> list[Obj]:
        return [self.locations[k] for k in sorted(self.locations)]

    def evses(self) -> Iterable[tuple[Obj, Obj]]:
        """(Location, EVSE) pairs."""
        for loc in self.sorted():
            for e in loc.get("evses", ()):
                yield loc, e


def _groups(desired: m.DesiredState) -> list[_Group]:
    keyed: dict[tuple[str, str, tuple[str, ...]], list[m.Station]] = {}
    for st in sorted(desired.stations.values(), key=lambda s: s.name):
        if st.visibility not in ("public", "private"):
            continue
        audience = tuple(sorted(st.publish_allowed_to)) if st.visibility == "private" else ()
        keyed.setdefault((st.site or st.name, st.visibility, audience), []).append(st)
    audiences: dict[str, set[tuple[str, ...]]] = {}
    for site, vis, aud in keyed:
        if vis == "private":
            audiences.setdefault(site, set()).add(aud)
    out = []
    for (site, vis, aud), stations in sorted(keyed.items()):
        suffix = "-".join(aud) if vis == "private" and len(audiences[site]) > 1 else ""
        out.append(_Group(location_id(site, vis, suffix), site, vis, aud, tuple(stations)))
    return out


def _location_fields(desired: m.DesiredState, group: _Group) -> Obj | str:
    """The Location's own fields (no evses, no last_updated), or why it cannot be published."""
    owner = desired.owner
    siblings = [s for s in sorted(desired.stations.values(), key=lambda s: s.name)
                if (s.site or s.name) == group.site]
    address = next((s.address for s in (*group.stations, *siblings) if s.address is not None), None)
    points = [s.coordinates for s in group.stations if s.coordinates is not None] or \
             [s.coordinates for s in siblings if s.coordinates is not None]
    if address is None or not points:
        return "no station of the site declares an address and coordinates (both required by OCPI)"
    first = group.stations[0]
    name = (first.display_name or first.name) if len(group.stations) == 1 else group.site.replace("-", " ").title()
    obj: Obj = {
        "country_code": owner.ocpi_country_code,
        "party_id": owner.ocpi_party_id,
        "id": group.id,
        "publish": group.visibility == "public",
    }
    if group.visibility == "private":
        obj["publish_allowed_to"] = [{"group_id": shorten(g)} for g in group.audience]
    obj["name"] = name[:255]
    obj["address"] = address.street[:45]
    obj["city"] = address.city[:45]
    if address.postal_code:
        obj["postal_code"] = address.postal_code[:10]
    if address.state:
        obj["state"] = address.state[:20]
    obj["country"] = alpha3(address.country)
    obj["coordinates"] = geo(sum(p.latitude for p in points) / len(points),
                             sum(p.longitude for p in points) / len(points))
    obj["operator"] = {"name": owner.display_name[:100]}
    obj["time_zone"] = next((s.timezone for s in group.stations if s.timezone), owner.timezone)
    hours = opening_times([s.opening_hours for s in group.stations])
    if hours is not None:
        obj["opening_times"] = hours
    return obj


class _Builder:
    def __init__(self, desired: m.DesiredState, live: Mapping[str, LiveStation], previous: Mapping[str, Obj],
                 config_time: dt.datetime):
        self.desired = desired
        self.live = {k.upper(): v for k, v in live.items()}
        self.previous = previous
        self.config_time = config_time
        self.prev_evse: dict[str, tuple[str, Obj]] = {}  # upper-case uid -> (location id, EVSE)
        for loc_id, loc in previous.items():
            for e in loc.get("evses", ()):
                self.prev_evse[str(e["uid"]).upper()] = (loc_id, e)
        self.evse_ids: dict[str, str] = {}  # evse_id -> uid (to keep evse_ids unique)

    def uid(self, identity: str, connector_id: int, loc_id: str) -> str:
        base = evse_uid(identity, connector_id)
        home = self.prev_evse.get(base.upper())
        if home is None or home[0].upper() == loc_id.upper():
            return base
        return shorten(f"{identity}-{connector_id}-{_hash(loc_id, 4)}")

    def connector(self, index: int, plug: m.Plug, tariff: str | None, prev: Obj | None) -> Obj:
        obj: Obj = {
            "id": str(index),
            "standard": plug.standard,
            "format": plug.format,
            "power_type": plug.power_type,
            "max_voltage": plug.max_voltage,
            "max_amperage": plug.max_amperage,
            "max_electric_power": _watts(plug),
        }
        if tariff:
            obj["tariff_ids"] = [tariff]
        prev_c = next((c for c in (prev or {}).get("connectors", ()) if str(c.get("id")) == obj["id"]), None)
        obj["last_updated"] = _stamp(obj, prev_c, [self.config_time])
        return obj

    def evse(self, st: m.Station, e: EffectiveEvse, loc_id: str) -> Obj | None:
        uid = self.uid(st.identity, e.id, loc_id)
        prev = self.prev_evse.get(uid.upper(), (None, None))[1]
        if not st.activated:
            if prev is None or prev.get("status") == REMOVED:
                return None  # never published while activated: stays unpublished
            status, status_time = INOPERATIVE, self.config_time
        else:
            status, status_time = live_status(self.live.get(st.identity.upper()), e.id, self.config_time)
        owner = self.desired.owner
        eid = evse_id(owner.ocpi_country_code, owner.ocpi_party_id, st.identity, e.id)
        if self.evse_ids.setdefault(eid, uid) != uid:  # two identities sanitised alike
            eid = evse_id(owner.ocpi_country_code, owner.ocpi_party_id, f"{st.identity}*{_hash(uid, 4)}", e.id)
        policy = self.desired.reservation_policies.get(e.reservation_policy or "")
        caps = ["RESERVABLE", "RFID_READER"] if policy is not None and policy.reservable else ["RFID_READER"]
        obj: Obj = {"uid": uid, "evse_id": eid, "status": status, "capabilities": caps}
        obj["connectors"] = [self.connector(i, p, e.tariff, prev) for i, p in enumerate(e.plugs, start=1)]
        if st.coordinates is not None:
            obj["coordinates"] = geo(st.coordinates.latitude, st.coordinates.longitude)
        changes = [self.config_time, status_time]
        if prev is not None:
            changes = []
            if prev.get("status") != status:
                changes.append(status_time)
            if strip_timestamps(_without(prev, "status")) != strip_timestamps(_without(obj, "status")):
                changes.append(self.config_time)
        obj["last_updated"] = _stamp(obj, prev, changes, obj["connectors"])
        return obj

    def removed(self, prev: Obj) -> Obj:
        if prev.get("status") == REMOVED:
            return prev
        obj = {**prev, "status": REMOVED}
        obj["last_updated"] = _stamp(obj, prev, [self.config_time])
        return obj

    def location(self, fields: Obj, evses: list[Obj], prev: Obj | None) -> Obj:
        obj = {**fields, "evses": evses}
        changes = [self.config_time]
        if prev is not None and strip_timestamps(_without(prev, "evses")) == strip_timestamps(fields):
            changes = []
        obj["last_updated"] = _stamp(obj, prev, changes, evses)
        return obj


def build_locations(desired: m.DesiredState, live: Mapping[str, LiveStation], previous: Mapping[str, Obj],
                    *, config_time: dt.datetime) -> Publication:
    """Every Location to publish: the current ones, plus earlier EVSEs now REMOVED (see the module doc).

    `live` is keyed by station identity (case-insensitive); `previous` is the last publication's Locations by
    id (empty the first time); `config_time` is the time of the configuration revision being published.
    """
    b = _Builder(desired, live, previous, config_time)
    current: dict[str, tuple[Obj, list[Obj]]] = {}
    skipped: list[tuple[str, str]] = []
    for group in _groups(desired):
        fields = _location_fields(desired, group)
        if isinstance(fields, str):
            skipped.append((group.id, fields))
            continue
        evses = []
        for st in group.stations:
            for e in effective_station(desired, st).evses:
                obj = b.evse(st, e, group.id)
                if obj is not None:
                    evses.append(obj)
        if evses:
            current[group.id] = (fields, evses)
    published = {str(e["uid"]).upper() for _f, evses in current.values() for e in evses}
    for loc_id, loc in sorted(previous.items()):
        gone = [b.removed(e) for e in loc.get("evses", ()) if str(e["uid"]).upper() not in published]
        if not gone:
            continue
        gone.sort(key=lambda e: str(e["uid"]))
        if loc_id in current:
            current[loc_id][1].extend(gone)
        else:
            current[loc_id] = (_without(loc, "evses", "last_updated"), gone)
    locations = {loc_id: b.location(fields, evses, previous.get(loc_id))
                 for loc_id, (fields, evses) in sorted(current.items())}
    return Publication(locations=locations, skipped=tuple(skipped))
