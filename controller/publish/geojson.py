"""GeoJSON feed of the public map: one Point Feature per public, activated station, with live status.

Role: what any web map (Leaflet, MapLibre, OpenLayers) can draw without knowing OCPI. Private and hidden
stations are never in it (private ones are published only through OCPI with ``publish: false``), nor are
stations that are not activated or have no coordinates. Statuses are the OCPI ones (`ocpi.live_status`),
so the feed and the OCPI Locations never disagree.

Feature: ``id`` = identity, geometry ``Point [longitude, latitude]`` (RFC 7946 order), properties: ``name``,
``identity``, ``site``, ``operator``, ``address``, ``status`` (the most useful one for a marker: AVAILABLE
if any EVSE is, else CHARGING / RESERVED / BLOCKED if any, else the first EVSE's), ``status_summary``
(EVSE count per OCPI status), ``evses`` (evse_id, connector_id, status, tariff, connectors with standard,
format, power type and kW), ``tariff_ids``, ``max_power_kw``.

Boundary: pure; desired state and live status in, a JSON object out.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal

from controller.config import model as m
from controller.config.effective import effective_station

from .ocpi import LiveStation, Obj, evse_id, live_status

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MARKER_ORDER = ("AVAILABLE", "CHARGING", "RESERVED", "BLOCKED")


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def on_public_map(st: m.Station) -> bool:
    return st.visibility == "public" and st.activated and st.coordinates is not None


def feature(desired: m.DesiredState, st: m.Station, live: LiveStation | None) -> Obj:
    """The Feature of one station (call only for stations `on_public_map`)."""
    assert st.coordinates is not None
    owner = desired.owner
    evses = []
    for e in effective_station(desired, st).evses:
        status, _at = live_status(live, e.id, _EPOCH)
        evses.append({
            "evse_id": evse_id(owner.ocpi_country_code, owner.ocpi_party_id, st.identity, e.id),
            "connector_id": e.id,
            "status": status,
            "tariff": e.tariff,
            "connectors": [{"standard": p.standard, "format": p.format, "power_type": p.power_type,
                            "power_kw": _number(p.power_kw)} for p in e.plugs],
        })
    summary = Counter(e["status"] for e in evses)
    marker = next((s for s in _MARKER_ORDER if summary[s]), evses[0]["status"] if evses else "UNKNOWN")
    address = None
    if st.address is not None:
        address = {"street": st.address.street, "postal_code": st.address.postal_code, "city": st.address.city,
                   "country": st.address.country}
    powers = [p.power_kw for e in st.evses for p in e.plugs]
    return {
        "type": "Feature",
        "id": st.identity,
        "geometry": {"type": "Point", "coordinates": [st.coordinates.longitude, st.coordinates.latitude]},
        "properties": {
            "name": st.display_name or st.name,
            "identity": st.identity,
            "site": st.site,
            "operator": owner.display_name,
            "address": address,
            "status": marker,
            "status_summary": dict(sorted(summary.items())),
            "evses": evses,
            "tariff_ids": sorted({e["tariff"] for e in evses if e["tariff"]}),
            "max_power_kw": _number(max(powers)) if powers else None,
        },
    }


def feature_collection(desired: m.DesiredState, live: Mapping[str, LiveStation]) -> Obj:
    """The public map: a FeatureCollection of the public, activated stations, by station name."""
    by_identity = {k.upper(): v for k, v in live.items()}
    stations = sorted((s for s in desired.stations.values() if on_public_map(s)), key=lambda s: s.name)
    return {"type": "FeatureCollection",
            "features": [feature(desired, s, by_identity.get(s.identity.upper())) for s in stations]}
