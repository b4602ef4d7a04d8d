"""Effective desired state of one station: defaults, profiles, station and EVSE settings merged.

Precedence, lowest first: owner defaults < station profiles (by priority, then name) < station < EVSE.
Profiles apply when their selector matches the station's name and labels (and, for `boot` selectors, the
vendor / model / firmware the charger reported), or when the station names them in `spec.profiles`.
A profile whose boot selector cannot be decided yet (no boot seen) is listed as pending.

The result also carries the OCPP keys chargeops derives itself (offline authorization, restricted access,
de-activation), each with the reason, so `render` and the reconcilers share one answer.

Boundary: pure; desired state (+ optional boot info) in, `EffectiveStation` out.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from . import model as m
from .memo import PerDesiredState
from .ocpp16_keys import lookup

DEFAULT_HEARTBEAT_INTERVAL = 300
DEFAULT_SECURITY_PROFILE = 0


@dataclasses.dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str = ""
    model: str = ""
    firmware: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class EffectiveEvse:
    id: int
    plugs: tuple[m.Plug, ...]
    tariff: str | None
    access: m.Access
    availability: str  # operative | inoperative
    reservation_policy: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class EffectiveStation:
    station: m.Station
    operative: bool  # activated (a de-activated station is kept inoperative)
    profiles: tuple[str, ...]  # applied, lowest precedence first
    pending_boot_profiles: tuple[str, ...]
    tariff: str | None
    access: m.Access
    reservation_policy: str | None
    offline_authorization: bool
    security_profile: int
    heartbeat_interval: int
    ocpp_configuration: Mapping[str, str]  # canonical key -> value (declared and derived)
    derived_keys: Mapping[str, str]  # canonical key -> why chargeops sets it
    vendor_configuration: Mapping[str, str]
    drift_warn_only: frozenset[str]  # upper-case key names
    maintenance: m.Maintenance
    evses: tuple[EffectiveEvse, ...]
    conflicts: tuple[tuple[str, str, str, str], ...] = ()  # (key, declared, derived, why)

    @property
    def identity(self) -> str:
        return self.station.identity


def canonical_key(name: str) -> str:
    k = lookup(name)
    return k.name if k is not None else name


def profile_applies(p: m.StationProfile, st: m.Station, boot: BootInfo | None) -> bool | None:
    """True / False, or None when only the (unknown) boot information could decide."""
    if p.name in st.profiles:
        return True
    if not p.has_selector:
        return False
    if p.names is not None and st.name not in p.names:
        return False
    if p.labels is not None and any(st.labels.get(k) != v for k, v in p.labels.items()):
        return False
    if p.boot is not None:
        if boot is None:
            return None
        pairs = ((p.boot.vendor, boot.vendor), (p.boot.model, boot.model), (p.boot.firmware, boot.firmware))
        return all(pat is None or fnmatch.fnmatchcase(val.lower(), pat.lower()) for pat, val in pairs)
    return True


def matching_profiles(desired: m.DesiredState, st: m.Station,
                      boot: BootInfo | None) -> tuple[list[m.StationProfile], list[str]]:
    applied, pending = [], []
    for p in desired.profiles.values():
        r = profile_applies(p, st, boot)
        if r:
            applied.append(p)
        elif r is None:
            pending.append(p.name)
    applied.sort(key=lambda p: (p.priority, p.name))
    return applied, sorted(pending)


_MEMO = PerDesiredState()  # effective settings per desired state, station and boot info
_BOOT_FREE = object()  # memo key: no profile of the desired state selects by boot information
_PROFILES_MERGED = object()  # memo key prefix: the defaults and a set of profiles merged
_CLASS = object()  # memo key prefix: the effective settings of stations alike (see `_effective_station`)

_SETTING_FIELDS = tuple(f.name for f in dataclasses.fields(m.StationSettings)
                        if f.name not in ("ocpp_configuration", "vendor_configuration"))


def merge_settings(layers: Iterable[m.StationSettings]) -> m.StationSettings:
    """Later layers win, field by field; configuration maps merge key by key (case-insensitively)."""
    out: dict[str, object] = {}
    ocpp: dict[str, tuple[str, str]] = {}
    vendor: dict[str, str] = {}
    for layer in layers:
        for name in _SETTING_FIELDS:
            v = getattr(layer, name)
            if v is not None:
                out[name] = v
        if layer.ocpp_configuration:
            for k, val in layer.ocpp_configuration.items():
                ck = canonical_key(k)
                ocpp[ck.upper()] = (ck, val)
        if layer.vendor_configuration:
            vendor.update(layer.vendor_configuration)
    return m.StationSettings(
        ocpp_configuration={ck: val for ck, val in ocpp.values()},
        vendor_configuration=vendor,
        **out,  # type: ignore[arg-type]
    )


def _is_empty(settings: m.StationSettings) -> bool:
    return settings is m.NO_SETTINGS or (not settings.ocpp_configuration and not settings.vendor_configuration
            and all(getattr(settings, name) is None for name in _SETTING_FIELDS))


def _profiles_merged(desired: m.DesiredState, applied: list[m.StationProfile]) -> m.StationSettings:
    """The owner's defaults and `applied` merged, once per desired state and set of profiles: stations
    sharing their profiles (most of a fleet) share this merge; merging the station's own settings over it
    gives what merging every layer at once gives (later layers win field by field and key by key)."""
    table = _MEMO.table(desired)
    key = (_PROFILES_MERGED, *(p.name for p in applied))
    merged: m.StationSettings | None = table.get(key)
    if merged is None:
        merged = table[key] = merge_settings([desired.owner.defaults, *(p.settings for p in applied)])
    return merged


def derived_keys(operative: bool, offline: bool, restricted: bool,
                 reservation_only: bool) -> dict[str, tuple[str, str]]:
    """Keys chargeops sets itself: canonical name -> (value, reason)."""
    out: dict[str, tuple[str, str]] = {}
    if operative and offline:
        out["LocalAuthListEnabled"] = ("true", "offlineAuthorization is true")
        out["LocalAuthorizeOffline"] = ("true", "offlineAuthorization is true")
    else:
        why = "the station is not activated" if not operative else "offlineAuthorization is false"
        out["LocalAuthListEnabled"] = ("false", why)
        out["LocalAuthorizeOffline"] = ("false", why)
        out["AllowOfflineTxForUnknownId"] = ("false", why)
    if restricted or reservation_only:
        why = "access is restricted" if restricted else "an EVSE can only be used with a reservation"
        out["StopTransactionOnInvalidId"] = ("true", why)
        out["LocalPreAuthorize"] = ("false", why)
    return out


def _boot_free(desired: m.DesiredState, table: dict[Hashable, Any]) -> bool:
    """No profile of `desired` selects by boot information (`table`: `desired`'s memo, where it is kept)."""
    boot_free: bool | None = table.get(_BOOT_FREE)
    if boot_free is None:
        boot_free = table[_BOOT_FREE] = all(p.boot is None for p in desired.profiles.values())
    return boot_free


def boot_matters(desired: m.DesiredState) -> bool:
    """Some profile of `desired` selects stations by boot information (else `effective_station` ignores it)."""
    return not _boot_free(desired, _MEMO.table(desired))


def effective_station(desired: m.DesiredState, st: m.Station, boot: BootInfo | None = None,
                      assume_boot_profiles: bool = False) -> EffectiveStation:
    """Merge everything that applies to `st` (memoised per desired state, station and boot info).

    When no profile selects by boot information (the usual repository), boot information changes nothing:
    one entry per station, so what validation computed in the loader is what the reconciler plans with."""
    table = _MEMO.table(desired)
    if _boot_free(desired, table):
        boot, assume_boot_profiles = None, False
    key = (st.name, boot, assume_boot_profiles)
    eff: EffectiveStation | None = table.get(key)
    if eff is None or eff.station is not st:
        eff = _effective_station(desired, st, boot, assume_boot_profiles)
        table[key] = eff
    return eff


def _effective_station(desired: m.DesiredState, st: m.Station, boot: BootInfo | None,
                       assume_boot_profiles: bool) -> EffectiveStation:
    """Merge everything that applies to `st`.

    `assume_boot_profiles` applies boot-selected profiles that cannot be decided yet (used by validation to
    check the worst case).
    """
    applied, pending = matching_profiles(desired, st, boot)
    if assume_boot_profiles and pending:
        applied = sorted([*applied, *(desired.profiles[n] for n in pending)], key=lambda p: (p.priority, p.name))
        pending = []
    if not _is_empty(st.settings):
        return _merged_station(desired, st, applied, pending)
    # Stations with no settings of their own, the same profiles, activation and EVSE declarations (shared
    # objects, see `controller.config.build`) have the same effective settings but for the station itself:
    # computed once per class and desired state, and their parts are the same objects (which also makes
    # comparing two stations' settings mostly comparing pointers, `controller.runtime.planshare`).
    # (The EVSEs by identity: the station the entry was made for keeps them alive, so an equal key means the
    # very same objects.)
    key = (_CLASS, *(p.name for p in applied), None, *pending, st.activated, *map(id, st.evses))
    table = _MEMO.table(desired)
    template: EffectiveStation | None = table.get(key)
    if template is None:
        template = table[key] = _merged_station(desired, st, applied, pending)
        return template
    return _for_station(template, st)


def _for_station(eff: EffectiveStation, st: m.Station) -> EffectiveStation:
    """`eff` made out to `st` (a station whose effective settings are `eff`'s but for the station)."""
    return EffectiveStation(st, eff.operative, eff.profiles, eff.pending_boot_profiles, eff.tariff, eff.access,
                            eff.reservation_policy, eff.offline_authorization, eff.security_profile,
                            eff.heartbeat_interval, eff.ocpp_configuration, eff.derived_keys,
                            eff.vendor_configuration, eff.drift_warn_only, eff.maintenance, eff.evses, eff.conflicts)


def _merged_station(desired: m.DesiredState, st: m.Station, applied: list[m.StationProfile],
                    pending: list[str]) -> EffectiveStation:
    base = _profiles_merged(desired, applied)
    s = base if _is_empty(st.settings) else merge_settings([base, st.settings])
    operative = st.activated
    station_access = s.access or m.Access("public")
    policies = desired.reservation_policies
    evses = []
    for e in st.evses:
        avail = e.availability or s.availability or "operative"
        evses.append(EffectiveEvse(
            id=e.id, plugs=e.plugs, tariff=e.tariff or s.tariff, access=e.access or station_access,
            availability=avail if operative else "inoperative",
            reservation_policy=e.reservation_policy or s.reservation_policy,
        ))
    restricted = any(e.access.restricted for e in evses)
    res_only = any(
        (pol := policies.get(e.reservation_policy or "")) is not None and pol.reservation_only for e in evses
    )
    offline = bool(s.offline_authorization) and operative
    derived = derived_keys(operative, offline, restricted, res_only)
    # A declared key conflicts when it contradicts what chargeops sets on the station while it is activated;
    # de-activation overrides the offline keys on its own, without making the owner's declaration wrong.
    when_active = derived if operative else derived_keys(True, bool(s.offline_authorization), restricted, res_only)
    config = dict(s.ocpp_configuration or {})
    conflicts = []
    for k, (v, why) in when_active.items():
        declared = config.get(k)
        if declared is not None and declared.lower() != v:
            conflicts.append((k, declared, v, why))
    for k, (v, _why) in derived.items():
        config[k] = v
    hb_key = next((k for k in config if k.upper() == "HEARTBEATINTERVAL"), None)
    heartbeat = int(config[hb_key]) if hb_key and config[hb_key].isdigit() else DEFAULT_HEARTBEAT_INTERVAL
    return EffectiveStation(
        station=st,
        operative=operative,
        profiles=tuple(p.name for p in applied),
        pending_boot_profiles=tuple(pending),
        tariff=s.tariff,
        access=station_access,
        reservation_policy=s.reservation_policy,
        offline_authorization=offline,
        security_profile=s.security_profile if s.security_profile is not None else DEFAULT_SECURITY_PROFILE,
        heartbeat_interval=heartbeat,
        ocpp_configuration=config,
        derived_keys={k: why for k, (_v, why) in derived.items()},
        vendor_configuration=dict(s.vendor_configuration or {}),
        drift_warn_only=frozenset(k.upper() for k in (s.drift_warn_only or ())),
        maintenance=s.maintenance or m.Maintenance(),
        evses=tuple(evses),
        conflicts=tuple(conflicts),
    )
