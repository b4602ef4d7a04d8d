"""The desired state: frozen, typed dataclasses, one per configuration kind.

Built only by `controller.config.build` from schema-valid documents; nothing downstream sees raw dicts.
Field names are the schema's camelCase names in snake_case (a test keeps the two in line). Money and
percentages are `Decimal`; idTags keep the owner's spelling and are looked up by their upper-case form.

Every object keeps `src` (file and document index) so later checks can point at the line.

Boundary: pure data and small derived lookups; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property

Money = Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class Src:
    """Where a document came from: file display name and document index in that file."""

    file: str
    doc: int


@dataclasses.dataclass(frozen=True, slots=True)
class SecretRef:
    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"


@dataclasses.dataclass(frozen=True, slots=True)
class Access:
    mode: str  # "public" | "restricted"
    groups: tuple[str, ...] = ()

    @property
    def restricted(self) -> bool:
        return self.mode == "restricted"


@dataclasses.dataclass(frozen=True, slots=True)
class TimeRange:
    days: tuple[str, ...]
    start: str
    end: str


@dataclasses.dataclass(frozen=True, slots=True)
class Maintenance:
    reboot_windows: tuple[TimeRange, ...] | None = None
    max_reboot_deferral_hours: int | None = None
    reboot_during_sessions: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StationSettings:
    """Inheritable settings; None means 'not set here' (inherit)."""

    tariff: str | None = None
    access: Access | None = None
    reservation_policy: str | None = None
    availability: str | None = None
    offline_authorization: bool | None = None
    security_profile: int | None = None
    ocpp_configuration: Mapping[str, str] | None = None  # key as written -> value as text
    vendor_configuration: Mapping[str, str] | None = None
    drift_warn_only: tuple[str, ...] | None = None
    maintenance: Maintenance | None = None


NO_SETTINGS = StationSettings()  # what a document that sets nothing builds to (shared: see effective._is_empty)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    name: str
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Billing:
    enabled: bool = False
    payout_account_ref: str | None = None
    platform_fee_percent: Decimal = Decimal(0)
    prices_include_tax: bool = True
    tax_rate_percent: Decimal = Decimal(0)


@dataclasses.dataclass(frozen=True, slots=True)
class DataRetention:
    meter_values_days: int = 90
    personal_data_days: int = 400


@dataclasses.dataclass(frozen=True, slots=True)
class Rollout:
    waves: tuple[int, ...] = (10, 100)
    failure_threshold_percent: Decimal = Decimal(20)
    min_stations_for_waves: int = 10


@dataclasses.dataclass(frozen=True, slots=True)
class Safety:
    max_removal_percent: Decimal = Decimal(20)


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    name: str
    display_name: str
    timezone: str
    country: str
    currency: str
    ocpi_country_code: str
    ocpi_party_id: str
    plans: tuple[Plan, ...]
    billing: Billing
    data_retention: DataRetention
    rollout: Rollout
    safety: Safety
    defaults: StationSettings
    src: Src


@dataclasses.dataclass(frozen=True, slots=True)
class Plug:
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_power_kw: Decimal | None = None

    @property
    def power_kw(self) -> Decimal:
        """Declared max power, or derived from voltage x amperage x phases."""
        if self.max_power_kw is not None:
            return self.max_power_kw
        phases = {"AC_3_PHASE": 3, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2}.get(self.power_type, 1)
        return Decimal(self.max_voltage * self.max_amperage * phases) / 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Evse:
    id: int
    plugs: tuple[Plug, ...]
    tariff: str | None = None
    access: Access | None = None
    availability: str | None = None
    reservation_policy: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Address:
    street: str
    city: str
    country: str
    postal_code: str | None = None
    state: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Coordinates:
    latitude: float
    longitude: float


@dataclasses.dataclass(frozen=True, slots=True)
class OpeningHours:
    always_open: bool = True
    regular: tuple[TimeRange, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Activation:
    plan: str
    activated: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Station:
    name: str
    identity: str
    evses: tuple[Evse, ...]
    settings: StationSettings
    src: Src
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    display_name: str | None = None
    site: str | None = None
    address: Address | None = None
    coordinates: Coordinates | None = None
    timezone: str | None = None
    opening_hours: OpeningHours | None = None
    activation: Activation | None = None
    visibility: str = "hidden"
    publish_allowed_to: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    authorization_key: SecretRef | None = None

    @property
    def activated(self) -> bool:
        return self.activation is not None and self.activation.activated


@dataclasses.dataclass(frozen=True, slots=True)
class BootSelector:
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StationProfile:
    name: str
    priority: int
    settings: StationSettings
    src: Src
    names: tuple[str, ...] | None = None
    labels: Mapping[str, str] | None = None
    boot: BootSelector | None = None
    has_selector: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class IdleFee:
    per_hour: Money
    grace_minutes: int = 0
    until_unplug: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class PriceComponents:
    """Prices; None = not set (inside a window: keep the base price; elsewhere: 0)."""

    session_fee: Money | None = None
    per_kwh: Money | None = None
    per_hour: Money | None = None
    idle: IdleFee | None = None

    def is_free(self) -> bool:
        parts = (self.session_fee, self.per_kwh, self.per_hour, self.idle.per_hour if self.idle else None)
        return all(p is None or p == 0 for p in parts)

    def over(self, base: PriceComponents) -> PriceComponents:
        """These prices, with parts left out taken from `base`."""
        return PriceComponents(
            session_fee=self.session_fee if self.session_fee is not None else base.session_fee,
            per_kwh=self.per_kwh if self.per_kwh is not None else base.per_kwh,
            per_hour=self.per_hour if self.per_hour is not None else base.per_hour,
            idle=self.idle if self.idle is not None else base.idle,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class TariffWindow:
    name: str
    days: tuple[str, ...]
    start: str
    end: str
    price: PriceComponents


@dataclasses.dataclass(frozen=True, slots=True)
class GroupPrice:
    group: str
    free: bool = False
    price: PriceComponents = PriceComponents()


@dataclasses.dataclass(frozen=True, slots=True)
class Tariff:
    name: str
    currency: str
    price: PriceComponents
    src: Src
    display_text: str | None = None
    display_text_offline: str | None = None
    tax_rate_percent: Decimal | None = None
    min_price: Money | None = None
    max_price: Money | None = None
    windows: tuple[TariffWindow, ...] = ()
    group_prices: tuple[GroupPrice, ...] = ()

    def is_paid(self) -> bool:
        if not self.price.is_free() or (self.min_price or 0) > 0:
            return True
        if any(not w.price.is_free() for w in self.windows):
            return True
        return any(not g.free and not g.price.is_free() for g in self.group_prices)


@dataclasses.dataclass(frozen=True, slots=True)
class Card:
    id_tag: str
    driver: str
    group: str
    src: Src
    valid_until: dt.date | None = None
    blocked: bool = False

    @property
    def key(self) -> str:
        """Canonical form used for matching (OCPP idTags are case-insensitive)."""
        return self.id_tag.upper()


@dataclasses.dataclass(frozen=True, slots=True)
class AccessGroup:
    name: str
    includes: tuple[str, ...]
    src: Src
    max_concurrent_sessions: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class ReservationPolicy:
    name: str
    reservable: bool
    src: Src
    walk_ins: bool = False
    fee: Money = Decimal(0)
    allowed_groups: tuple[str, ...] = ()
    max_duration_minutes: int = 60
    grace_minutes: int = 15
    no_show_fee: Money = Decimal(0)
    buffer_minutes: int = 10

    @property
    def reservation_only(self) -> bool:
        """Usable only with a reservation (the FAQ rule), unless walk-ins are allowed."""
        return self.reservable and not self.walk_ins


@dataclasses.dataclass(frozen=True)
class DesiredState:
    """Everything the owner declared, validated. `revision` is the git SHA (or content hash) it came from."""

    owner: Owner
    stations: Mapping[str, Station]
    profiles: Mapping[str, StationProfile]
    tariffs: Mapping[str, Tariff]
    groups: Mapping[str, AccessGroup]
    cards: Mapping[str, Card]  # upper-case idTag -> card
    reservation_policies: Mapping[str, ReservationPolicy]
    revision: str = ""

    @cached_property
    def stations_by_identity(self) -> Mapping[str, Station]:
        return {s.identity.upper(): s for s in self.stations.values()}

    def station_for_identity(self, identity: str) -> Station | None:
        return self.stations_by_identity.get(identity.upper())

    @cached_property
    def group_members(self) -> Mapping[str, frozenset[str]]:
        """Group name -> upper-case idTags of its cards and of the groups it includes (transitively)."""
        direct: dict[str, set[str]] = {g: set() for g in self.groups}
        for key, card in self.cards.items():
            direct.setdefault(card.group, set()).add(key)
        memo: dict[str, frozenset[str]] = {}

        def members(g: str, stack: frozenset[str]) -> frozenset[str]:
            if g in memo:
                return memo[g]
            out = set(direct.get(g, ()))
            grp = self.groups.get(g)
            if grp is not None:
                for inc in grp.includes:
                    if inc not in stack:
                        out |= members(inc, stack | {inc})
            memo[g] = frozenset(out)
            return memo[g]

        return {g: members(g, frozenset({g})) for g in direct}

    @cached_property
    def card_groups(self) -> Mapping[str, frozenset[str]]:
        """Upper-case idTag -> every group it belongs to (directly or through includes)."""
        out: dict[str, set[str]] = {}
        for g, keys in self.group_members.items():
            for k in keys:
                out.setdefault(k, set()).add(g)
        return {k: frozenset(v) for k, v in out.items()}

    def card(self, id_tag: str) -> Card | None:
        return self.cards.get(id_tag.upper())


@dataclasses.dataclass(frozen=True, slots=True)
class CardList:
    name: str
    group: str
    src: Src
