"""The simulated charger's configuration keys: specs, persistent values, ChangeConfiguration semantics.

Role: behave like a 1.6 charger's key store. Keys are matched case-insensitively and reported in their
canonical spelling; read-only keys (capabilities) answer Rejected, unknown keys NotSupported, malformed
values Rejected, keys of the model's ``reboot_required_keys`` RebootRequired (the value applies at the
next reboot). ``AuthorizationKey`` is write-only: it is listed without a value. Boundary: no I/O, no
asyncio; the charger owns side effects (heartbeat interval, password, price display).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from ocpp.v16.enums import ConfigurationStatus, Measurand

from controller.hw.sim.model import ChargerModel

Kind = Literal["str", "int", "bool", "measurands", "json", "key", "profile"]
_MEASURANDS = frozenset(m.value.lower() for m in Measurand)


@dataclass(frozen=True, slots=True)
class KeySpec:
    name: str
    default: str
    kind: Kind = "str"
    readonly: bool = False
    write_only: bool = False
    max_length: int = 500


def _b(value: bool) -> str:
    return "true" if value else "false"


def key_specs(model: ChargerModel, password: str | None) -> list[KeySpec]:
    """The keys a charger of ``model`` has, with factory defaults."""
    specs = [
        # capabilities (read-only)
        KeySpec("NumberOfConnectors", str(model.connectors), "int", readonly=True),
        KeySpec("SupportedFeatureProfiles", ",".join(model.feature_profiles), readonly=True),
        KeySpec("GetConfigurationMaxKeys", str(model.get_configuration_max_keys), "int", readonly=True),
        KeySpec("MeterValuesSampledDataMaxLength", "5", "int", readonly=True),
        KeySpec("ReserveConnectorZeroSupported", _b(model.reserve_connector_zero), "bool", readonly=True),
        KeySpec("CustomDisplayCostAndPrice", _b(model.california_pricing), "bool", readonly=True),
        # settings
        KeySpec("HeartbeatInterval", "300", "int"),
        KeySpec("ConnectionTimeOut", "60", "int"),
        KeySpec("MeterValueSampleInterval", "60", "int"),
        KeySpec("MeterValuesSampledData", "Energy.Active.Import.Register", "measurands"),
        KeySpec("ClockAlignedDataInterval", "0", "int"),
        KeySpec("MeterValuesAlignedData", "", "measurands"),
        KeySpec("StopTxnSampledData", "", "measurands"),
        KeySpec("StopTxnAlignedData", "", "measurands"),
        KeySpec("AuthorizeRemoteTxRequests", "false", "bool"),
        KeySpec("LocalAuthorizeOffline", "true", "bool"),
        KeySpec("LocalPreAuthorize", "false", "bool"),
        KeySpec("AllowOfflineTxForUnknownId", "false", "bool"),
        KeySpec("StopTransactionOnInvalidId", "true", "bool"),
        KeySpec("StopTransactionOnEVSideDisconnect", "true", "bool"),
        KeySpec("UnlockConnectorOnEVSideDisconnect", "true", "bool"),
        KeySpec("TransactionMessageAttempts", "3", "int"),
        KeySpec("TransactionMessageRetryInterval", "60", "int"),
        KeySpec("ResetRetries", "3", "int"),
        KeySpec("LightIntensity", "80", "int"),
        KeySpec("WebSocketPingInterval", "60", "int"),
        KeySpec("SecurityProfile", "1" if password else "0", "profile"),
        KeySpec("AuthorizationKey", password or "", "key", write_only=True),
    ]
    if model.authorization_cache:
        specs.append(KeySpec("AuthorizationCacheEnabled", "true", "bool"))
    if model.supports_local_list:
        specs += [
            KeySpec("LocalAuthListEnabled", "true", "bool"),
            KeySpec("LocalAuthListMaxLength", str(model.local_list_max_length), "int", readonly=True),
            KeySpec("SendLocalListMaxLength", str(model.send_local_list_max_length), "int", readonly=True),
        ]
    if model.california_pricing:
        specs += [
            KeySpec("DefaultPrice", "", "json"),
            KeySpec("TimeOffset", "+00:00"),
            KeySpec("NextTimeOffsetTransitionDateTime", ""),
            KeySpec("TimeOffsetNextTransition", ""),
            KeySpec("CustomIdleFeeAfterStop", "false", "bool"),
        ]
    return specs


class ConfigStore:
    """Persistent key values (they survive a reboot unless the charger loses its settings)."""

    def __init__(self, model: ChargerModel, password: str | None = None) -> None:
        self._model = model
        self._specs = {spec.name.lower(): spec for spec in key_specs(model, password)}
        self._values = {name: spec.default for name, spec in self._specs.items()}
        self._pending: dict[str, str] = {}  # RebootRequired values, applied at reboot
        self._reboot_keys = {key.lower() for key in model.reboot_required_keys}

    # reading -------------------------------------------------------------------------------------

    def spec(self, key: str) -> KeySpec | None:
        return self._specs.get(key.lower())

    def get(self, key: str) -> str | None:
        return self._values.get(key.lower())

    def get_int(self, key: str, default: int = 0) -> int:
        raw = self.get(key)
        try:
            return int(raw) if raw is not None else default
        except ValueError:
            return default

    def get_bool(self, key: str, default: bool = False) -> bool:
        raw = self.get(key)
        return default if raw is None else raw.strip().lower() == "true"

    def report(self, keys: list[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration.conf content for ``keys`` (all keys when None)."""
        wanted = list(self._specs) if keys is None else keys
        known: list[dict[str, object]] = []
        unknown: list[str] = []
        for key in wanted:
            spec = self._specs.get(key.lower())
            if spec is None:
                unknown.append(key)
                continue
            entry: dict[str, object] = {"key": spec.name, "readonly": spec.readonly}
            if not spec.write_only:
                entry["value"] = self._values[spec.name.lower()]
            known.append(entry)
        return known, unknown

    # writing -------------------------------------------------------------------------------------

    def change(self, key: str, value: str) -> ConfigurationStatus:
        """ChangeConfiguration semantics; stores the value when Accepted (or pending on RebootRequired)."""
        spec = self._specs.get(key.lower())
        if spec is None:
            return ConfigurationStatus.not_supported
        if spec.readonly or not self._valid(spec, value):
            return ConfigurationStatus.rejected
        normalised = value.strip().lower() if spec.kind == "bool" else value
        if spec.name.lower() in self._reboot_keys:
            self._pending[spec.name.lower()] = normalised
            return ConfigurationStatus.reboot_required
        self._values[spec.name.lower()] = normalised
        return ConfigurationStatus.accepted

    def set_internal(self, key: str, value: str) -> None:
        """The charger changing its own key (e.g. HeartbeatInterval from BootNotification.conf)."""
        spec = self._specs.get(key.lower())
        if spec is not None:
            self._values[spec.name.lower()] = value

    def _valid(self, spec: KeySpec, value: str) -> bool:
        if len(value) > spec.max_length:
            return False
        if spec.kind == "int":
            return value.strip().isdigit()
        if spec.kind == "bool":
            return value.strip().lower() in ("true", "false")
        if spec.kind == "measurands":
            parts = [part.strip().lower() for part in value.split(",") if part.strip()]
            return len(parts) <= self.get_int("MeterValuesSampledDataMaxLength", 5) and all(
                part in _MEASURANDS for part in parts
            )
        if spec.kind == "json":
            try:
                return isinstance(json.loads(value), dict)
            except ValueError:
                return False
        if spec.kind == "key":
            return 16 <= len(value) <= 40
        if spec.kind == "profile":
            current = self.get_int(spec.name)
            return value.strip().isdigit() and current <= int(value) <= 3
        return True

    def apply_pending(self) -> None:
        """At reboot: RebootRequired values take effect."""
        self._values.update(self._pending)
        self._pending.clear()

    def factory_reset(self) -> None:
        self._values = {name: spec.default for name, spec in self._specs.items()}
        self._pending.clear()

    @property
    def pending(self) -> dict[str, str]:
        return dict(self._pending)
