"""What the reconcilers know about a live charger: `ObservedStation`, plain frozen data.

The runtime fills it from the store's records (the reconcilers never import the store) or from an
exported observed-state file (`to_dict` / `from_dict`), so `chargeops plan --against <file>` works in CI
without reaching the controller. Besides what the charger reported (boot, configuration keys, unknown
keys, local-list version, connector status, running sessions) it carries what the controller remembers
about its own past writes, which a charger cannot tell:

- ``local_list_hash``: the content hash of the list snapshot the charger accepted (None = unknown, so the
  next push is Full); ``local_list_mismatch``: the last SendLocalList answered Failed / VersionMismatch,
  or the version read back differs from the one we stored;
- ``pending_reboot``: a ChangeConfiguration answered RebootRequired (since when, which key -> value);
- ``refused``: keys answered NotSupported / Rejected, with the value refused (not retried until the
  desired value changes);
- ``write_only_sent``: digests of write-only values sent (AuthorizationKey), never the values;
- ``applied``: the last value we set and the charger accepted, per key (tells drift from an owner change);
- ``scheduled_availability``: ChangeAvailability answered Scheduled, per connector (pending a session end);
- ``cache_cleared_hash``: the revoked-card set in force at the last accepted ClearCache.

Capabilities (feature profiles, list limits, ...) are derived from the configuration keys read.

Boundary: pure data and small derived lookups; no I/O, no store imports.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from controller.config.effective import BootInfo
from controller.config.ocpp16_keys import READ_ONLY_KEYS, ConfigKey

LOCAL_AUTH = "LocalAuthListManagement"
_TRUE = "true"


def secret_digest(value: str) -> str:
    """The digest kept for a write-only value we sent (the value itself is never stored or shown)."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


ObservedKey = ConfigKey  # a key as the charger reports it (the store's records hold the same objects)


_FEATURE_PROFILES: dict[str, frozenset[str]] = {}  # SupportedFeatureProfiles text -> upper-case names


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """A ChangeConfiguration answered NotSupported or Rejected for `value`."""

    status: str  # "NotSupported" | "Rejected"
    value: str
    at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PendingReboot:
    """ChangeConfiguration answered RebootRequired: the values wait for a reboot."""

    since: dt.datetime
    keys: Mapping[str, str]  # upper-case key -> value sent


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    t = text.strip()
    return int(t) if t.lstrip("+-").isdigit() else None


