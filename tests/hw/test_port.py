"""ChargerPort with a recording fake transport: every payload it produces is valid against the official
OCPP 1.6 schemas, replies are parsed leniently, and GetConfiguration copes with key limits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ocpp.v16.enums import (
    AuthorizationStatus,
    AvailabilityType,
    ConfigurationStatus,
    DataTransferStatus,
    MessageTrigger,
    ReservationStatus,
    ResetType,
    UpdateStatus,
    UpdateType,
)

from controller.hw.errors import ChargerRejected
from controller.hw.port import (
    ChargerPort,
    IdTagInfo,
    LocalListEntry,
    ToleranceLog,
    ensure_status,
)

from .kit import run, schema_errors

Reply = Callable[[str, Mapping[str, Any]], dict[str, Any]]


class FakeTransport:
    """Records (action, payload, priority) and answers with ``reply``."""

    station_id = "CP-FAKE"

    def __init__(self, reply: Reply | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any], bool]] = []
        self.reply = reply or (lambda action, payload: {"status": "Accepted"})

    async def call(
        self,
        action: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | None = None,
        priority: bool = False,
        sensitive: bool = False,
    ) -> dict[str, Any]:
        self.sent.append((action, dict(payload), priority))
        return self.reply(action, payload)


EXPIRY = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


async def every_port_call(port: ChargerPort) -> None:
    await port.get_configuration()
    await port.get_configuration(["HeartbeatInterval", "NumberOfConnectors"])
    await port.change_configuration("HeartbeatInterval", "300")
    await port.change_configuration("AuthorizationKey", "0123456789abcdef0123")
    await port.get_local_list_version()
    await port.send_local_list(
        3,
        UpdateType.full,
        [
            LocalListEntry("04A1B2C3", IdTagInfo(AuthorizationStatus.accepted, EXPIRY, "GROUP-1")),
            LocalListEntry("04A1B2C4", IdTagInfo(AuthorizationStatus.blocked)),
        ],
    )
    await port.send_local_list(4, UpdateType.differential, [LocalListEntry("04A1B2C4")])
    await port.send_local_list(5, UpdateType.full, [])
    await port.clear_cache()
    await port.change_availability(0, AvailabilityType.inoperative)
    await port.reserve_now(1, EXPIRY, "04A1B2C3", 17, parent_id_tag="GROUP-1")
    await port.reserve_now(0, EXPIRY, "04A1B2C3", 18)
    await port.cancel_reservation(17)
    await port.data_transfer("org.openchargealliance.costmsg", "RunningCost", {"cost": Decimal("1.25")})
    await port.data_transfer("vendor")
    await port.trigger_message(MessageTrigger.status_notification, 1)
    await port.trigger_message(MessageTrigger.heartbeat)
    await port.reset(ResetType.soft)
    await port.remote_start_transaction("04A1B2C3", 1)
    await port.remote_start_transaction("04A1B2C3")
    await port.remote_stop_transaction(1001)
    await port.unlock_connector(2)


def test_every_payload_the_port_produces_is_valid_against_the_official_schema() -> None:
    transport = FakeTransport(_reply_for)
    run(every_port_call(ChargerPort(transport)))
    actions = {action for action, _, _ in transport.sent}
    assert actions == {
        "GetConfiguration", "ChangeConfiguration", "GetLocalListVersion", "SendLocalList", "ClearCache",
        "ChangeAvailability", "ReserveNow", "CancelReservation", "DataTransfer", "TriggerMessage", "Reset",
        "RemoteStartTransaction", "RemoteStopTransaction", "UnlockConnector",
    }
    errors = [e for action, payload, _ in transport.sent for e in schema_errors(action, payload)]
    assert errors == []


def _reply_for(action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    if action == "GetConfiguration":
        return {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
    if action == "GetLocalListVersion":
        return {"listVersion": 3}
    if action == "UnlockConnector":
        return {"status": "Unlocked"}
    return {"status": "Accepted"}


def test_money_in_data_transfer_is_serialised_exactly() -> None:
    transport = FakeTransport()
    run(ChargerPort(transport).data_transfer("v", "m", {"price": Decimal("0.30"), "total": Decimal("12.345")}))
    assert transport.sent[0][1]["data"] == '{"price":0.30,"total":12.345}'


def test_driver_facing_calls_go_with_priority_and_reconcile_calls_do_not() -> None:
    transport = FakeTransport(_reply_for)
    run(every_port_call(ChargerPort(transport)))
    priority = {action for action, _, prio in transport.sent if prio}
    assert priority == {
        "ReserveNow", "CancelReservation", "RemoteStartTransaction", "RemoteStopTransaction", "UnlockConnector"
    }


def test_out_of_range_arguments_are_refused_before_anything_is_sent() -> None:
    transport = FakeTransport()
    port = ChargerPort(transport)
    with pytest.raises(ValueError):
        run(port.change_configuration("K", "x" * 501))
    with pytest.raises(ValueError):
        run(port.remote_start_transaction("X" * 21))
    with pytest.raises(ValueError):
        run(port.trigger_message(MessageTrigger.log_status_notification))
    assert transport.sent == []


def test_a_refusal_status_is_a_value_and_ensure_status_turns_it_into_rejected() -> None:
    port = ChargerPort(FakeTransport(lambda a, p: {"status": "Occupied"}))
    status = run(port.reserve_now(1, EXPIRY, "A", 1))
    assert status is ReservationStatus.occupied
    with pytest.raises(ChargerRejected) as caught:
        ensure_status("CP-FAKE", "ReserveNow", status, ReservationStatus.accepted)
    assert caught.value.status == "Occupied"


def test_harmless_schema_breaches_are_tolerated_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    port = ChargerPort(FakeTransport(lambda a, p: {"status": "accepted", "vendorExtra": 1}), tolerance=ToleranceLog())
    with caplog.at_level(logging.WARNING, logger="chargeops.hw.port"):
        assert run(port.clear_cache()).value == "Accepted"
        assert run(port.clear_cache()).value == "Accepted"
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "status case" in m]) == 1
    assert len([m for m in messages if "extra fields" in m]) == 1


def test_an_unusable_status_is_rejected_with_the_raw_value() -> None:
    port = ChargerPort(FakeTransport(lambda a, p: {"status": "Maybe"}), tolerance=ToleranceLog())
    with pytest.raises(ChargerRejected) as caught:
        run(port.change_configuration("HeartbeatInterval", "60"))
    assert caught.value.status == "Maybe"


def test_sloppy_configuration_replies_are_read() -> None:
    reply = {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": "false", "value": 300},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2", "x": 1},
            {"key": "AuthorizationKey", "readonly": False},
            {"nokey": True},
        ],
        "unknownKey": ["Foo", 5],
    }
    port = ChargerPort(FakeTransport(lambda a, p: reply), tolerance=ToleranceLog())
    report = run(port.get_configuration())
    assert report.value("heartbeatinterval") == "300"
    assert report.get("NumberOfConnectors") is not None and report.get("NumberOfConnectors").readonly  # type: ignore[union-attr]
    assert "AuthorizationKey" in report and report.value("AuthorizationKey") is None
    assert report.unknown == ("Foo",)


def test_list_version_as_a_string_is_read_as_a_number() -> None:
    port = ChargerPort(FakeTransport(lambda a, p: {"listVersion": "7"}), tolerance=ToleranceLog())
    assert run(port.get_local_list_version()) == 7


class LimitedCharger:
    """GetConfiguration with a key limit, answering like either kind of firmware."""

    def __init__(self, limit: int, overflow: str) -> None:
        self.limit, self.overflow = limit, overflow
        self.values = {f"Key{i}": str(i) for i in range(12)} | {"GetConfigurationMaxKeys": str(limit)}

    def __call__(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        keys = list(payload.get("key") or self.values)
        if len(keys) > self.limit:
            if self.overflow == "error":
                raise ChargerRejected("CP-FAKE", action, code="OccurenceConstraintViolation")
            keys = keys[: self.limit]
        known = [{"key": k, "readonly": False, "value": self.values[k]} for k in keys if k in self.values]
        return {"configurationKey": known, "unknownKey": [k for k in keys if k not in self.values]}


class RaisingTransport(FakeTransport):
    async def call(self, action: str, payload: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        self.sent.append((action, dict(payload), False))
        return self.reply(action, payload)


@pytest.mark.parametrize("overflow", ["error", "truncate"])
def test_get_configuration_learns_the_key_limit_and_asks_for_everything(overflow: str) -> None:
    transport = RaisingTransport(LimitedCharger(4, overflow))
    port = ChargerPort(transport, tolerance=ToleranceLog())
    wanted = [f"Key{i}" for i in range(12)] + ["Unknown1"]
    report = run(port.get_configuration(wanted))
    assert [e.key for e in report.entries] == [f"Key{i}" for i in range(12)]
    assert report.unknown == ("Unknown1",)
    assert port.max_keys == 4
    assert len(transport.sent[0][1]["key"]) == 13
    assert all(len(p["key"]) <= 4 for _, p, _ in transport.sent[1:])


def test_get_configuration_chunks_by_a_known_limit_from_the_start() -> None:
    transport = RaisingTransport(LimitedCharger(5, "error"))
    port = ChargerPort(transport, max_keys=5, tolerance=ToleranceLog())
    run(port.get_configuration([f"Key{i}" for i in range(12)]))
    assert [len(p["key"]) for _, p, _ in transport.sent] == [5, 5, 2]


def test_statuses_come_back_as_library_enums() -> None:
    port = ChargerPort(FakeTransport(lambda a, p: {"status": "RebootRequired"}))
    assert run(port.change_configuration("WebSocketPingInterval", "30")) is ConfigurationStatus.reboot_required
    port = ChargerPort(FakeTransport(lambda a, p: {"status": "VersionMismatch"}))
    assert run(port.send_local_list(1, UpdateType.differential, [])) is UpdateStatus.version_mismatch
    reply = {"status": "UnknownVendorId", "data": {"x": 1}}
    port = ChargerPort(FakeTransport(lambda a, p: reply), tolerance=ToleranceLog())
    result = run(port.data_transfer("v"))
    assert result.status is DataTransferStatus.unknown_vendor_id and result.data == '{"x":1}'
