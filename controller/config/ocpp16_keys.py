"""Catalog of the standard OCPP 1.6 configuration keys, and how their values are compared and checked.

Role: pure reference data plus small pure helpers used by the loader (to reject unknown, read-only or
ill-typed keys in ``ocppConfiguration``), by the configuration reconciler (to compare a declared value with
the value a charger reports) and by the reference-doc generator.

Boundary: no I/O, no network, no knowledge of stations. Vendor keys are not listed here; callers pass
``None`` as the key for them and get the generic behaviour (values are strings, compared exactly).

Sources:

- OCPP 1.6 edition 2, chapter 9 "Standard Configuration Key Names & Values": the Core,
  LocalAuthListManagement, Reservation and SmartCharging profiles. The FirmwareManagement and RemoteTrigger
  profiles define no configuration keys in 1.6; they appear only as members of SupportedFeatureProfiles.
- "Improved security for OCPP 1.6-J" whitepaper: AuthorizationKey, SecurityProfile, CpoName,
  CertificateStoreMaxLength, CertificateSignedMaxChainSize, AdditionalRootCertificateCheck
  (``source == Source.SECURITY``).
- OCA "OCPP & California Pricing Requirements" whitepaper: the cost/price display keys
  (``source == Source.CALIFORNIA_PRICING``); only meaningful where CustomDisplayCostAndPrice reads true.

"Required" follows the specification: the key must exist on a charger that supports the key's feature
profile (or, for whitepaper keys, implements the whitepaper's feature).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "KEYS",
    "MAX_VALUE_LENGTH",
    "MEASURANDS",
    "READ_ONLY_KEYS",
    "WRITE_ONLY_KEYS",
    "Access",
    "OcppKey",
    "Source",
    "ValueType",
    "check_value",
    "closest",
    "lookup",
    "normalize_value",
    "values_equal",
]

MAX_VALUE_LENGTH = 500
"""ChangeConfiguration.req ``value`` is a CiString500."""


class ValueType(StrEnum):
    BOOL = "bool"
    INT = "int"
    STRING = "string"
    CSL = "csl"  # comma separated list


class Access(StrEnum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"
    WRITE_ONLY = "write-only"


class Source(StrEnum):
    OCPP16 = "OCPP 1.6"
    SECURITY = "OCPP 1.6 security whitepaper"
    CALIFORNIA_PRICING = "OCA California Pricing whitepaper"


MEASURANDS: tuple[str, ...] = (
    "Current.Export",
    "Current.Import",
    "Current.Offered",
    "Energy.Active.Export.Register",
    "Energy.Active.Import.Register",
    "Energy.Reactive.Export.Register",
    "Energy.Reactive.Import.Register",
    "Energy.Active.Export.Interval",
    "Energy.Active.Import.Interval",
    "Energy.Reactive.Export.Interval",
    "Energy.Reactive.Import.Interval",
    "Frequency",
    "Power.Active.Export",
    "Power.Active.Import",
    "Power.Factor",
    "Power.Offered",
    "Power.Reactive.Export",
    "Power.Reactive.Import",
    "RPM",
    "SoC",
    "Temperature",
    "Voltage",
)
FEATURE_PROFILES: tuple[str, ...] = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "SmartCharging",
    "RemoteTrigger",
)
CHARGING_RATE_UNITS: tuple[str, ...] = ("Current", "Power")
PHASE_ROTATIONS: tuple[str, ...] = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One key as a charger reports it in GetConfiguration: what the store keeps and the planners observe
    (one type for both, so observing a stored record builds no second object per key)."""

    key: str  # as the charger spells it; lookups are case-insensitive
    value: str | None  # None: the charger reported the key without a value
    readonly: bool = False
    upper: str = field(init=False, compare=False, repr=False)  # the name upper-cased, once

    def __post_init__(self) -> None:
        # interned: 10,000 chargers report the same ~45 names, one string each instead of one per station
        object.__setattr__(self, "upper", sys.intern(self.key.upper()))


_INTERNED: dict[tuple[str, str | None, bool], ConfigKey] = {}
_INTERN_LOCK = threading.Lock()
INTERNED_MAX = 65_536  # distinct (name, value, read-only) triples kept; past it the oldest go first


