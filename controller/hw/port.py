"""ChargerPort: the typed calls the controller makes to one charger (central system -> charge point).

Role: the only way the runtime talks to a charger. Each method builds a payload that is valid against
the official OCPP 1.6 JSON schema of its action (proved in tests, never checked per message), sends it
through a ``CallTransport`` (an ``OcppConnection``, or a fake in tests) and turns the reply into a typed
result. Boundary: no policy. It does not decide what to send or when to retry.

Errors (see ``controller.hw.errors``): a CALLERROR raises ``ChargerRejected(code=...)``; offline, a
timeout or a lost connection raise ``ChargerUnavailable``. Refusal statuses (Rejected, NotSupported,
VersionMismatch, Occupied...) are returned as values: the caller decides (``ensure_status`` turns one
into ``ChargerRejected``). A reply without a usable status raises ``ChargerRejected(status=<raw>)``.

Replies that break the schema harmlessly are used anyway and logged once per station, action and kind
of problem: unknown extra fields, an enum in the wrong case, numbers or booleans sent as strings,
``readonly`` missing. ``get_configuration`` copes with chargers that limit the keys per request
(GetConfigurationMaxKeys): it chunks, learns the limit from an OccurenceConstraintViolation or from a
truncated answer, and re-asks for what was left out.

Driver-facing methods (reservations, remote start/stop, unlock) default to ``priority=True``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from ocpp.v16.enums import (
    AuthorizationStatus,
    AvailabilityStatus,
    AvailabilityType,
    CancelReservationStatus,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferStatus,
    MessageTrigger,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
    UpdateType,
)

from controller.hw import ocppj
from controller.hw.errors import ChargerRejected
from controller.hw.ocppj import ErrorCode

log = logging.getLogger("chargeops.hw.port")

E = TypeVar("E", bound=StrEnum)

TRIGGERABLE = frozenset(
    {
        MessageTrigger.boot_notification,
        MessageTrigger.diagnostics_status_notification,
        MessageTrigger.firmware_status_notification,
        MessageTrigger.heartbeat,
        MessageTrigger.meter_values,
        MessageTrigger.status_notification,
    }
)


class CallTransport(Protocol):
    """What the port needs of a connection; ``OcppConnection`` is one, a recording fake is another."""

    @property
    def station_id(self) -> str: ...

    async def call(
        self,
        action: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | None = None,
        priority: bool = False,
        sensitive: bool = False,
    ) -> dict[str, Any]: ...


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ConfigurationEntry:
    key: str  # as the charger spells it
    value: str | None  # None: the charger reported no value
    readonly: bool


@dataclass(frozen=True, slots=True)
class ConfigurationReport:
    """GetConfiguration's answer: known keys (case-insensitive lookup) and the unknown ones."""

    entries: tuple[ConfigurationEntry, ...] = ()
    unknown: tuple[str, ...] = ()
    _by_key: Mapping[str, ConfigurationEntry] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, entries: Sequence[ConfigurationEntry], unknown: Sequence[str]) -> ConfigurationReport:
        by_key = {entry.key.lower(): entry for entry in entries}
        return cls(tuple(by_key.values()), tuple(dict.fromkeys(unknown)), by_key)

    def get(self, key: str) -> ConfigurationEntry | None:
        return self._by_key.get(key.lower())

    def value(self, key: str) -> str | None:
        entry = self.get(key)
        return None if entry is None else entry.value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._by_key


@dataclass(frozen=True, slots=True)
class IdTagInfo:
    status: AuthorizationStatus
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value}
        if self.expiry_date is not None:
            out["expiryDate"] = ocppj.format_datetime(self.expiry_date)
        if self.parent_id_tag is not None:
            out["parentIdTag"] = _ci_string(self.parent_id_tag, 20, "parentIdTag")
        return out


@dataclass(frozen=True, slots=True)
class LocalListEntry:
    """One local-list entry; ``info=None`` deletes the idTag in a Differential update."""

    id_tag: str
    info: IdTagInfo | None = None

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"idTag": _ci_string(self.id_tag, 20, "idTag")}
        if self.info is not None:
            out["idTagInfo"] = self.info.to_payload()
        return out


@dataclass(frozen=True, slots=True)
class DataTransferResult:
    status: DataTransferStatus
    data: str | None = None


def ensure_status(station: str, action: str, status: StrEnum, *accepted: StrEnum) -> None:
    """Raise ``ChargerRejected(status=...)`` unless ``status`` is one of ``accepted``."""
    if status not in accepted:
        raise ChargerRejected(station, action, status=status.value)


def _ci_string(value: str, limit: int, name: str) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(f"{name} must be a string of at most {limit} characters")
    return value