@dataclasses.dataclass(frozen=True)
class ObservedStation:
    identity: str
    online: bool = True
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    configuration: Mapping[str, ObservedKey] = dataclasses.field(default_factory=dict)  # upper-case key ->
    unknown_keys: frozenset[str] = frozenset()  # upper-case
    read_at: dt.datetime | None = None  # last full configuration read; None = never observed
    local_list_version: int | None = None  # None = not read; -1 = not supported; 0 = empty
    local_list_hash: str | None = None
    local_list_mismatch: bool = False
    connectors: Mapping[int, str] = dataclasses.field(default_factory=dict)  # connector -> status
    sessions: frozenset[int] = frozenset()  # connectors with a running session
    pending_reboot: PendingReboot | None = None
    refused: Mapping[str, Refusal] = dataclasses.field(default_factory=dict)  # upper-case key ->
    write_only_sent: Mapping[str, str] = dataclasses.field(default_factory=dict)  # upper-case key -> digest
    applied: Mapping[str, str] = dataclasses.field(default_factory=dict)  # upper-case key -> value
    # accepted by the charger, not read back yet (upper-case key -> value sent): read back, not re-sent
    unconfirmed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    scheduled_availability: Mapping[int, str] = dataclasses.field(default_factory=dict)  # connector -> type
    cache_cleared_hash: str | None = None

    # ------------------------------------------------------------------ lookups

    @property
    def observed(self) -> bool:
        """The configuration has been read at least once."""
        return self.read_at is not None

    @property
    def boot(self) -> BootInfo | None:
        if not (self.vendor or self.model or self.firmware):
            return None
        return BootInfo(self.vendor, self.model, self.firmware)

    def key(self, name: str) -> ObservedKey | None:
        return self.configuration.get(name.upper())

    def value(self, name: str) -> str | None:
        k = self.key(name)
        return None if k is None else k.value

    def is_unknown(self, name: str) -> bool:
        return name.upper() in self.unknown_keys

    # ------------------------------------------------------------------ capabilities

    @functools.cached_property
    def feature_profiles(self) -> frozenset[str] | None:
        """SupportedFeatureProfiles as reported (upper-case names), or None when not reported."""
        raw = self.value("SupportedFeatureProfiles")
        if raw is None:
            return None
        parsed = _FEATURE_PROFILES.get(raw)
        if parsed is None:  # a fleet reports a handful of different texts: each parsed once
            parsed = frozenset(p.strip().upper() for p in raw.split(",") if p.strip())
            if len(_FEATURE_PROFILES) < 256:
                _FEATURE_PROFILES[raw] = parsed
        return parsed

    def supports(self, profile: str) -> bool:
        """Whether the charger supports a feature profile; assumed when it does not report its profiles."""
        profiles = self.feature_profiles
        return True if profiles is None else profile.upper() in profiles

    @property
    def supports_local_list(self) -> bool:
        return self.supports(LOCAL_AUTH) and self.local_list_version != -1

    @property
    def local_auth_list_max_length(self) -> int | None:
        return _int(self.value("LocalAuthListMaxLength"))

    @property
    def send_local_list_max_length(self) -> int | None:
        return _int(self.value("SendLocalListMaxLength"))

    @property
    def get_configuration_max_keys(self) -> int | None:
        return _int(self.value("GetConfigurationMaxKeys"))

    @property
    def reserve_connector_zero_supported(self) -> bool:
        return (self.value("ReserveConnectorZeroSupported") or "").strip().lower() == _TRUE

    @property
    def custom_display_cost_and_price(self) -> bool:
        return (self.value("CustomDisplayCostAndPrice") or "").strip().lower() == _TRUE

    # ------------------------------------------------------------------ plain data

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the observed-state export); `from_dict` reads it back."""
        pr = self.pending_reboot
        return {
            "identity": self.identity,
            "online": self.online,
            "boot": {"vendor": self.vendor, "model": self.model, "firmware": self.firmware},
            "configuration": [{"key": k.key, "value": k.value, "readonly": k.readonly}
                              for _, k in sorted(self.configuration.items())],
            "unknownKeys": sorted(self.unknown_keys),
            "readAt": _iso(self.read_at),
            "localList": {"version": self.local_list_version, "hash": self.local_list_hash,
                          "mismatch": self.local_list_mismatch},
            "connectors": {str(c): s for c, s in sorted(self.connectors.items())},
            "sessions": sorted(self.sessions),
            "pendingReboot": None if pr is None else {"since": _iso(pr.since), "keys": dict(sorted(pr.keys.items()))},
            "refused": {k: {"status": r.status, "value": r.value, "at": _iso(r.at)}
                        for k, r in sorted(self.refused.items())},
            "writeOnlySent": dict(sorted(self.write_only_sent.items())),
            "applied": dict(sorted(self.applied.items())),
            "unconfirmed": dict(sorted(self.unconfirmed.items())),
            "scheduledAvailability": {str(c): t for c, t in sorted(self.scheduled_availability.items())},
            "cacheClearedHash": self.cache_cleared_hash,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ObservedStation:
        boot = d.get("boot") or {}
        ll = d.get("localList") or {}
        pr = d.get("pendingReboot")
        return cls(
            identity=d["identity"],
            online=bool(d.get("online", True)),
            vendor=boot.get("vendor", ""), model=boot.get("model", ""), firmware=boot.get("firmware", ""),
            configuration={c["key"].upper(): ObservedKey(c["key"], c.get("value"), bool(c.get("readonly")))
                           for c in d.get("configuration", ())},
            unknown_keys=frozenset(k.upper() for k in d.get("unknownKeys", ())),
            read_at=_parse(d.get("readAt")),
            local_list_version=ll.get("version"),
            local_list_hash=ll.get("hash"),
            local_list_mismatch=bool(ll.get("mismatch", False)),
            connectors={int(c): s for c, s in (d.get("connectors") or {}).items()},
            sessions=frozenset(int(c) for c in d.get("sessions", ())),
            pending_reboot=None if pr is None else PendingReboot(
                _required(_parse(pr.get("since"))), {k.upper(): v for k, v in (pr.get("keys") or {}).items()}),
            refused={k.upper(): Refusal(r["status"], r["value"], _parse(r.get("at")))
                     for k, r in (d.get("refused") or {}).items()},
            write_only_sent={k.upper(): v for k, v in (d.get("writeOnlySent") or {}).items()},
            applied={k.upper(): v for k, v in (d.get("applied") or {}).items()},
            unconfirmed={k.upper(): v for k, v in (d.get("unconfirmed") or {}).items()},
            scheduled_availability={int(c): t for c, t in (d.get("scheduledAvailability") or {}).items()},
            cache_cleared_hash=d.get("cacheClearedHash"),
        )


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _required(t: dt.datetime | None) -> dt.datetime:
    if t is None:
        raise ValueError("pendingReboot needs 'since'")
    return t


ConfigInput = Mapping[str, "str | None"] | Iterable[ObservedKey]


def observed_station(
    identity: str,
    config: ConfigInput = (),
    *,
    read_at: dt.datetime | None = None,
    readonly: Iterable[str] = (),
    unknown: Iterable[str] = (),
    connectors: Mapping[int, str] | None = None,
    sessions: Iterable[int] = (),
    **fields: Any,
) -> ObservedStation:
    """Build an `ObservedStation` from plain values.

    `config` is key -> value (keys spelled as the charger does; catalogued read-only keys and the names in
    `readonly` are marked read-only) or `ObservedKey`s. `read_at` defaults to the Unix epoch when a
    configuration is given (observed) and None otherwise. Other fields are passed through.
    """
    ro = {k.upper() for k in readonly} | READ_ONLY_KEYS
    if isinstance(config, Mapping):
        keys = [ObservedKey(k, v, k.upper() in ro) for k, v in config.items()]
    else:
        keys = list(config)
    if read_at is None and keys:
        read_at = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return ObservedStation(
        identity=identity,
        configuration={k.upper: k for k in keys},
        unknown_keys=frozenset(k.upper() for k in unknown),
        read_at=read_at,
        connectors=dict(connectors or {}),
        sessions=frozenset(sessions),
        **fields,
    )