def config_key(key: str, value: str | None, readonly: bool = False) -> ConfigKey:
    """A `ConfigKey`, one object per distinct (name, value, read-only): chargers that report the same value
    share it, so comparing two stations' configurations is mostly comparing pointers (see
    `controller.runtime.planshare`), and 10,000 chargers keep one object per distinct value, not 45 each."""
    triple = (key, value, readonly)
    found = _INTERNED.get(triple)
    if found is None:
        with _INTERN_LOCK:  # the store's reader threads intern too: one table changes at a time
            found = _INTERNED.get(triple)
            if found is None:
                found = ConfigKey(key, value, readonly)
                if len(_INTERNED) >= INTERNED_MAX:
                    del _INTERNED[next(iter(_INTERNED))]
                _INTERNED[triple] = found
    return found


def configuration_index(keys: Iterable[ConfigKey]) -> dict[str, ConfigKey]:
    """Keys by upper-cased name (a later key of the same name wins)."""
    return {k.upper: k for k in keys}


@dataclass(frozen=True, slots=True)
class OcppKey:
    """One standard configuration key.

    ``members``: for a csl, the allowed list members (compared case-insensitively), else None.
    ``item_pattern``: for a csl without a fixed vocabulary, a regex every member must match, and
    ``item_hint`` what such a member looks like, for messages.
    ``unit``: for an int, what the number counts ("seconds", "Wh", ...), used in messages.
    ``fmt``: for a string with a known shape: "json", "time-offset", "datetime", "authorization-key".
    ``per_language``: the key is also addressed as ``<Name>,<language>`` (California Pricing).
    """

    name: str
    type: ValueType
    access: Access
    profile: str
    required: bool
    description: str
    source: Source = Source.OCPP16
    members: tuple[str, ...] | None = None
    item_pattern: str | None = None
    item_hint: str | None = None
    unit: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    fmt: str | None = None
    per_language: bool = False

    @property
    def case_insensitive_items(self) -> bool:
        """csl members come from a fixed vocabulary (enum or pattern), so their case does not matter."""
        return self.members is not None or self.item_pattern is not None


_RW, _R, _W = Access.READ_WRITE, Access.READ_ONLY, Access.WRITE_ONLY
_B, _I, _S, _L = ValueType.BOOL, ValueType.INT, ValueType.STRING, ValueType.CSL
_SEC, _CAL = Source.SECURITY, Source.CALIFORNIA_PRICING
_ROTATION = r"(\d+\.)?(" + "|".join(PHASE_ROTATIONS) + ")"


_CORE = "Core"


