"""Charger models and fault flags for the simulator.

Role: the static description of a simulated charger (what the hardware is and supports) and the mutable
switches tests flip to make it misbehave. Boundary: plain data; the behaviour lives in ``sim.charger``
and ``sim.handlers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CORE_PROFILES = ("Core", "FirmwareManagement", "RemoteTrigger")


@dataclass(frozen=True, slots=True)
class ChargerModel:
    """What a charger is and what it supports (all of it read-only to the central system)."""

    vendor: str = "ChargeOps"
    model: str = "SimCharger"
    firmware: str = "1.6.0-sim"
    connectors: int = 2
    max_power_w: int = 11_000
    local_list_max_length: int = 100  # LocalAuthListMaxLength; 0 = no local list support
    send_local_list_max_length: int = 20  # SendLocalListMaxLength
    get_configuration_max_keys: int = 20  # GetConfigurationMaxKeys
    get_configuration_overflow: Literal["error", "truncate"] = "error"  # asked for more keys than that
    reservations: bool = True
    reserve_connector_zero: bool = False
    authorization_cache: bool = True
    california_pricing: bool = False  # CustomDisplayCostAndPrice + DefaultPrice + costmsg DataTransfer
    reboot_required_keys: frozenset[str] = field(default_factory=lambda: frozenset({"WebSocketPingInterval"}))
    trailing_slash: bool = False  # connect to .../identity/ instead of .../identity
    basic_auth_raw_key: bool = False  # HTTP Basic password = the AuthorizationKey's bytes, not its hex text

    @property
    def supports_local_list(self) -> bool:
        return self.local_list_max_length > 0

    @property
    def feature_profiles(self) -> tuple[str, ...]:
        profiles = list(CORE_PROFILES)
        if self.supports_local_list:
            profiles.append("LocalAuthListManagement")
        if self.reservations:
            profiles.append("Reservation")
        return tuple(profiles)


MODELS: dict[str, ChargerModel] = {
    "basic": ChargerModel(),
    "california": ChargerModel(model="SimCharger CA", california_pricing=True),
    "minimal": ChargerModel(
        model="SimCharger Mini",
        connectors=1,
        local_list_max_length=0,
        send_local_list_max_length=0,
        reservations=False,
        authorization_cache=False,
        get_configuration_max_keys=5,
        get_configuration_overflow="truncate",
    ),
}


@dataclass(slots=True)
class Faults:
    """Misbehaviour switches; flip them at any time. Actions (drop, garbage...) are charger methods."""

    answer_delay: float = 0.0  # seconds to sit on every incoming call before answering
    late_once: dict[str, float] = field(default_factory=dict)  # action -> answer its next call this late (s)
    reject_calls: bool = False  # answer every incoming call with its refusal status
    not_supported: bool = False  # answer every incoming call with a NotSupported CALLERROR
    lose_settings_on_reboot: bool = False  # factory defaults after a reboot (config, list, cache, key)
    clock_skew: float = 0.0  # seconds added to every timestamp the charger writes
    no_subprotocol: bool = False  # offer no websocket subprotocol (old firmware)