class ToleranceLog:
    """Logs each kind of harmless schema breach once per station and action."""

    def __init__(self, limit: int = 10_000) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._limit = limit

    def note(self, station: str, action: str, kind: str, detail: str) -> None:
        key = (station, action, kind)
        if key in self._seen:
            return
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen.add(key)
        log.warning("[%s] %s reply tolerated (%s): %s", station, action, kind, detail)


SHARED_TOLERANCE_LOG = ToleranceLog()

_REPLY_FIELDS: dict[str, frozenset[str]] = {
    "GetConfiguration": frozenset({"configurationKey", "unknownKey"}),
    "GetLocalListVersion": frozenset({"listVersion"}),
    "DataTransfer": frozenset({"status", "data"}),
}
_STATUS_ONLY = frozenset({"status"})


class ChargerPort:
    """Typed calls to one charger over a ``CallTransport``."""

    def __init__(
        self,
        transport: CallTransport,
        *,
        timeout: float = 30.0,
        max_keys: int | None = None,
        tolerance: ToleranceLog | None = None,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.max_keys = max_keys  # GetConfigurationMaxKeys, when known or learned
        self._tolerance = tolerance or SHARED_TOLERANCE_LOG

    @property
    def station_id(self) -> str:
        return self.transport.station_id

    # ------------------------------------------------------------------------------------ plumbing

    async def _call(
        self,
        action: str,
        payload: Mapping[str, Any],
        *,
        priority: bool,
        timeout: float | None,
        sensitive: bool = False,
    ) -> dict[str, Any]:
        reply = await self.transport.call(
            action,
            payload,
            timeout=self.timeout if timeout is None else timeout,
            priority=priority,
            sensitive=sensitive,
        )
        return self._checked(action, reply)

    def _checked(self, action: str, reply: object) -> dict[str, Any]:
        """A reply payload as `_call` returns it: an object, extra fields noted."""
        if not isinstance(reply, dict):  # a fake transport could; OcppConnection never does
            raise ChargerRejected(self.station_id, action, detail="reply payload is not an object")
        allowed = _REPLY_FIELDS.get(action, _STATUS_ONLY)
        if not reply.keys() <= allowed:  # (a subset test: no set made for the usual, well-formed reply)
            self._note(action, "extra fields", f"ignored {sorted(set(reply) - allowed)}")
        return reply

    def _note(self, action: str, kind: str, detail: str) -> None:
        self._tolerance.note(self.station_id, action, kind, detail)

    def _enum(self, action: str, enum: type[E], raw: object, name: str = "status") -> E:
        if isinstance(raw, str):
            try:
                return enum(raw)
            except ValueError:
                folded = raw.strip().lower()
                for member in enum:
                    if member.value.lower() == folded:
                        self._note(action, f"{name} case", f"{raw!r} read as {member.value!r}")
                        return member
        raise ChargerRejected(
            self.station_id,
            action,
            status=None if raw is None else str(raw)[:50],
            detail=f"reply has no usable {name} ({raw!r})",
        )

    async def _status(
        self, action: str, enum: type[E], payload: Mapping[str, Any], priority: bool, timeout: float | None,
        sensitive: bool = False,
    ) -> E:
        reply = await self._call(action, payload, priority=priority, timeout=timeout, sensitive=sensitive)
        return self._enum(action, enum, reply.get("status"))

    # ------------------------------------------------------------------------------- configuration

    async def get_configuration(
        self,
        keys: Sequence[str] | None = None,
        *,
        chunk_size: int | None = None,
        priority: bool = False,
        timeout: float | None = None,
    ) -> ConfigurationReport:
        """Read configuration keys (all of them when ``keys`` is None or empty)."""
        if not keys:
            reply = await self._call("GetConfiguration", {}, priority=priority, timeout=timeout)
            all_entries, all_unknown = self._parse_configuration(reply)
            report = ConfigurationReport.build(all_entries, all_unknown)
            self._learn_max_keys(report)
            return report
        wanted = list({_ci_string(key, 50, "configuration key").lower(): key for key in keys}.values())
        size = max(1, chunk_size or self.max_keys or len(wanted))
        work: deque[str] = deque(wanted)
        found: list[ConfigurationEntry] = []
        unknown: list[str] = []
        while work:
            chunk = [work.popleft() for _ in range(min(size, len(work)))]
            try:
                reply = self._checked("GetConfiguration", await self.transport.call(  # (`_call`, inlined)
                    "GetConfiguration", {"key": chunk}, timeout=self.timeout if timeout is None else timeout,
                    priority=priority))
            except ChargerRejected as err:
                if err.code != ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION or len(chunk) == 1:
                    raise
                learned = await self._ask_max_keys(priority, timeout)
                size = learned if learned is not None and learned < len(chunk) else max(1, len(chunk) // 2)
                self.max_keys = size
                work.extendleft(reversed(chunk))
                continue
            entries, missing_keys = self._parse_configuration(reply)
            found.extend(entries)
            unknown.extend(missing_keys)
            answered = {entry.key.lower() for entry in entries} | {key.lower() for key in missing_keys}
            left_out = [key for key in chunk if key.lower() not in answered]
            if not left_out:
                continue
            if len(left_out) < len(chunk):
                self._note("GetConfiguration", "truncated", f"answered {len(chunk) - len(left_out)} of {len(chunk)}")
                size = len(chunk) - len(left_out)
                self.max_keys = size
                work.extendleft(reversed(left_out))
            else:
                self._note("GetConfiguration", "keys left out", f"{left_out} neither known nor unknown")
                unknown.extend(left_out)
        return ConfigurationReport.build(found, unknown)

    async def _ask_max_keys(self, priority: bool, timeout: float | None) -> int | None:
        reply = await self._call(
            "GetConfiguration", {"key": ["GetConfigurationMaxKeys"]}, priority=priority, timeout=timeout
        )
        entries, _ = self._parse_configuration(reply)
        report = ConfigurationReport.build(entries, ())
        self._learn_max_keys(report)
        return self.max_keys

    def _learn_max_keys(self, report: ConfigurationReport) -> None:
        raw = report.value("GetConfigurationMaxKeys")
        if raw is not None and raw.strip().isdigit() and int(raw) > 0:
            self.max_keys = int(raw)

    def _parse_configuration(self, reply: Mapping[str, Any]) -> tuple[list[ConfigurationEntry], list[str]]:
        action = "GetConfiguration"
        entries: list[ConfigurationEntry] = []
        raw_entries = reply.get("configurationKey") or []
        if not isinstance(raw_entries, list):
            self._note(action, "configurationKey type", "not a list; ignored")
            raw_entries = []
        for item in raw_entries:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                self._note(action, "entry shape", f"entry without a key ignored: {item!r:.60}")
                continue
            extra = set(item) - {"key", "readonly", "value"}
            if extra:
                self._note(action, "entry extra fields", f"ignored {sorted(extra)}")
            entries.append(ConfigurationEntry(item["key"], self._config_value(item), self._readonly(item)))
        raw_unknown = reply.get("unknownKey") or []
        if not isinstance(raw_unknown, list):
            self._note(action, "unknownKey type", "not a list; ignored")
            raw_unknown = []
        unknown = [key for key in raw_unknown if isinstance(key, str)]
        return entries, unknown

    def _config_value(self, item: Mapping[str, Any]) -> str | None:
        value = item.get("value")
        if value is None or isinstance(value, str):
            return value
        self._note("GetConfiguration", "value type", f"{item['key']} value {type(value).__name__} read as text")
        if isinstance(value, bool):
            return "true" if value else "false"
        return ocppj.dumps(value)

    def _readonly(self, item: Mapping[str, Any]) -> bool:
        raw = item.get("readonly")
        if isinstance(raw, bool):
            return raw
        self._note("GetConfiguration", "readonly type", f"{item['key']} readonly={raw!r}")
        return isinstance(raw, str) and raw.strip().lower() == "true"

    async def change_configuration(
        self, key: str, value: str, *, priority: bool = False, timeout: float | None = None
    ) -> ConfigurationStatus:
        """Set one key. AuthorizationKey values never reach the logs."""
        payload = {"key": _ci_string(key, 50, "key"), "value": _ci_string(value, 500, "value")}
        sensitive = key.lower() == "authorizationkey"
        return await self._status("ChangeConfiguration", ConfigurationStatus, payload, priority, timeout, sensitive)

    # -------------------------------------------------------------------------------- local list

    async def get_local_list_version(self, *, priority: bool = False, timeout: float | None = None) -> int:
        """The local list's version: 0 = empty, -1 = local lists not supported."""
        action = "GetLocalListVersion"
        reply = await self._call(action, {}, priority=priority, timeout=timeout)
        raw = reply.get("listVersion")
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            self._note(action, "listVersion type", f"{raw!r} read as a number")
            return int(raw)
        raise ChargerRejected(self.station_id, action, detail=f"reply has no usable listVersion ({raw!r})")

    async def send_local_list(
        self,
        version: int,
        update_type: UpdateType,
        entries: Sequence[LocalListEntry],
        *,
        priority: bool = False,
        timeout: float | None = None,
    ) -> UpdateStatus:
        """One SendLocalList message; chunking by SendLocalListMaxLength is the caller's plan."""
        payload = {
            "listVersion": int(version),
            "updateType": UpdateType(update_type).value,
            "localAuthorizationList": [entry.to_payload() for entry in entries],
        }
        return await self._status("SendLocalList", UpdateStatus, payload, priority, timeout)

    async def clear_cache(self, *, priority: bool = False, timeout: float | None = None) -> ClearCacheStatus:
        return await self._status("ClearCache", ClearCacheStatus, {}, priority, timeout)

    # ------------------------------------------------------------------- availability, reservations

    async def change_availability(
        self, connector_id: int, type: AvailabilityType, *, priority: bool = False, timeout: float | None = None
    ) -> AvailabilityStatus:
        """Connector 0 is the whole station; Scheduled means it applies when the running session ends."""
        payload = {"connectorId": int(connector_id), "type": AvailabilityType(type).value}
        return await self._status("ChangeAvailability", AvailabilityStatus, payload, priority, timeout)

    async def reserve_now(
        self,
        connector_id: int,
        expiry_date: datetime,
        id_tag: str,
        reservation_id: int,
        *,
        parent_id_tag: str | None = None,
        priority: bool = True,
        timeout: float | None = None,
    ) -> ReservationStatus:
        payload: dict[str, Any] = {
            "connectorId": int(connector_id),
            "expiryDate": ocppj.format_datetime(expiry_date),
            "idTag": _ci_string(id_tag, 20, "idTag"),
            "reservationId": int(reservation_id),
        }
        if parent_id_tag is not None:
            payload["parentIdTag"] = _ci_string(parent_id_tag, 20, "parentIdTag")
        return await self._status("ReserveNow", ReservationStatus, payload, priority, timeout)

    async def cancel_reservation(
        self, reservation_id: int, *, priority: bool = True, timeout: float | None = None
    ) -> CancelReservationStatus:
        payload = {"reservationId": int(reservation_id)}
        return await self._status("CancelReservation", CancelReservationStatus, payload, priority, timeout)

    # ------------------------------------------------------------------------------------ the rest

    async def data_transfer(
        self,
        vendor_id: str,
        message_id: str | None = None,
        data: str | Mapping[str, Any] | None = None,
        *,
        priority: bool = False,
        timeout: float | None = None,
    ) -> DataTransferResult:
        """``data`` as a mapping is serialised with ``ocppj.dumps`` (Decimal written exactly)."""
        action = "DataTransfer"
        payload: dict[str, Any] = {"vendorId": _ci_string(vendor_id, 255, "vendorId")}
        if message_id is not None:
            payload["messageId"] = _ci_string(message_id, 50, "messageId")
        if data is not None:
            payload["data"] = data if isinstance(data, str) else ocppj.dumps(dict(data))
        reply = await self._call(action, payload, priority=priority, timeout=timeout)
        status = self._enum(action, DataTransferStatus, reply.get("status"))
        raw = reply.get("data")
        if raw is not None and not isinstance(raw, str):
            self._note(action, "data type", f"{type(raw).__name__} data read as JSON text")
            raw = ocppj.dumps(raw)
        return DataTransferResult(status, raw)

    async def trigger_message(
        self,
        requested_message: MessageTrigger,
        connector_id: int | None = None,
        *,
        priority: bool = False,
        timeout: float | None = None,
    ) -> TriggerMessageStatus:
        message = MessageTrigger(requested_message)
        if message not in TRIGGERABLE:
            raise ValueError(f"{message.value} cannot be triggered with OCPP 1.6 TriggerMessage")
        payload: dict[str, Any] = {"requestedMessage": message.value}
        if connector_id is not None:
            payload["connectorId"] = int(connector_id)
        return await self._status("TriggerMessage", TriggerMessageStatus, payload, priority, timeout)

    async def reset(self, type: ResetType, *, priority: bool = False, timeout: float | None = None) -> ResetStatus:
        return await self._status("Reset", ResetStatus, {"type": ResetType(type).value}, priority, timeout)

    async def remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        *,
        charging_profile: Mapping[str, Any] | None = None,
        priority: bool = True,
        timeout: float | None = None,
    ) -> RemoteStartStopStatus:
        payload: dict[str, Any] = {"idTag": _ci_string(id_tag, 20, "idTag")}
        if connector_id is not None:
            payload["connectorId"] = int(connector_id)
        if charging_profile is not None:
            payload["chargingProfile"] = dict(charging_profile)
        return await self._status("RemoteStartTransaction", RemoteStartStopStatus, payload, priority, timeout)

    async def remote_stop_transaction(
        self, transaction_id: int, *, priority: bool = True, timeout: float | None = None
    ) -> RemoteStartStopStatus:
        payload = {"transactionId": int(transaction_id)}
        return await self._status("RemoteStopTransaction", RemoteStartStopStatus, payload, priority, timeout)

    async def unlock_connector(
        self, connector_id: int, *, priority: bool = True, timeout: float | None = None
    ) -> UnlockStatus:
        payload = {"connectorId": int(connector_id)}
        return await self._status("UnlockConnector", UnlockStatus, payload, priority, timeout)