_CATALOG: tuple[OcppKey, ...] = (
    # --- Core profile (OCPP 1.6 §9.1) ---
    OcppKey("AllowOfflineTxForUnknownId", _B, _RW, _CORE, False,
            "Allow transactions for unknown idTags while offline (local authorization)."),
    OcppKey("AuthorizationCacheEnabled", _B, _RW, _CORE, False, "Enable the charger's authorization cache."),
    OcppKey("AuthorizeRemoteTxRequests", _B, _RW, _CORE, True,
            "RemoteStartTransaction is authorized like a local start (read-only on some chargers)."),
    OcppKey("BlinkRepeat", _I, _RW, _CORE, False, "Times to blink the charger lights when signalling.",
            unit="times", minimum=0),
    OcppKey("ClockAlignedDataInterval", _I, _RW, _CORE, True,
            "Interval of clock-aligned meter data, from midnight; 0 turns it off.",
            unit="seconds", minimum=0),
    OcppKey("ConnectionTimeOut", _I, _RW, _CORE, True,
            "Time from the start of the preparing phase until the EV must be plugged in.",
            unit="seconds", minimum=0),
    OcppKey("ConnectorPhaseRotation", _L, _RW, _CORE, True,
            "Phase rotation per connector as <connectorId>.<rotation>, e.g. 0.RST, 1.RTS.",
            item_pattern=_ROTATION, item_hint="<connectorId>.<rotation> such as 0.RST or 1.NotApplicable"),
    OcppKey("ConnectorPhaseRotationMaxLength", _I, _R, _CORE, False,
            "Maximum items in ConnectorPhaseRotation.",
            minimum=0),
    OcppKey("GetConfigurationMaxKeys", _I, _R, _CORE, True,
            "Maximum keys in one GetConfiguration.req.", minimum=0),
    OcppKey("HeartbeatInterval", _I, _RW, _CORE, True,
            "Interval of inactivity after which the charger sends a Heartbeat.", unit="seconds", minimum=0),
    OcppKey("LightIntensity", _I, _RW, _CORE, False, "Percentage of maximum light intensity.",
            unit="percent", minimum=0, maximum=100),
    OcppKey("LocalAuthorizeOffline", _B, _RW, _CORE, True,
            "While offline, start transactions for idTags in the local list or cache."),
    OcppKey("LocalPreAuthorize", _B, _RW, _CORE, True,
            "While online, start at once for locally known idTags without waiting for Authorize.conf."),
    OcppKey("MaxEnergyOnInvalidId", _I, _RW, _CORE, False,
            "Energy delivered after an idTag is found invalid during an offline transaction.",
            unit="Wh", minimum=0),
    OcppKey("MeterValuesAlignedData", _L, _RW, _CORE, True,
            "Measurands sent in clock-aligned MeterValues.req.", members=MEASURANDS),
    OcppKey("MeterValuesAlignedDataMaxLength", _I, _R, _CORE, False,
            "Maximum items in MeterValuesAlignedData.",
            minimum=0),
    OcppKey("MeterValuesSampledData", _L, _RW, _CORE, True,
            "Measurands sent in sampled MeterValues.req during a transaction.", members=MEASURANDS),
    OcppKey("MeterValuesSampledDataMaxLength", _I, _R, _CORE, False,
            "Maximum items in MeterValuesSampledData.",
            minimum=0),
    OcppKey("MeterValueSampleInterval", _I, _RW, _CORE, True,
            "Interval between sampled meter values during a transaction; 0 turns them off.",
            unit="seconds", minimum=0),
    OcppKey("MinimumStatusDuration", _I, _RW, _CORE, False,
            "How long a status must hold before a StatusNotification.req is sent.",
            unit="seconds", minimum=0),
    OcppKey("NumberOfConnectors", _I, _R, _CORE, True,
            "Number of physical connectors of the charger.", minimum=0),
    OcppKey("ResetRetries", _I, _RW, _CORE, True, "Times the charger retries a failed reset.", unit="times",
            minimum=0),
    OcppKey("StopTransactionOnEVSideDisconnect", _B, _RW, _CORE, True,
            "Stop the transaction when the cable is unplugged at the EV."),
    OcppKey("StopTransactionOnInvalidId", _B, _RW, _CORE, True,
            "Stop a running transaction when its idTag turns out invalid."),
    OcppKey("StopTxnAlignedData", _L, _RW, _CORE, True,
            "Clock-aligned measurands included in StopTransaction.req transactionData.", members=MEASURANDS),
    OcppKey("StopTxnAlignedDataMaxLength", _I, _R, _CORE, False,
            "Maximum items in StopTxnAlignedData.", minimum=0),
    OcppKey("StopTxnSampledData", _L, _RW, _CORE, True,
            "Sampled measurands included in StopTransaction.req transactionData.", members=MEASURANDS),
    OcppKey("StopTxnSampledDataMaxLength", _I, _R, _CORE, False,
            "Maximum items in StopTxnSampledData.", minimum=0),
    OcppKey("SupportedFeatureProfiles", _L, _R, _CORE, True, "Feature profiles the charger supports.",
            members=FEATURE_PROFILES),
    OcppKey("SupportedFeatureProfilesMaxLength", _I, _R, _CORE, False,
            "Maximum items in SupportedFeatureProfiles.",
            minimum=0),
    OcppKey("TransactionMessageAttempts", _I, _RW, _CORE, True,
            "Times a failed transaction-related message is sent before it is discarded.",
            unit="times", minimum=0),
    OcppKey("TransactionMessageRetryInterval", _I, _RW, _CORE, True,
            "Wait before resending a failed transaction-related message (multiplied by the attempt).",
            unit="seconds", minimum=0),
    OcppKey("UnlockConnectorOnEVSideDisconnect", _B, _RW, _CORE, True,
            "Unlock the connector at the charger when the cable is unplugged at the EV."),
    OcppKey("WebSocketPingInterval", _I, _RW, _CORE, False, "WebSocket ping interval; 0 turns pings off.",
            unit="seconds", minimum=0),
    # --- Local Auth List Management profile (§9.2) ---
    OcppKey("LocalAuthListEnabled", _B, _RW, "LocalAuthListManagement", True,
            "Use the local authorization list."),
    OcppKey("LocalAuthListMaxLength", _I, _R, "LocalAuthListManagement", True,
            "Maximum number of idTags the local authorization list can hold.", minimum=0),
    OcppKey("SendLocalListMaxLength", _I, _R, "LocalAuthListManagement", True,
            "Maximum number of idTags in one SendLocalList.req.", minimum=0),
    # --- Reservation profile (§9.3) ---
    OcppKey("ReserveConnectorZeroSupported", _B, _R, "Reservation", False,
            "Reservations of connector 0 (any connector of the charger) are supported."),
    # --- Smart Charging profile (§9.4) ---
    OcppKey("ChargeProfileMaxStackLevel", _I, _R, "SmartCharging", True,
            "Highest stackLevel a charging profile may have.", minimum=0),
    OcppKey("ChargingScheduleAllowedChargingRateUnit", _L, _R, "SmartCharging", True,
            "Charging rate units a charging schedule may use.", members=CHARGING_RATE_UNITS),
    OcppKey("ChargingScheduleMaxPeriods", _I, _R, "SmartCharging", True,
            "Maximum periods in one charging schedule.", minimum=0),
    OcppKey("ConnectorSwitch3to1PhaseSupported", _B, _R, "SmartCharging", False,
            "The charger can switch from 3 to 1 phase during a transaction."),
    OcppKey("MaxChargingProfilesInstalled", _I, _R, "SmartCharging", True,
            "Maximum charging profiles installed at a time.", minimum=0),
    # --- Security whitepaper ---
    OcppKey("AdditionalRootCertificateCheck", _B, _R, "Security", False,
            "Only one CentralSystemRootCertificate (plus a temporary fallback) may be installed.",
            source=_SEC),
    OcppKey("AuthorizationKey", _S, _W, "Security", False,
            "HTTP Basic password for security profiles 1 and 2 (16-20 bytes); write-only, never shown.",
            source=_SEC, fmt="authorization-key"),
    OcppKey("CertificateSignedMaxChainSize", _I, _R, "Security", False,
            "Maximum size of the certificateChain in CertificateSigned.req.", source=_SEC,
            unit="bytes", minimum=0),
    OcppKey("CertificateStoreMaxLength", _I, _R, "Security", False,
            "Maximum number of root certificates the charger can store.", source=_SEC, minimum=0),
    OcppKey("CpoName", _S, _RW, "Security", False,
            "CPO name (organization) the charger puts in its certificate signing requests.", source=_SEC),
    OcppKey("SecurityProfile", _I, _RW, "Security", False,
            "Security profile in use (0-3); it can only be raised, never lowered.", source=_SEC,
            minimum=0, maximum=3),
    # --- California Pricing whitepaper ---
    OcppKey("CustomDisplayCostAndPrice", _B, _R, "CaliforniaPricing", False,
            "The charger supports the California Pricing cost and price display messages.", source=_CAL),
    OcppKey("DefaultPrice", _S, _RW, "CaliforniaPricing", False,
            "JSON text: priceText, priceTextOffline and chargingPrice used before authorization or offline.",
            source=_CAL, fmt="json"),
    OcppKey("DefaultPriceText", _S, _RW, "CaliforniaPricing", False,
            "Default price text for one language, set as DefaultPriceText,<language>.",
            source=_CAL, per_language=True),
    OcppKey("TimeOffset", _S, _RW, "CaliforniaPricing", False,
            "Local time offset from UTC (e.g. -05:00) used to display times.",
            source=_CAL, fmt="time-offset"),
    OcppKey("NextTimeOffsetTransitionDateTime", _S, _RW, "CaliforniaPricing", False,
            "When TimeOffset next changes (daylight saving), as an RFC 3339 date-time.",
            source=_CAL, fmt="datetime"),
    OcppKey("TimeOffsetNextTransition", _S, _RW, "CaliforniaPricing", False,
            "The TimeOffset that takes effect at NextTimeOffsetTransitionDateTime.",
            source=_CAL, fmt="time-offset"),
    OcppKey("CustomIdleFeeAfterStop", _B, _RW, "CaliforniaPricing", False,
            "The charger keeps counting idle fee after StopTransaction until it sends ConnectorUnplugged.",
            source=_CAL),
    OcppKey("SupportedLanguages", _L, _R, "CaliforniaPricing", False,
            "Languages the charger can display (RFC 5646 codes).", source=_CAL,
            item_pattern=r"[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*",
            item_hint="an RFC 5646 code such as en or nl-BE"),
    OcppKey("Language", _S, _RW, "CaliforniaPricing", False,
            "Default display language (RFC 5646 code, one of SupportedLanguages).", source=_CAL),
    OcppKey("CustomMultiLanguageMessages", _B, _R, "CaliforniaPricing", False,
            "The charger supports price and cost messages in several languages.", source=_CAL),
)

