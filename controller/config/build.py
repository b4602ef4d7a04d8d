"""Building frozen model objects from schema-valid documents.

Only documents that passed their schema reach this module, so it can index fields directly. Values are
normalised here: money to `Decimal` (from the text the owner wrote), OCPP configuration values to the
strings sent on the wire, dates to `datetime.date`.

Boundary: dict -> dataclass; cross-document checks live in `semantic`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from . import model as m


def dec(value: Any) -> Decimal:
    """Exact decimal from YAML text or number (floats go through their shortest repr: 0.35 -> 0.35)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def ocpp_text(value: Any) -> str:
    """An OCPP configuration value as sent on the wire (booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ranges(items: Any) -> tuple[m.TimeRange, ...]:
    return tuple(m.TimeRange(tuple(i["days"]), i["start"], i["end"]) for i in items or ())


def access(d: Mapping[str, Any] | None) -> m.Access | None:
    if d is None:
        return None
    return m.Access(d["mode"], tuple(d.get("groups", ())))


def settings(d: Mapping[str, Any]) -> m.StationSettings:
    """The settings `d` declares; `m.NO_SETTINGS` (one shared object) when it declares none."""
    made = _settings(d)
    return m.NO_SETTINGS if made == m.NO_SETTINGS else made


def _settings(d: Mapping[str, Any]) -> m.StationSettings:
    maint = d.get("maintenance")
    ocpp = d.get("ocppConfiguration")
    vendor = d.get("vendorConfiguration")
    return m.StationSettings(
        tariff=d.get("tariff"),
        access=access(d.get("access")),
        reservation_policy=d.get("reservationPolicy"),
        availability=d.get("availability"),
        offline_authorization=d.get("offlineAuthorization"),
        security_profile=d.get("securityProfile"),
        ocpp_configuration=None if ocpp is None else {k: ocpp_text(v) for k, v in ocpp.items()},
        vendor_configuration=None if vendor is None else {k: ocpp_text(v) for k, v in vendor.items()},
        drift_warn_only=None if d.get("driftWarnOnly") is None else tuple(d["driftWarnOnly"]),
        maintenance=None if maint is None else m.Maintenance(
            reboot_windows=_ranges(maint["rebootWindows"]) if "rebootWindows" in maint else None,
            max_reboot_deferral_hours=maint.get("maxRebootDeferralHours"),
            reboot_during_sessions=maint.get("rebootDuringSessions"),
        ),
    )


def owner(d: Mapping[str, Any], src: m.Src) -> m.Owner:
    s = d["spec"]
    b = s.get("billing", {})
    r = s.get("dataRetention", {})
    ro = s.get("rollout", {})
    sa = s.get("safety", {})
    return m.Owner(
        name=d["metadata"]["name"],
        display_name=s["displayName"],
        timezone=s["timezone"],
        country=s["country"],
        currency=s["currency"],
        ocpi_country_code=s["ocpi"]["countryCode"],
        ocpi_party_id=s["ocpi"]["partyId"],
        plans=tuple(m.Plan(p["name"], p.get("description")) for p in s["plans"]),
        billing=m.Billing(
            enabled=b.get("enabled", False),
            payout_account_ref=b.get("payoutAccountRef"),
            platform_fee_percent=dec(b.get("platformFeePercent", 0)),
            prices_include_tax=b.get("pricesIncludeTax", True),
            tax_rate_percent=dec(b.get("taxRatePercent", 0)),
        ),
        data_retention=m.DataRetention(r.get("meterValuesDays", 90), r.get("personalDataDays", 400)),
        rollout=m.Rollout(tuple(ro.get("waves", (10, 100))), dec(ro.get("failureThresholdPercent", 20)),
                          ro.get("minStationsForWaves", 10)),
        safety=m.Safety(dec(sa.get("maxRemovalPercent", 20))),
        defaults=settings(s.get("defaults", {})),
        src=src,
    )


# Equal EVSE declarations share one object (a fleet declares the same wallbox hundreds of times): the effective
# settings of stations alike are then computed once per class (`controller.config.effective`), keyed by
# these objects' identities. Bounded; a miss only costs the sharing, never correctness.
_EVSES: dict[m.Evse, m.Evse] = {}
_EVSES_MAX = 4096


def _shared_evse(evse: m.Evse) -> m.Evse:
    found = _EVSES.get(evse)
    if found is None:
        if len(_EVSES) >= _EVSES_MAX:
            _EVSES.clear()
        found = _EVSES[evse] = evse
    return found


def _plug(p: Mapping[str, Any]) -> m.Plug:
    return m.Plug(p["standard"], p["format"], p["powerType"], p["maxVoltage"], p["maxAmperage"],
                  opt_dec(p.get("maxPowerKw")))


def station(d: Mapping[str, Any], src: m.Src) -> m.Station:
    s = d["spec"]
    md = d["metadata"]
    addr = s.get("address")
    coords = s.get("coordinates")
    oh = s.get("openingHours")
    act = s.get("activation")
    creds = s.get("credentials", {})
    key = creds.get("authorizationKey")
    return m.Station(
        name=md["name"],
        identity=s["identity"],
        evses=tuple(
            _shared_evse(m.Evse(e["id"], tuple(_plug(p) for p in e["plugs"]), e.get("tariff"), access(e.get("access")),
                                e.get("availability"), e.get("reservationPolicy")))
            for e in s["evses"]
        ),
        settings=settings(s),
        src=src,
        labels=dict(md.get("labels", {})),
        display_name=s.get("displayName"),
        site=s.get("site"),
        address=None if addr is None else m.Address(addr["street"], addr["city"], addr["country"],
                                                    addr.get("postalCode"), addr.get("state")),
        coordinates=None if coords is None else m.Coordinates(float(coords["latitude"]),
                                                              float(coords["longitude"])),
        timezone=s.get("timezone"),
        opening_hours=None if oh is None else m.OpeningHours(oh.get("alwaysOpen", not oh.get("regular")),
                                                             _ranges(oh.get("regular"))),
        activation=None if act is None else m.Activation(act["plan"], act.get("activated", True)),
        visibility=s.get("visibility", "hidden"),
        publish_allowed_to=tuple(s.get("publishAllowedTo", ())),
        profiles=tuple(s.get("profiles", ())),
        authorization_key=None if key is None else m.SecretRef(key.get("env"), key.get("file")),
    )


def profile(d: Mapping[str, Any], src: m.Src) -> m.StationProfile:
    s = d["spec"]
    sel = s.get("selector")
    boot = sel.get("boot") if sel else None
    return m.StationProfile(
        name=d["metadata"]["name"],
        priority=s.get("priority", 0),
        settings=settings(s["settings"]),
        src=src,
        names=tuple(sel["names"]) if sel and "names" in sel else None,
        labels=dict(sel["labels"]) if sel and "labels" in sel else None,
        boot=None if boot is None else m.BootSelector(boot.get("vendor"), boot.get("model"),
                                                      boot.get("firmware")),
        has_selector=bool(sel),
    )


def price(d: Mapping[str, Any] | None) -> m.PriceComponents:
    if not d:
        return m.PriceComponents()
    idle = d.get("idle")
    return m.PriceComponents(
        session_fee=opt_dec(d.get("sessionFee")),
        per_kwh=opt_dec(d.get("perKwh")),
        per_hour=opt_dec(d.get("perHour")),
        idle=None if idle is None else m.IdleFee(dec(idle["perHour"]), idle.get("graceMinutes", 0),
                                                 idle.get("untilUnplug", False)),
    )


def tariff(d: Mapping[str, Any], src: m.Src, default_currency: str) -> m.Tariff:
    s = d["spec"]
    return m.Tariff(
        name=d["metadata"]["name"],
        currency=s.get("currency", default_currency),
        price=price(s["price"]),
        src=src,
        display_text=s.get("displayText"),
        display_text_offline=s.get("displayTextOffline"),
        tax_rate_percent=opt_dec(s.get("taxRatePercent")),
        min_price=opt_dec(s.get("minPrice")),
        max_price=opt_dec(s.get("maxPrice")),
        windows=tuple(m.TariffWindow(w["name"], tuple(w["days"]), w["start"], w["end"], price(w["price"]))
                      for w in s.get("windows", ())),
        group_prices=tuple(m.GroupPrice(g["group"], g.get("free", False), price(g.get("price")))
                           for g in s.get("groupPrices", ())),
    )


def group(d: Mapping[str, Any], src: m.Src) -> m.AccessGroup:
    s = d["spec"]
    return m.AccessGroup(d["metadata"]["name"], tuple(s.get("includes", ())), src,
                         s.get("maxConcurrentSessions", 1))


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def cards(items: Any, group_name: str, src: m.Src) -> list[tuple[int, m.Card]]:
    """Cards of a group or card list, with their index in the list (for error positions)."""
    out = []
    Card = m.Card
    for i, c in enumerate(items):
        vu = c.get("validUntil")
        out.append((i, Card(c["idTag"], c["driver"], group_name, src,
                            parse_date(vu) if vu is not None else None, c.get("blocked", False))))
    return out


def reservation_policy(d: Mapping[str, Any], src: m.Src) -> m.ReservationPolicy:
    s = d["spec"]
    return m.ReservationPolicy(
        name=d["metadata"]["name"],
        reservable=s["reservable"],
        src=src,
        walk_ins=s.get("walkIns", False),
        fee=dec(s.get("fee", 0)),
        allowed_groups=tuple(s.get("allowedGroups", ())),
        max_duration_minutes=s.get("maxDurationMinutes", 60),
        grace_minutes=s.get("graceMinutes", 15),
        no_show_fee=dec(s.get("noShowFee", 0)),
        buffer_minutes=s.get("bufferMinutes", 10),
    )
