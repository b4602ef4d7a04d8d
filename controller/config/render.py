"""`chargeops render`: the effective desired state per station and EVSE, for people (human) or tools (JSON).

Shows what the controller will try to make true: OCPP keys (declared and derived, with the reason),
the local authorization list (idTags masked), the price display, reservation rules and EVSE settings.

Boundary: presentation of `effective` + `access` results; no decisions of its own.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TextIO

from . import model as m
from .access import local_list
from .diagnostics import mask_id_tag
from .effective import BootInfo, EffectiveStation, effective_station
from .pricing_display import all_values


def station_view(desired: m.DesiredState, eff: EffectiveStation, today: dt.date) -> dict[str, Any]:
    st = eff.station
    entries = local_list(desired, eff, today)
    tariff = desired.tariffs.get(eff.tariff or "")
    evses = []
    for e in eff.evses:
        pol = desired.reservation_policies.get(e.reservation_policy or "")
        evses.append({
            "id": e.id,
            "plugs": [{"standard": p.standard, "format": p.format, "powerType": p.power_type,
                       "maxVoltage": p.max_voltage, "maxAmperage": p.max_amperage, "maxPowerKw": str(p.power_kw)}
                      for p in e.plugs],
            "tariff": e.tariff,
            "access": {"mode": e.access.mode, "groups": list(e.access.groups)},
            "availability": e.availability,
            "reservation": None if pol is None else {
                "policy": pol.name, "reservable": pol.reservable, "walkIns": pol.walk_ins,
                "reservationOnly": pol.reservation_only, "fee": str(pol.fee), "noShowFee": str(pol.no_show_fee),
                "allowedGroups": list(pol.allowed_groups), "maxDurationMinutes": pol.max_duration_minutes,
                "graceMinutes": pol.grace_minutes, "bufferMinutes": pol.buffer_minutes},
        })
    return {
        "name": st.name,
        "identity": st.identity,
        "operative": eff.operative,
        "plan": st.activation.plan if st.activation else None,
        "visibility": st.visibility,
        "profiles": list(eff.profiles),
        "pendingBootProfiles": list(eff.pending_boot_profiles),
        "securityProfile": eff.security_profile,
        "credentials": st.authorization_key.describe() if st.authorization_key else None,
        "heartbeatInterval": eff.heartbeat_interval,
        "ocppConfiguration": dict(sorted(eff.ocpp_configuration.items())),
        "derivedKeys": dict(sorted(eff.derived_keys.items())),
        "vendorConfiguration": dict(sorted(eff.vendor_configuration.items())),
        "driftWarnOnly": sorted(eff.drift_warn_only),
        "priceDisplay": None if tariff is None else {"tariff": tariff.name, "values": all_values(tariff)},
        "localList": {
            "enabled": eff.offline_authorization,
            "size": len(entries),
            "entries": [{"idTag": mask_id_tag(x.id_tag), "status": x.status,
                         "expiryDate": x.expiry_date.isoformat() if x.expiry_date else None,
                         "parentIdTag": x.parent_id_tag} for x in entries],
        },
        "evses": evses,
    }


def _views(desired: m.DesiredState, station: str | None, boot: BootInfo | None,
           today: dt.date | None = None) -> list[dict[str, Any]]:
    today = today or dt.date.today()
    stations = sorted(desired.stations.values(), key=lambda s: s.name)
    if station:
        stations = [s for s in stations if station in (s.name, s.identity) or s.identity.upper() == station.upper()]
    return [station_view(desired, effective_station(desired, s, boot), today) for s in stations]


def render_json(desired: m.DesiredState, station: str | None, boot: BootInfo | None, out: TextIO, *,
                today: dt.date | None = None) -> None:
    """`today` decides which cards have expired (default: the local date)."""
    json.dump({"revision": desired.revision, "owner": desired.owner.name,
               "stations": _views(desired, station, boot, today)}, out, indent=2)
    out.write("\n")


def render_human(desired: m.DesiredState, station: str | None, boot: BootInfo | None, out: TextIO,
                 max_entries: int = 10, *, today: dt.date | None = None) -> None:
    out.write(f"# owner {desired.owner.name!r}, revision {desired.revision}\n")
    for v in _views(desired, station, boot, today):
        state = "operative" if v["operative"] else "NOT ACTIVATED (kept inoperative)"
        out.write(f'\nstation "{v["name"]}" (identity {v["identity"]}), {state}, plan {v["plan"]}, '
                  f'visibility {v["visibility"]}\n')
        out.write(f'  profiles: {", ".join(v["profiles"]) or "-"}')
        if v["pendingBootProfiles"]:
            out.write(f' (after boot, if matching: {", ".join(v["pendingBootProfiles"])})')
        out.write(f'\n  security profile {v["securityProfile"]}, credentials {v["credentials"] or "-"}, '
                  f'heartbeat {v["heartbeatInterval"]} s\n')
        out.write("  OCPP configuration:\n")
        for k, val in v["ocppConfiguration"].items():
            why = v["derivedKeys"].get(k)
            out.write(f"    {k} = {val}" + (f"   # chargeops: {why}" if why else "") + "\n")
        for k, val in v["vendorConfiguration"].items():
            out.write(f"    {k} = {val}   # vendor key\n")
        pd = v["priceDisplay"]
        if pd:
            out.write(f'  price display (tariff {pd["tariff"]}, on chargers with CustomDisplayCostAndPrice):\n')
            for label, value in pd["values"].items():
                out.write(f"    {label}: DefaultPrice = {value}\n")
        ll = v["localList"]
        if ll["enabled"]:
            out.write(f'  local authorization list: {ll["size"]} entries\n')
            for e in ll["entries"][:max_entries]:
                exp = f', until {e["expiryDate"]}' if e["expiryDate"] else ""
                out.write(f'    {e["idTag"]} {e["status"]} (group {e["parentIdTag"]}{exp})\n')
            if ll["size"] > max_entries:
                out.write(f'    ... ({ll["size"] - max_entries} more)\n')
        else:
            out.write("  local authorization list: off (online authorization only)\n")
        for e in v["evses"]:
            plugs = ", ".join(f'{p["standard"]} {p["maxPowerKw"]} kW' for p in e["plugs"])
            acc = e["access"]["mode"] + (f' {",".join(e["access"]["groups"])}' if e["access"]["groups"] else "")
            out.write(f'  EVSE {e["id"]}: {plugs}; tariff {e["tariff"] or "-"}; access {acc}; {e["availability"]}')
            r = e["reservation"]
            if r and r["reservable"]:
                only = "reservation only" if r["reservationOnly"] else "walk-ins allowed"
                out.write(f'; reservable ({r["policy"]}, {only}, fee {r["fee"]}, no-show {r["noShowFee"]}, '
                          f'max {r["maxDurationMinutes"]} min)')
            out.write("\n")