KEYS: dict[str, OcppKey] = {key.name.upper(): key for key in _CATALOG}
"""Every catalogued key, by upper-case name."""

READ_ONLY_KEYS: frozenset[str] = frozenset(n for n, k in KEYS.items() if k.access is Access.READ_ONLY)
"""Upper-case names of capability keys: reported by the charger, never set."""

WRITE_ONLY_KEYS: frozenset[str] = frozenset(n for n, k in KEYS.items() if k.access is Access.WRITE_ONLY)
"""Upper-case names of keys that can be written but never read back (AuthorizationKey)."""

_CANONICAL_BY_UPPER: dict[str, str] = {n: k.name for n, k in KEYS.items()}
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_OFFSET_RE = re.compile(r"^[+-]?([01][0-9]|2[0-3]):[0-5][0-9]$")
_DATETIME_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?$"
)
_HEX_RE = re.compile(r"^[0-9A-Fa-f]+$")


@functools.lru_cache(maxsize=4096)  # planners look the same few names up for every station and key
def lookup(name: str) -> OcppKey | None:
    """The catalogued key called ``name`` (case-insensitive), or None for a vendor or misspelt key.

    ``DefaultPriceText,fr`` finds DefaultPriceText: per-language keys carry the language after a comma.
    """
    upper = name.strip().upper()
    key = KEYS.get(upper)
    if key is None and "," in upper:
        base = KEYS.get(upper.split(",", 1)[0])
        if base is not None and base.per_language:
            return base
    return key


