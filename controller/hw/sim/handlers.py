"""How a simulated charger answers the central system's calls (the charge point side of 1.6).

Role: one handler per central-system -> charge-point action, plugged into an ``OcppConnection``. Each
handler records the call, applies the fault switches (answer late, refuse, NotSupported), checks the
payload like strict firmware (ProtocolError for a missing field, TypeConstraintViolation for a wrong
type, PropertyConstraintViolation for a bad value) and answers. Anything that needs a call back to the
central system (a triggered message, a remote start with AuthorizeRemoteTxRequests, a reset) is
scheduled, never awaited, and runs after the answer went out. Boundary: translation only; state rules are
in ``sim.config``, ``sim.auth`` and ``sim.sessions``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ocpp.v16.enums import (
    AvailabilityType,
    ConfigurationStatus,
    DataTransferStatus,
    MessageTrigger,
    ResetType,
    UpdateStatus,
)

from controller.hw.connection import Handler
from controller.hw.errors import ChargerRejected, ChargerUnavailable, OcppCallError
from controller.hw.ocppj import Call, ErrorCode, parse_datetime
from controller.hw.sim.connectors import DisplayMessage, ReceivedCall

if TYPE_CHECKING:
    from controller.hw.sim.charger import SimulatedCharger

COSTMSG_VENDOR = "org.openchargealliance.costmsg"
COSTMSG_MESSAGES = ("SetUserPrice", "RunningCost", "FinalCost")
REJECTED: dict[str, Any] = {"status": "Rejected"}
REFUSALS: dict[str, dict[str, Any]] = {
    "ChangeConfiguration": REJECTED,
    "SendLocalList": {"status": UpdateStatus.failed.value},
    "ClearCache": REJECTED,
    "ChangeAvailability": REJECTED,
    "ReserveNow": REJECTED,
    "CancelReservation": REJECTED,
    "DataTransfer": REJECTED,
    "TriggerMessage": REJECTED,
    "Reset": REJECTED,
    "RemoteStartTransaction": REJECTED,
    "RemoteStopTransaction": REJECTED,
    "UnlockConnector": {"status": "UnlockFailed"},
}
NOT_IMPLEMENTED = (
    "ClearChargingProfile",
    "GetCompositeSchedule",
    "SetChargingProfile",
    "GetDiagnostics",
    "UpdateFirmware",
    "ExtendedTriggerMessage",
    "CertificateSigned",
    "InstallCertificate",
    "DeleteCertificate",
    "GetInstalledCertificateIds",
    "GetLog",
    "SignedUpdateFirmware",
)

Body = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _field(payload: Mapping[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = payload.get(name)
    if value is None:
        if required:
            raise OcppCallError(ErrorCode.PROTOCOL_ERROR, f"{name} is required")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise OcppCallError(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{name} must be {kind.__name__}")
    return value


def _one_of(value: str, allowed: type[Any], name: str) -> str:
    if value not in {member.value for member in allowed}:
        raise OcppCallError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"{name} {value!r} is not allowed")
    return value


def build_handlers(cp: SimulatedCharger) -> dict[str, Handler]:
    """The handler table for ``OcppConnection``: every 1.6 charge-point action, recorded."""
    answers = _Answers(cp)
    table: dict[str, Body] = {
        "GetConfiguration": answers.get_configuration,
        "ChangeConfiguration": answers.change_configuration,
        "GetLocalListVersion": answers.get_local_list_version,
        "SendLocalList": answers.send_local_list,
        "ClearCache": answers.clear_cache,
        "ChangeAvailability": answers.change_availability,
        "ReserveNow": answers.reserve_now,
        "CancelReservation": answers.cancel_reservation,
        "DataTransfer": answers.data_transfer,
        "TriggerMessage": answers.trigger_message,
        "Reset": answers.reset,
        "RemoteStartTransaction": answers.remote_start,
        "RemoteStopTransaction": answers.remote_stop,
        "UnlockConnector": answers.unlock_connector,
    }
    handlers = {action: _recorded(cp, action, body) for action, body in table.items()}
    for action in NOT_IMPLEMENTED:
        handlers[action] = _recorded(cp, action, _not_implemented(action))
    return handlers


def _not_implemented(action: str) -> Body:
    async def body(payload: dict[str, Any]) -> dict[str, Any]:
        raise OcppCallError(ErrorCode.NOT_IMPLEMENTED, f"{action} is not implemented")

    return body


def _recorded(cp: SimulatedCharger, action: str, body: Body) -> Handler:
    async def handler(call: Call) -> Mapping[str, Any]:
        cp.received.append(ReceivedCall(action, call.payload, call.message_id, datetime.now(UTC)))
        faults = cp.faults
        late = faults.late_once.pop(action, 0.0)
        if late > 0:  # past the caller's timeout, this answer is as good as lost
            await asyncio.sleep(late)
        if faults.answer_delay > 0:
            await asyncio.sleep(faults.answer_delay)
        if faults.not_supported:
            raise OcppCallError(ErrorCode.NOT_SUPPORTED, f"{action} is not supported")
        if faults.reject_calls and action in REFUSALS:
            return REFUSALS[action]
        return await body(call.payload)

    return handler


class _Answers:
    def __init__(self, cp: SimulatedCharger) -> None:
        self.cp = cp

    async def get_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        keys = payload.get("key")
        if keys is not None and (not isinstance(keys, list) or not all(isinstance(k, str) for k in keys)):
            raise OcppCallError(ErrorCode.TYPE_CONSTRAINT_VIOLATION, "key must be a list of strings")
        limit = self.cp.config.get_int("GetConfigurationMaxKeys", 20)
        if keys and len(keys) > limit:
            if self.cp.model.get_configuration_overflow == "error":
                raise OcppCallError(
                    ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION, f"at most {limit} keys per request"
                )
            keys = keys[:limit]
        known, unknown = self.cp.config.report(keys or None)
        out: dict[str, Any] = {"configurationKey": known}
        if unknown:
            out["unknownKey"] = unknown
        return out

    async def change_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        key = _field(payload, "key", str)
        value = _field(payload, "value", str)
        status = self.cp.config.change(key, value)
        if status is ConfigurationStatus.accepted:
            name = key.lower()
            if name == "heartbeatinterval":
                self.cp.heartbeat_interval_changed()
            elif name == "defaultprice":
                self.cp.display.append(DisplayMessage("DefaultPrice", _json_or_text(value), self.cp.now()))
            elif name == "securityprofile":
                self.cp.spawn(self.cp.reconnect(), delay=0.05)  # reconnect with the new profile
        return {"status": status.value}

    async def get_local_list_version(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.cp.model.supports_local_list:
            return {"listVersion": -1}
        return {"listVersion": self.cp.local_list.version}

    async def send_local_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        version = _field(payload, "listVersion", int)
        update_type = _field(payload, "updateType", str)
        items = _field(payload, "localAuthorizationList", list, required=False) or []
        return {"status": self.cp.local_list.apply(version, update_type, items).value}

    async def clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not self.cp.model.authorization_cache:
            return REJECTED
        self.cp.cache.clear()
        return {"status": "Accepted"}

    async def change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector_id = _field(payload, "connectorId", int)
        kind = _one_of(_field(payload, "type", str), AvailabilityType, "type")
        status = self.cp.sessions.change_availability(connector_id, kind == AvailabilityType.operative.value)
        return {"status": status.value}

    async def reserve_now(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector_id = _field(payload, "connectorId", int)
        expiry = parse_datetime(_field(payload, "expiryDate", str))
        if expiry is None:
            raise OcppCallError(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "expiryDate is not a date-time")
        id_tag = _field(payload, "idTag", str)
        parent = _field(payload, "parentIdTag", str, required=False)
        reservation_id = _field(payload, "reservationId", int)
        status = self.cp.sessions.reserve(connector_id, expiry, id_tag, parent, reservation_id)
        return {"status": status.value}

    async def cancel_reservation(self, payload: dict[str, Any]) -> dict[str, Any]:
        done = self.cp.sessions.cancel_reservation(_field(payload, "reservationId", int))
        return {"status": "Accepted" if done else "Rejected"}

    async def data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        vendor = _field(payload, "vendorId", str)
        message = _field(payload, "messageId", str, required=False)
        data = _field(payload, "data", str, required=False)
        if vendor != COSTMSG_VENDOR or not self.cp.config.get_bool("CustomDisplayCostAndPrice"):
            return {"status": DataTransferStatus.unknown_vendor_id.value}
        if message not in COSTMSG_MESSAGES:
            return {"status": DataTransferStatus.unknown_message_id.value}
        self.cp.display.append(DisplayMessage(str(message), _json_or_text(data or ""), self.cp.now()))
        return {"status": DataTransferStatus.accepted.value}

    async def trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        requested = _field(payload, "requestedMessage", str)
        connector_id = _field(payload, "connectorId", int, required=False)
        if connector_id is not None and connector_id not in self.cp.connectors:
            return REJECTED
        if requested not in {m.value for m in MessageTrigger} or requested in (
            "LogStatusNotification",
            "SignChargePointCertificate",
        ):
            return {"status": "NotImplemented"}
        self.cp.spawn(self._triggered(requested, connector_id), delay=0.01)
        return {"status": "Accepted"}

    async def _triggered(self, requested: str, connector_id: int | None) -> None:
        cp = self.cp
        try:
            if requested == "StatusNotification":
                cp.report_statuses(changed_only=False, connector_id=connector_id)
            elif requested == "Heartbeat":
                await cp.send("Heartbeat", {})
            elif requested == "BootNotification":
                reply = await cp.send("BootNotification", cp.boot_payload())
                cp.registration = str(reply.get("status"))
            elif requested == "MeterValues":
                for connector in cp.connectors.values():
                    if connector_id not in (None, connector.connector_id) or connector.connector_id == 0:
                        continue
                    cp.sessions.advance(connector)
                    body: dict[str, Any] = {
                        "connectorId": connector.connector_id,
                        "meterValue": [cp.sessions.sample(connector, "Trigger")],
                    }
                    tx = connector.transaction
                    if tx is not None and tx.transaction_id is not None:
                        body["transactionId"] = tx.transaction_id
                    await cp.send("MeterValues", body)
            else:  # DiagnosticsStatusNotification, FirmwareStatusNotification
                await cp.send(requested, {"status": "Idle"})
        except (ChargerUnavailable, ChargerRejected):
            pass

    async def reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        kind = _one_of(_field(payload, "type", str), ResetType, "type")
        reason = "HardReset" if kind == ResetType.hard.value else "SoftReset"
        self.cp.spawn(self.cp.reboot(reason=reason), delay=0.05)
        return {"status": "Accepted"}

    async def remote_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        id_tag = _field(payload, "idTag", str)
        connector_id = _field(payload, "connectorId", int, required=False)
        return {"status": "Accepted" if self.cp.sessions.remote_start(id_tag, connector_id) else "Rejected"}

    async def remote_stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        done = self.cp.sessions.remote_stop(_field(payload, "transactionId", int))
        return {"status": "Accepted" if done else "Rejected"}

    async def unlock_connector(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": self.cp.sessions.unlock(_field(payload, "connectorId", int)).value}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        return text
