"""What the central system answers to every message a 1.6 charger sends.

One `StationHandlers` per connection. Every decision follows the owner's desired state (through the
`Csms` context): registration from activation, Authorize from access groups and cards, reservations.

Transaction messages (StartTransaction, StopTransaction, MeterValues) are never refused for their
content: they are parsed leniently (`controller.transactions`), persisted with their raw frame, answered,
and anomalies are flagged for review. Re-sent messages get the stored answer (the store deduplicates on
content). If the store cannot commit, the handler raises `CloseWithoutReply`: the charger keeps the
message and sends it again later, so nothing is lost.

Handlers never await an outgoing call; follow-up work (re-observation after a boot) is scheduled.

Boundary: OCPP payload in, payload out; state changes go to the store and the session registry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from controller.authorize import IdTagInfo, decide
from controller.config.effective import BootInfo as EffBootInfo
from controller.config.effective import EffectiveStation
from controller.hw.errors import CloseWithoutReply, OcppCallError
from controller.hw.ocppj import Call, ErrorCode, format_datetime
from controller.runtime.state import DesiredHolder
from controller.store.api import Store
from controller.store.errors import StoreUnavailable
from controller.store.records import (
    BootInfo,
    ConnectorStatus,
    FrameDirection,
    MeterSample,
    RawFrame,
    ReservationStatus,
    StartRequest,
    StopRequest,
    TransactionRecord,
)
from controller.transactions import SampledValue, parse_int, parse_meter_values, parse_start, parse_stop

log = logging.getLogger("chargeops.hw.handlers")
STORE_DOWN_CLOSE_CODE = 1011


class SessionIndex(Protocol):
    """Active sessions per card, kept in memory by the central system (rebuilt from the store)."""

    def count(self, id_tag_key: str) -> int: ...

    def started(self, transaction_id: int, station: str, connector: int, id_tag_key: str) -> None: ...

    def stopped(self, transaction_id: int) -> None: ...


class SessionListener:
    """Hooks for session-level features (billing, driver price messages, reservations), called by the
    handlers. `transaction_stopped` is awaited BEFORE the StopTransaction is answered (a billing record
    must be durable first; raising `StoreUnavailable` leaves the message unanswered so the charger re-sends
    it) and is called for re-sent stops too (`duplicate=True`), so work it does must be idempotent. The
    other hooks must not block: they schedule work (outgoing calls are never awaited in a handler)."""

    async def transaction_stopped(self, identity: str, record: TransactionRecord, duplicate: bool) -> None:
        return None

    def transaction_started(self, identity: str, record: TransactionRecord) -> None:
        return None

    def authorized(self, identity: str, id_tag: str, info: IdTagInfo) -> None:
        return None

    def meter_values(self, identity: str, transaction_id: int | None, samples: Sequence[MeterSample]) -> None:
        return None

    def connected(self, identity: str, reason: str) -> None:
        """A charger connected ("connect") or booted ("boot"): e.g. re-send what 1.6 cannot read back."""
        return None

    def status_changed(self, identity: str, status: ConnectorStatus) -> None:
        """A StatusNotification was recorded (e.g. Available after Finishing: the cable is out)."""
        return None


@dataclasses.dataclass
class Csms:
    """What handlers need of the central system (injected; tests build it with real parts)."""

    desired: DesiredHolder
    store: Store
    sessions: SessionIndex
    clock: Callable[[], dt.datetime]
    schedule: Callable[[str, str], None]  # (station, reason): enqueue follow-up work for the station
    known_station: Callable[[str], Awaitable[bool]]  # declared now or before (removed stations)
    listeners: list[SessionListener] = dataclasses.field(default_factory=list)


def _boot_of(payload: Mapping[str, Any]) -> BootInfo:
    def text(key: str) -> str | None:
        v = payload.get(key)
        return None if v is None else str(v)[:50]

    return BootInfo(vendor=text("chargePointVendor"), model=text("chargePointModel"),
                    serial_number=text("chargePointSerialNumber") or text("chargeBoxSerialNumber"),
                    firmware_version=text("firmwareVersion"))


class StationHandlers:
    """Incoming-call handlers of one connected station."""

    def __init__(self, identity: str, csms: Csms):
        self.identity = identity
        self.csms = csms
        self.boot: EffBootInfo | None = None

    def table(self) -> dict[str, Callable[[Call], Awaitable[Mapping[str, Any]]]]:
        return {
            "BootNotification": self.boot_notification,
            "Heartbeat": self.heartbeat,
            "StatusNotification": self.status_notification,
            "Authorize": self.authorize,
            "StartTransaction": self.start_transaction,
            "StopTransaction": self.stop_transaction,
            "MeterValues": self.meter_values,
            "DataTransfer": self.data_transfer,
            "DiagnosticsStatusNotification": self.diagnostics_status,
            "FirmwareStatusNotification": self.firmware_status,
        }

    # ------------------------------------------------------------------------------------- helpers

    def _now(self) -> dt.datetime:
        return self.csms.clock()

    def _effective(self) -> EffectiveStation | None:
        return self.csms.desired.effective(self.identity, self.boot)

    def _frame(self, call: Call) -> RawFrame:
        raw = call.raw or json.dumps([2, call.message_id, call.action, call.payload], separators=(",", ":"))
        return RawFrame(station=self.identity, direction=FrameDirection.IN, action=call.action,
                        message_id=call.message_id, text=raw, received_at=self._now())

    async def _seen(self) -> None:
        try:
            await self.csms.store.record_seen(self.identity, self._now())
        except StoreUnavailable:
            log.warning("station %s: store unavailable, last-seen not recorded", self.identity)

    async def _holders(self) -> dict[int, str]:
        """Connector -> upper-case idTag of the reservation holding it (accepted reservations)."""
        recs = await self.csms.store.list_reservations(
            station=self.identity, statuses=[ReservationStatus.ACCEPTED, ReservationStatus.REQUESTED])
        now = self._now()
        return {r.connector_id: r.id_tag.upper() for r in recs if r.expiry > now}

    async def _decide(self, id_tag: str, connector_id: int | None, *, reservations: bool = True) -> IdTagInfo:
        desired = self.csms.desired.desired
        eff = self._effective()
        if desired is None:
            return IdTagInfo("Invalid", reason="no desired state loaded")
        tz = _zone(desired.owner.timezone)
        return decide(desired, eff, id_tag, self._now(), connector_id=connector_id,
                      active_sessions=self.csms.sessions.count(id_tag.upper()),
                      reservations=await self._holders() if reservations else None, tz=tz)

    # ------------------------------------------------------------------------------------ handlers

    async def boot_notification(self, call: Call) -> Mapping[str, Any]:
        p = call.payload
        if not isinstance(p.get("chargePointVendor"), str) or not isinstance(p.get("chargePointModel"), str):
            raise OcppCallError(ErrorCode.FORMATION_VIOLATION.value,
                                "chargePointVendor and chargePointModel are required")
        info = _boot_of(p)
        self.boot = EffBootInfo(info.vendor or "", info.model or "", info.firmware_version or "")
        eff = self._effective()
        interval = eff.heartbeat_interval if eff is not None else 300
        status = "Accepted"  # declared (activated or not) and removed stations alike: queued messages drain
        try:
            await self.csms.store.record_boot(self.identity, info, status, self._now())
        except StoreUnavailable:
            log.warning("station %s: store unavailable, boot not recorded", self.identity)
        log.info("station %s booted (%s %s, firmware %s)%s", self.identity, info.vendor, info.model,
                 info.firmware_version, "" if eff and eff.operative else " - not activated: kept inoperative")
        self.csms.schedule(self.identity, "boot")
        return {"status": status, "currentTime": format_datetime(self._now()), "interval": interval}

    async def heartbeat(self, call: Call) -> Mapping[str, Any]:
        await self._seen()
        return {"currentTime": format_datetime(self._now())}

    async def status_notification(self, call: Call) -> Mapping[str, Any]:
        p = call.payload
        connector = parse_int(p.get("connectorId"))
        status = p.get("status")
        if connector is None or connector < 0 or not isinstance(status, str):
            raise OcppCallError(ErrorCode.FORMATION_VIOLATION.value, "connectorId and status are required")
        rec = ConnectorStatus(
            connector_id=connector, status=status, error_code=_opt_text(p.get("errorCode")),
            info=_opt_text(p.get("info")), timestamp=_opt_text(p.get("timestamp")), received_at=self._now(),
            vendor_error_code=_opt_text(p.get("vendorErrorCode")))
        try:
            await self.csms.store.record_connector_status(self.identity, rec)
        except StoreUnavailable:
            log.warning("station %s: store unavailable, status of connector %d not recorded", self.identity,
                        connector)
        for listener in self.csms.listeners:
            listener.status_changed(self.identity, rec)
        self.csms.schedule(self.identity, "status")
        return {}

    async def authorize(self, call: Call) -> Mapping[str, Any]:
        id_tag = call.payload.get("idTag")
        if not isinstance(id_tag, str) or not id_tag:
            raise OcppCallError(ErrorCode.FORMATION_VIOLATION.value, "idTag is required")
        info = await self._decide(id_tag, None)
        if info.status != "Accepted":
            log.info("station %s: Authorize %s -> %s (%s)", self.identity, _mask(id_tag), info.status, info.reason)
        for listener in self.csms.listeners:
            listener.authorized(self.identity, id_tag, info)
        return {"idTagInfo": info.as_payload()}

    async def start_transaction(self, call: Call) -> Mapping[str, Any]:
        now = self._now()
        start = parse_start(call.payload, now)
        info = await self._decide(start.id_tag, start.connector_id) if start.id_tag else IdTagInfo("Invalid")
        anomalies = list(start.anomalies)
        if info.status != "Accepted":
            anomalies.append(f"started although {info.status}: {info.reason}")  # offline start: record, flag
        desired = self.csms.desired.desired
        req = StartRequest(
            station=self.identity, connector_id=start.connector_id, id_tag=start.id_tag,
            meter_start=start.meter_start, timestamp=_opt_text(call.payload.get("timestamp")) or "",
            reservation_id=start.reservation_id, parent_id_tag=info.parent_id_tag,
            id_tag_info=json.dumps(info.as_payload(), separators=(",", ":")), anomalies=tuple(anomalies),
            tariff_version=self._tariff_version(start.connector_id),
            git_revision=desired.revision if desired else None, frame=self._frame(call))
        try:
            result = await self.csms.store.start_transaction(req)
            if start.reservation_id is not None:
                await self._consume_reservation(start.reservation_id, start.id_tag)
        except StoreUnavailable as exc:
            raise CloseWithoutReply("store unavailable", STORE_DOWN_CLOSE_CODE) from exc
        if result.created:
            self.csms.sessions.started(result.transaction_id, self.identity, start.connector_id,
                                       start.id_tag.upper())
            stored_info = info.as_payload()
            if self.csms.listeners:  # (the store returns the record it wrote: no read before the answer)
                record = result.record or await self.csms.store.get_transaction(result.transaction_id)
                if record is not None:
                    for listener in self.csms.listeners:
                        listener.transaction_started(self.identity, record)
        else:
            rec = result.record or await self.csms.store.get_transaction(result.transaction_id)
            stored_info = json.loads(rec.start_id_tag_info) if rec and rec.start_id_tag_info else info.as_payload()
        return {"transactionId": result.transaction_id, "idTagInfo": stored_info}

    def _tariff_version(self, connector: int) -> str | None:
        desired = self.csms.desired.desired
        eff = self._effective()
        if desired is None or eff is None:
            return None
        evse = next((e for e in eff.evses if e.id == connector), None)
        name = evse.tariff if evse else eff.tariff
        return f"{name}@{desired.revision}" if name else None

    async def _consume_reservation(self, reservation_id: int, id_tag: str) -> None:
        rec = await self.csms.store.get_reservation(reservation_id)
        if rec is not None and rec.station.upper() == self.identity.upper() \
                and rec.id_tag.upper() == id_tag.upper() and rec.status == ReservationStatus.ACCEPTED:
            await self.csms.store.update_reservation(reservation_id, ReservationStatus.USED)

    async def stop_transaction(self, call: Call) -> Mapping[str, Any]:
        now = self._now()
        stop = parse_stop(call.payload, now)
        samples = tuple(_sample(self.identity, 0, stop.transaction_id, s, now) for s in stop.samples)
        info: IdTagInfo | None = None
        if stop.id_tag:  # the card's standing; a reservation of an EVSE for later is no reason to refuse a stop
            info = await self._decide(stop.id_tag, None, reservations=False)  # (and no read before the answer)
            if info.status == "ConcurrentTx":  # the stopping session itself is counted: that is fine
                info = IdTagInfo("Accepted", info.expiry_date, info.parent_id_tag)
        req = StopRequest(
            station=self.identity, transaction_id=stop.transaction_id if stop.transaction_id is not None else -1,
            meter_stop=stop.meter_stop, timestamp=_opt_text(call.payload.get("timestamp")) or "",
            reason=stop.reason, id_tag=stop.id_tag,
            id_tag_info=json.dumps(info.as_payload(), separators=(",", ":")) if info else None,
            anomalies=stop.anomalies, meter_values=samples, frame=self._frame(call))
        try:
            result = await self.csms.store.stop_transaction(req)
            for listener in self.csms.listeners:  # e.g. the billing record, durable before the answer
                await listener.transaction_stopped(self.identity, result.transaction, result.duplicate)
        except StoreUnavailable as exc:
            raise CloseWithoutReply("store unavailable", STORE_DOWN_CLOSE_CODE) from exc
        self.csms.sessions.stopped(result.transaction.id)
        if result.orphan:
            log.warning("station %s: StopTransaction for unknown transaction %s kept as orphan record %d",
                        self.identity, stop.transaction_id, result.transaction.id)
        stored = result.transaction.stop_id_tag_info
        if stored:
            return {"idTagInfo": json.loads(stored)}
        return {"idTagInfo": info.as_payload()} if info else {}

    async def meter_values(self, call: Call) -> Mapping[str, Any]:
        now = self._now()
        msg = parse_meter_values(call.payload)
        connector = msg.connector_id if msg.connector_id is not None else 0
        samples = [_sample(self.identity, connector, msg.transaction_id, s, now) for s in msg.samples]
        try:
            await self.csms.store.add_meter_values(samples, frame=self._frame(call))
        except StoreUnavailable as exc:
            raise CloseWithoutReply("store unavailable", STORE_DOWN_CLOSE_CODE) from exc
        if msg.anomalies and msg.transaction_id is not None:
            await self.csms.store.flag_transaction(msg.transaction_id, msg.anomalies)
        for listener in self.csms.listeners:
            listener.meter_values(self.identity, msg.transaction_id, samples)
        return {}

    async def data_transfer(self, call: Call) -> Mapping[str, Any]:
        vendor = call.payload.get("vendorId")
        if not isinstance(vendor, str):
            raise OcppCallError(ErrorCode.FORMATION_VIOLATION.value, "vendorId is required")
        log.info("station %s: DataTransfer from vendor %s (messageId %s) not handled", self.identity, vendor,
                 call.payload.get("messageId"))
        return {"status": "UnknownVendorId"}

    async def diagnostics_status(self, call: Call) -> Mapping[str, Any]:
        await self._note("DiagnosticsStatusNotification", call.payload.get("status"))
        return {}

    async def firmware_status(self, call: Call) -> Mapping[str, Any]:
        await self._note("FirmwareStatusNotification", call.payload.get("status"))
        return {}

    async def _note(self, action: str, status: object) -> None:
        from controller.store.records import AuditEntry

        try:
            await self.csms.store.audit(AuditEntry(action=action, at=self._now(), station=self.identity,
                                                   detail={"status": str(status)}))
        except StoreUnavailable:
            log.warning("station %s: store unavailable, %s not recorded", self.identity, action)


def _opt_text(v: object) -> str | None:
    return None if v is None else str(v)


def _mask(id_tag: str) -> str:
    from controller.config.diagnostics import mask_id_tag

    return mask_id_tag(id_tag)


def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _sample(station: str, connector: int, tx: int | None, s: SampledValue, now: dt.datetime) -> MeterSample:
    return MeterSample(
        station=station, connector_id=connector, transaction_id=tx,
        timestamp=s.timestamp.isoformat() if s.timestamp else "", value=s.raw_value, received_at=now,
        measurand=s.measurand, phase=s.phase, unit=s.unit, context=s.context, location=s.location,
        format="SignedData" if s.signed else None, signed_data=s.raw_value if s.signed else None)