def closest(name: str) -> str | None:
    """The canonical name of the catalogued key most like ``name``, for "did you mean" hints."""
    matches = difflib.get_close_matches(name.strip().upper(), list(_CANONICAL_BY_UPPER), n=1, cutoff=0.6)
    return _CANONICAL_BY_UPPER[matches[0]] if matches else None


def _split_csl(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _canonical_member(key: OcppKey, item: str) -> str:
    if key.members is not None:
        for member in key.members:
            if member.upper() == item.upper():
                return member
    return item


def _scalar_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return value


def normalize_value(key: OcppKey | None, value: str | int | bool) -> str:
    """The text to send for ``value``: booleans as true/false, integers in decimal, csl items trimmed.

    Values that do not fit the key's type are returned as their plain text (``check_value`` reports them).
    Known csl members get their canonical spelling (``soc`` -> ``SoC``); order is kept.
    """
    text = _scalar_text(value)
    if key is None or isinstance(value, bool | int):
        return text
    memo = (key.name, text)
    known = _NORMALIZED.get(memo)
    if known is not None:  # the same few declared values are normalised for every station at every look
        return known
    out = text
    if key.type is ValueType.BOOL and text.strip().lower() in ("true", "false"):
        out = text.strip().lower()
    elif key.type is ValueType.INT and _INT_RE.match(text.strip()):
        out = str(int(text.strip()))
    elif key.type is ValueType.CSL:
        out = ",".join(_canonical_member(key, item) for item in _split_csl(text))
    if len(_NORMALIZED) < _NORMALIZED_MAX:
        _NORMALIZED[memo] = out
    return out


_NORMALIZED: dict[tuple[str, str], str] = {}
_NORMALIZED_MAX = 16_384


def _json_equal(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a, parse_float=Decimal) == json.loads(b, parse_float=Decimal))
    except ValueError:
        return a == b


def values_equal(key: OcppKey | None, a: str, b: str) -> bool:
    """Whether a declared and a reported value mean the same to the charger.

    Booleans compare case-insensitively, integers numerically, csl item by item in order (case-insensitively
    when the items come from a fixed vocabulary, e.g. measurands), JSON values as parsed JSON. Anything
    else, including vendor keys (``key is None``), compares exactly.
    """
    if a == b or key is None:  # the same text means the same value, whatever the type
        return a == b
    if key.type is ValueType.BOOL:
        return a.strip().lower() == b.strip().lower()
    if key.type is ValueType.INT:
        if _INT_RE.match(a.strip()) and _INT_RE.match(b.strip()):
            return int(a.strip()) == int(b.strip())
        return a.strip() == b.strip()
    if key.type is ValueType.CSL:
        items_a, items_b = _split_csl(a), _split_csl(b)
        if key.case_insensitive_items:
            return [i.upper() for i in items_a] == [i.upper() for i in items_b]
        return items_a == items_b
    if key.fmt == "json":
        return _json_equal(a, b)
    return a == b


def _check_int(key: OcppKey, value: str | int | bool) -> str | None:
    what = f"a whole number of {key.unit}" if key.unit else "a whole number"
    if isinstance(value, bool) or (isinstance(value, str) and not _INT_RE.match(value.strip())):
        return f"{key.name} expects {what}, got {value!r}"
    number = int(value)
    unit = f" {key.unit}" if key.unit else ""
    if key.minimum is not None and number < key.minimum:
        return f"{key.name} must be at least {key.minimum}{unit}, got {number}"
    if key.maximum is not None and number > key.maximum:
        return f"{key.name} must be at most {key.maximum}{unit}, got {number}"
    return None


def _check_csl(key: OcppKey, text: str) -> str | None:
    for item in _split_csl(text):
        if key.members is not None and item.upper() not in {m.upper() for m in key.members}:
            upper = {m.upper(): m for m in key.members}
            hint = [upper[m] for m in difflib.get_close_matches(item.upper(), list(upper), n=1, cutoff=0.6)]
            suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(key.members)}"
            return f"{key.name} has an unknown member {item!r}{suggestion}"
        if key.item_pattern is not None and not re.fullmatch(key.item_pattern, item, re.IGNORECASE):
            return f"{key.name} has a malformed member {item!r}; expected {key.item_hint}"
    return None


def _check_string(key: OcppKey, text: str) -> str | None:
    if key.fmt == "authorization-key":
        # Never echo the value: it is a secret.
        raw_ok = 16 <= len(text.encode()) <= 20
        hex_ok = 32 <= len(text) <= 40 and len(text) % 2 == 0 and bool(_HEX_RE.match(text))
        if not (raw_ok or hex_ok):
            return f"{key.name} must be 16-20 bytes: 16-20 characters, or 32-40 hex digits"
    elif key.fmt == "time-offset" and not _OFFSET_RE.match(text):
        return f"{key.name} expects a UTC offset such as -05:00 or +01:00, got {text!r}"
    elif key.fmt == "datetime" and not _DATETIME_RE.match(text):
        return f"{key.name} expects an RFC 3339 date-time such as 2027-03-28T02:00:00+01:00, got {text!r}"
    elif key.fmt == "json":
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            return f"{key.name} expects JSON text, which does not parse: {exc}"
        if not isinstance(parsed, dict) or not isinstance(parsed.get("priceText"), str):
            return f"{key.name} expects a JSON object with at least a priceText string"
    return None


def check_value(key: OcppKey | None, value: str | int | bool) -> str | None:
    """A message saying why ``value`` does not fit ``key``, or None when it does.

    Checks the OCPP value type (and range, list members or format where the key defines them) and the
    500-character limit of ChangeConfiguration. Messages for write-only keys never contain the value.
    """
    text = _scalar_text(value)
    name = key.name if key is not None else "The value"
    if len(text) > MAX_VALUE_LENGTH:
        return f"{name} is {len(text)} characters long; OCPP 1.6 allows at most {MAX_VALUE_LENGTH}"
    if key is None:
        return None
    if key.type is ValueType.INT:
        return _check_int(key, value)
    if key.type is ValueType.BOOL:
        if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
            return None
        return f"{key.name} expects true or false, got {value!r}"
    if not isinstance(value, str):
        return f"{key.name} expects text, got {value!r}; quote it"
    if key.type is ValueType.CSL:
        return _check_csl(key, value)
    return _check_string(key, value)
