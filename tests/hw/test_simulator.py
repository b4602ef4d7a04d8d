"""The simulator against a central-system stub on localhost port 0, driven through ChargerPort.

Every payload either side sends is checked against the official OCPP 1.6 schemas (the stub collects
violations; each scenario ends by asserting there were none).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
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

from controller.hw.errors import ChargerRejected, ChargerUnavailable, UnavailableReason
from controller.hw.ocppj import parse_datetime
from controller.hw.port import ChargerPort, IdTagInfo, LocalListEntry
from controller.hw.simulator import ChargerModel, Faults, SimulatedCharger

from .kit import CsmsStub, run

ACCEPTED_CARD = {"status": "Accepted"}
LISTED = [LocalListEntry("LISTED", IdTagInfo(AuthorizationStatus.accepted))]
CARDS = {"GOOD": ACCEPTED_CARD, "OTHER": ACCEPTED_CARD, "KID": {"status": "Accepted", "parentIdTag": "FAMILY"}}


@contextlib.asynccontextmanager
async def station(
    model: ChargerModel | str = "basic",
    *,
    identity: str = "CP-1",
    faults: Faults | None = None,
    stub: dict[str, Any] | None = None,
    password: str | None = None,
) -> AsyncIterator[tuple[CsmsStub, SimulatedCharger, ChargerPort]]:
    async with CsmsStub(cards=CARDS, **(stub or {})) as csms:
        cp = SimulatedCharger(
            identity, csms.url, password, model, faults=faults, time_scale=0.01, call_timeout=2.0, reconnect_delay=0.05
        )
        await cp.start()
        try:
            await cp.wait_online(5)
            await csms.wait_connected(identity)
            yield csms, cp, csms.port(identity, timeout=2.0)
        finally:
            await cp.stop()
        assert csms.schema_violations == []


def statuses(csms: CsmsStub, connector: int) -> list[str]:
    return [p["status"] for p in csms.events_of("StatusNotification") if p["connectorId"] == connector]


def test_a_charger_boots_reports_every_connector_and_heartbeats_at_the_given_interval() -> None:
    async def scenario() -> None:
        async with station(stub={"heartbeat_interval": 10}) as (csms, cp, _):
            boot = csms.events_of("BootNotification")[0]
            assert boot["chargePointVendor"] == "ChargeOps" and boot["chargePointSerialNumber"] == "CP-1"
            await csms.wait_event("StatusNotification", 3)
            assert {p["connectorId"] for p in csms.events_of("StatusNotification")} == {0, 1, 2}
            assert cp.config.get("HeartbeatInterval") == "10"
            await csms.wait_event("Heartbeat", 2, timeout=2)

    run(scenario())


def test_a_pending_charger_stays_silent_then_boots_again() -> None:
    async def scenario() -> None:
        async with (
            CsmsStub(boot_status="Pending", heartbeat_interval=5) as csms,
            SimulatedCharger("CP-P", csms.url, time_scale=0.01, reconnect_delay=0.05) as cp,
        ):
            await csms.wait_event("BootNotification", 1)
            assert cp.registration == "Pending" and not cp.online
            assert csms.events_of("StatusNotification") == []
            csms.boot_status = "Accepted"
            await cp.wait_online(2)
            assert len(csms.events_of("BootNotification")) >= 2

    run(scenario())


def test_a_reconnect_is_not_a_boot() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            await cp.drop_connection()
            await cp.wait_for(lambda: cp.connect_count == 2 and cp.online, 3, "reconnect")
            await csms.wait_connected("CP-1")
            assert len(csms.events_of("BootNotification")) == 1
            assert (await port.get_configuration(["HeartbeatInterval"])).value("HeartbeatInterval") == "60"

    run(scenario())


def test_get_configuration_reads_everything_and_chunks_by_the_chargers_key_limit() -> None:
    async def scenario() -> None:
        async with station() as (_, cp, port):
            everything = await port.get_configuration()
            assert everything.get("NumberOfConnectors").readonly  # type: ignore[union-attr]
            assert everything.value("AuthorizationKey") is None and "AuthorizationKey" in everything
            assert port.max_keys == 20
            keys = [e.key for e in everything.entries] + ["NoSuchKey"]
            assert len(keys) > 20
            fresh = ChargerPort(port.transport, timeout=2.0)  # does not know the limit yet
            report = await fresh.get_configuration(keys)
            assert report.unknown == ("NoSuchKey",) and len(report.entries) == len(keys) - 1
            assert fresh.max_keys == 20
            assert any(c.action == "GetConfiguration" and len(c.payload.get("key", [])) > 20 for c in cp.received)

    run(scenario())


def test_a_charger_that_truncates_get_configuration_is_asked_again_for_the_rest() -> None:
    async def scenario() -> None:
        async with station("minimal") as (_, _cp, port):
            keys = ["HeartbeatInterval", "ConnectionTimeOut", "MeterValueSampleInterval", "LightIntensity",
                    "ResetRetries", "LocalPreAuthorize", "StopTransactionOnInvalidId"]
            report = await port.get_configuration(keys)
            assert len(report.entries) == 7 and report.unknown == ()

    run(scenario())


def test_change_configuration_answers_accepted_reboot_required_not_supported_and_rejected() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            assert await port.change_configuration("heartbeatinterval", "5") is ConfigurationStatus.accepted
            assert await port.change_configuration("WebSocketPingInterval", "30") is ConfigurationStatus.reboot_required
            assert await port.change_configuration("NoSuchKey", "1") is ConfigurationStatus.not_supported
            assert await port.change_configuration("NumberOfConnectors", "4") is ConfigurationStatus.rejected
            assert await port.change_configuration("MeterValueSampleInterval", "often") is ConfigurationStatus.rejected
            assert await port.change_configuration("LocalPreAuthorize", "TRUE") is ConfigurationStatus.accepted
            assert cp.config.get("LocalPreAuthorize") == "true"
            assert cp.config.get("WebSocketPingInterval") == "60"
            await csms.wait_event("Heartbeat", 2, timeout=2)  # the new 5 s interval took effect at once
            assert await port.reset(ResetType.soft) is ResetStatus.accepted
            await csms.wait_event("BootNotification", 2)
            assert cp.config.get("WebSocketPingInterval") == "30"

    run(scenario())


def test_the_authorization_key_is_write_only_and_used_from_the_next_connection() -> None:
    async def scenario() -> None:
        async with station(password="0123456789abcdef") as (_csms, cp, port):
            key = "fedcba9876543210fedc"
            assert await port.change_configuration("AuthorizationKey", key) is ConfigurationStatus.accepted
            assert await port.change_configuration("AuthorizationKey", "short") is ConfigurationStatus.rejected
            assert (await port.get_configuration(["AuthorizationKey"])).value("AuthorizationKey") is None
            assert cp.password == key

    run(scenario())


def test_the_local_list_follows_full_and_differential_updates_and_its_limits() -> None:
    accepted = IdTagInfo(AuthorizationStatus.accepted)
    model = ChargerModel(local_list_max_length=5, send_local_list_max_length=4)

    async def scenario() -> None:
        async with station(model) as (_, cp, port):
            assert await port.get_local_list_version() == 0
            full = [LocalListEntry(tag, accepted) for tag in ("a1", "A2", "A3")]
            assert await port.send_local_list(1, UpdateType.full, full) is UpdateStatus.accepted
            assert await port.get_local_list_version() == 1
            diff = [LocalListEntry("A4", IdTagInfo(AuthorizationStatus.blocked)), LocalListEntry("A1")]
            assert await port.send_local_list(2, UpdateType.differential, diff) is UpdateStatus.accepted
            assert set(cp.local_list.entries) == {"A2", "A3", "A4"}
            assert cp.local_list.lookup("a4").status == "Blocked"  # type: ignore[union-attr]
            assert await port.send_local_list(2, UpdateType.differential, diff) is UpdateStatus.version_mismatch
            too_many = [LocalListEntry(f"B{i}", accepted) for i in range(5)]
            assert await port.send_local_list(3, UpdateType.full, too_many) is UpdateStatus.failed  # > 4 per message
            over = [LocalListEntry(f"C{i}", accepted) for i in range(3)]
            assert await port.send_local_list(3, UpdateType.differential, over) is UpdateStatus.failed  # > 5 in all
            assert await port.get_local_list_version() == 2 and len(cp.local_list.entries) == 3

    run(scenario())


def test_a_charger_without_a_local_list_says_so() -> None:
    async def scenario() -> None:
        async with station("minimal") as (_, _cp, port):
            assert await port.get_local_list_version() == -1
            assert await port.send_local_list(1, UpdateType.full, []) is UpdateStatus.not_supported
            assert await port.clear_cache() is ClearCacheStatus.rejected

    run(scenario())


def test_online_authorization_fills_the_cache_and_clear_cache_empties_it() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            assert await cp.present_card("good") == "Accepted"
            assert csms.events_of("Authorize") == [{"idTag": "good"}]
            assert cp.cache.lookup("GOOD") is not None
            assert await cp.present_card("stranger", 2) == "Invalid"
            assert await port.clear_cache() is ClearCacheStatus.accepted
            assert cp.cache.entries == {}

    run(scenario())


def test_offline_authorization_uses_the_local_list_then_the_cache_then_allow_unknown() -> None:
    async def scenario() -> None:
        async with station() as (_, cp, port):
            await port.send_local_list(1, UpdateType.full, LISTED)
            assert await cp.present_card("OTHER") == "Accepted"  # authorized online: now in the cache
            await cp.go_offline()
            assert (await cp.sessions.authorize("listed"))["status"] == "Accepted"
            assert (await cp.sessions.authorize("OTHER"))["status"] == "Accepted"
            assert (await cp.sessions.authorize("UNKNOWN"))["status"] == "Invalid"
            cp.config.change("AllowOfflineTxForUnknownId", "true")
            assert (await cp.sessions.authorize("UNKNOWN"))["status"] == "Accepted"
            cp.config.change("LocalAuthorizeOffline", "false")
            assert (await cp.sessions.authorize("LISTED"))["status"] == "Invalid"
            cp.go_online()

    run(scenario())


def test_local_pre_authorize_starts_without_asking_the_central_system() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            await port.change_configuration("LocalPreAuthorize", "true")
            await port.send_local_list(1, UpdateType.full, LISTED)
            assert await cp.present_card("LISTED") == "Accepted"
            assert csms.events_of("Authorize") == []

    run(scenario())


def test_reservations_hold_a_connector_for_their_card_only() -> None:
    expiry = datetime.now(UTC) + timedelta(minutes=10)

    async def scenario() -> None:
        async with station() as (csms, cp, port):
            assert await port.reserve_now(1, expiry, "GOOD", 7) is ReservationStatus.accepted
            await cp.wait_for(lambda: "Reserved" in statuses(csms, 1), 2, "Reserved")
            assert await port.reserve_now(1, expiry, "OTHER", 8) is ReservationStatus.occupied
            assert await port.reserve_now(1, expiry, "GOOD", 7) is ReservationStatus.accepted  # same id replaces
            assert await port.reserve_now(0, expiry, "GOOD", 9) is ReservationStatus.rejected  # no connector 0
            cp.set_faulted(2)
            assert await port.reserve_now(2, expiry, "GOOD", 10) is ReservationStatus.faulted
            cp.set_faulted(2, False)
            await port.change_availability(2, AvailabilityType.inoperative)
            assert await port.reserve_now(2, expiry, "GOOD", 11) is ReservationStatus.unavailable
            assert await port.cancel_reservation(99) is CancelReservationStatus.rejected
            assert await cp.present_card("OTHER", 1) == "Reserved"
            await cp.plug_in(1)
            assert await cp.present_card("GOOD", 1) == "Accepted"
            start = (await csms.wait_event("StartTransaction"))[0]
            assert start["reservationId"] == 7 and start["connectorId"] == 1
            assert await port.reserve_now(1, expiry, "OTHER", 12) is ReservationStatus.occupied

    run(scenario())


def test_a_cancelled_reservation_frees_the_connector() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            expiry = datetime.now(UTC) + timedelta(minutes=10)
            status = await port.reserve_now(2, expiry, "KID-OF-FAMILY", 3, parent_id_tag="FAMILY")
            assert status is ReservationStatus.accepted
            assert await port.cancel_reservation(3) is CancelReservationStatus.accepted
            await cp.wait_for(lambda: statuses(csms, 2)[-1:] == ["Available"] and "Reserved" in statuses(csms, 2), 2)

    run(scenario())


def test_a_full_session_reports_meter_values_and_stops_with_the_assigned_transaction_id() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            await port.change_configuration("MeterValueSampleInterval", "20")
            await cp.plug_in(1)
            assert await cp.present_card("GOOD") == "Accepted"
            start = (await csms.wait_event("StartTransaction"))[0]
            await csms.wait_event("MeterValues", 2, timeout=3)
            assert await cp.present_card("GOOD") == "Accepted"  # same card again: stop
            stop = (await csms.wait_event("StopTransaction"))[0]
            await cp.unplug(1)
            await cp.wait_for(lambda: statuses(csms, 1)[-1:] == ["Available"], 2, "Available")
            meters = csms.events_of("MeterValues")
            registers = [int(m["meterValue"][0]["sampledValue"][0]["value"]) for m in meters]
            assert registers == sorted(registers) and registers[-1] > start["meterStart"]
            measurands = {m["meterValue"][0]["sampledValue"][0]["measurand"] for m in meters}
            assert measurands == {"Energy.Active.Import.Register"}
            assert stop["transactionId"] == 1000 and {m["transactionId"] for m in meters} == {1000}
            assert stop["meterStop"] >= registers[-1] and stop["reason"] == "Local"
            assert statuses(csms, 1)[1:] == ["Preparing", "Charging", "Finishing", "Available"]
            assert cp.transactions[0].transaction_id == 1000

    run(scenario())


def test_a_session_made_offline_is_delivered_late_after_the_reconnect() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            await port.send_local_list(1, UpdateType.full, LISTED)
            await cp.go_offline()
            await cp.plug_in(2)
            assert await cp.present_card("LISTED") == "Accepted"
            await cp.wait_for(lambda: any(m.action == "MeterValues" for m in cp.tx_queue), 3, "a meter value")
            await cp.present_card("LISTED")
            await cp.unplug(2)
            offline_stop = cp.now()
            assert cp.tx_queue[0].action == "StartTransaction" and len(cp.tx_queue) >= 3
            cp.go_online()
            await cp.drained(3)
            start = (await csms.wait_event("StartTransaction"))[0]
            stop = (await csms.wait_event("StopTransaction"))[0]
            assert parse_datetime(start["timestamp"]) <= offline_stop  # type: ignore[operator]
            assert stop["transactionId"] == 1000 and csms.events_of("MeterValues")[0]["transactionId"] == 1000
            assert csms.events_of("Authorize") == [] and len(csms.events_of("BootNotification")) == 1
            await cp.wait_for(lambda: statuses(csms, 2)[-1:] == ["Available"], 2, "status after reconnect")

    run(scenario())


def test_transaction_messages_are_retried_and_then_discarded_like_real_chargers() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            failures = {"left": 2}

            async def flaky(identity: str, call: Any) -> dict[str, Any]:
                from controller.hw.errors import OcppCallError

                if failures["left"] > 0:
                    failures["left"] -= 1
                    raise OcppCallError("InternalError", "database busy")
                return {"transactionId": 5, "idTagInfo": {"status": "Accepted"}}

            csms.extra_handlers["StartTransaction"] = flaky
            await port.change_configuration("TransactionMessageRetryInterval", "1")
            await cp.plug_in(1)
            await cp.present_card("GOOD")
            await cp.drained(3)
            assert len(csms.events_of("StartTransaction")) == 3 and cp.discarded == []
            failures["left"] = 99
            await cp.plug_in(2)
            await cp.present_card("OTHER", 2)
            await cp.present_card("OTHER", 2)
            await cp.wait_for(lambda: not cp.tx_queue, 3, "discard")
            assert [m.action for m in cp.discarded] == ["StartTransaction", "StopTransaction"]
            assert len(csms.events_of("StartTransaction")) == 3 + 3
            assert len(csms.events_of("StopTransaction")) == 0

    run(scenario())


def test_change_availability_is_scheduled_during_a_session_and_applied_at_its_end() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            await cp.plug_in(1)
            await cp.present_card("GOOD")
            assert await port.change_availability(0, AvailabilityType.inoperative) is AvailabilityStatus.scheduled
            await cp.wait_for(lambda: statuses(csms, 2)[-1:] == ["Unavailable"], 2, "connector 2 unavailable")
            await cp.present_card("GOOD")
            await cp.wait_for(lambda: statuses(csms, 1)[-1:] == ["Unavailable"], 2, "connector 1 unavailable")
            assert await cp.present_card("OTHER") == "Occupied"
            assert await port.change_availability(0, AvailabilityType.operative) is AvailabilityStatus.accepted
            assert await port.change_availability(9, AvailabilityType.operative) is AvailabilityStatus.rejected

    run(scenario())


def test_california_pricing_is_shown_only_where_custom_display_cost_and_price_is_true() -> None:
    price = '{"priceText":"0.30 EUR/kWh","chargingPrice":{"kWhPrice":0.30,"hourPrice":0,"flatFee":0}}'

    async def scenario() -> None:
        async with station("california") as (_, cp, port):
            report = await port.get_configuration(["CustomDisplayCostAndPrice"])
            assert report.value("CustomDisplayCostAndPrice") == "true"
            assert await port.change_configuration("DefaultPrice", price) is ConfigurationStatus.accepted
            assert await port.change_configuration("DefaultPrice", "{not json") is ConfigurationStatus.rejected
            cost = {"transactionId": 1, "cost": Decimal("1.20"), "priceText": "1.20 EUR"}
            result = await port.data_transfer("org.openchargealliance.costmsg", "RunningCost", cost, priority=True)
            assert result.status is DataTransferStatus.accepted
            unknown = await port.data_transfer("org.openchargealliance.costmsg", "Bogus", "{}")
            assert unknown.status is DataTransferStatus.unknown_message_id
            assert [d.kind for d in cp.display] == ["DefaultPrice", "RunningCost"]
            assert cp.display[1].content["cost"] == Decimal("1.20")
        async with station() as (_, _cp, port):
            assert await port.change_configuration("DefaultPrice", price) is ConfigurationStatus.not_supported
            result = await port.data_transfer("org.openchargealliance.costmsg", "RunningCost", "{}")
            assert result.status is DataTransferStatus.unknown_vendor_id

    run(scenario())


def test_remote_start_stop_unlock_and_trigger_message() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            assert await port.remote_start_transaction("GOOD", 1) is RemoteStartStopStatus.accepted
            await cp.wait_for(lambda: cp.connectors[1].authorization is not None, 2, "authorization")
            await cp.plug_in(1)
            await csms.wait_event("StartTransaction")
            await cp.wait_for(lambda: cp.connectors[1].transaction.transaction_id == 1000, 2)  # type: ignore[union-attr]
            assert await port.remote_start_transaction("OTHER", 1) is RemoteStartStopStatus.rejected
            assert await port.trigger_message(MessageTrigger.meter_values, 1) is TriggerMessageStatus.accepted
            contexts = lambda: {m["meterValue"][0]["sampledValue"][0]["context"] for m in csms.events_of("MeterValues")}  # noqa: E731
            await cp.wait_for(lambda: "Trigger" in contexts(), 2, "a triggered meter value")
            assert await port.remote_stop_transaction(999) is RemoteStartStopStatus.rejected
            assert await port.remote_stop_transaction(1000) is RemoteStartStopStatus.accepted
            stop = (await csms.wait_event("StopTransaction"))[0]
            assert stop["reason"] == "Remote"
            assert await port.unlock_connector(1) is UnlockStatus.unlocked
            assert await port.unlock_connector(7) is UnlockStatus.not_supported
            before = len(csms.events_of("StatusNotification"))
            assert await port.trigger_message(MessageTrigger.status_notification) is TriggerMessageStatus.accepted
            await csms.wait_event("StatusNotification", before + 3)
            assert await port.trigger_message(MessageTrigger.heartbeat, 5) is TriggerMessageStatus.rejected

    run(scenario())


def test_a_reset_reboots_and_losing_settings_brings_back_factory_values() -> None:
    async def scenario() -> None:
        async with station(faults=Faults(lose_settings_on_reboot=True)) as (csms, cp, port):
            await port.change_configuration("LightIntensity", "10")
            await port.send_local_list(4, UpdateType.full, LISTED)
            await port.change_availability(2, AvailabilityType.inoperative)
            assert await port.reset(ResetType.hard) is ResetStatus.accepted
            await csms.wait_event("BootNotification", 2)
            await cp.wait_online(2)
            await csms.wait_connected("CP-1")
            assert (await port.get_configuration(["LightIntensity"])).value("LightIntensity") == "80"
            assert await port.get_local_list_version() == 0
            assert cp.connectors[2].operative

    run(scenario())


def test_availability_survives_a_plain_reboot() -> None:
    async def scenario() -> None:
        async with station() as (csms, cp, port):
            await port.change_availability(2, AvailabilityType.inoperative)
            await cp.reboot()
            await csms.wait_event("BootNotification", 2)
            await cp.wait_for(lambda: statuses(csms, 2)[-1:] == ["Unavailable"], 2)

    run(scenario())


def test_fault_switches_make_the_charger_refuse_answer_late_and_lie_about_the_time() -> None:
    async def scenario() -> None:
        faults = Faults(clock_skew=3600)
        async with station(faults=faults) as (csms, _, port):
            boot_status = (await csms.wait_event("StatusNotification"))[0]
            skew = parse_datetime(boot_status["timestamp"]) - datetime.now(UTC)  # type: ignore[operator]
            assert skew > timedelta(minutes=59)
            faults.reject_calls = True
            assert await port.reset(ResetType.soft) is ResetStatus.rejected
            assert await port.send_local_list(1, UpdateType.full, []) is UpdateStatus.failed
            faults.reject_calls, faults.not_supported = False, True
            with pytest.raises(ChargerRejected) as caught:
                await port.clear_cache()
            assert caught.value.code == "NotSupported"
            faults.not_supported, faults.answer_delay = False, 0.3
            with pytest.raises(ChargerUnavailable) as late:
                await port.clear_cache(timeout=0.1)
            assert late.value.reason is UnavailableReason.TIMEOUT
            faults.answer_delay = 0
            assert await port.clear_cache() is ClearCacheStatus.accepted

    run(scenario())


def test_old_firmware_that_offers_no_subprotocol_still_connects() -> None:
    async def scenario() -> None:
        async with station(faults=Faults(no_subprotocol=True)) as (_, cp, port):
            assert cp.connection is not None
            assert await port.get_local_list_version() == 0

    run(scenario())


def test_a_second_connection_with_the_same_identity_replaces_the_first() -> None:
    async def scenario() -> None:
        async with station(faults=Faults()) as (csms, cp, port):
            old = csms.conns["CP-1"]
            cp.faults.answer_delay = 0.5
            in_flight = asyncio.create_task(port.clear_cache(timeout=2))
            await cp.wait_for(lambda: bool(cp.calls("ClearCache")), 2)
            await cp.open_second_connection()
            with pytest.raises(ChargerUnavailable) as caught:
                await in_flight
            assert caught.value.reason is UnavailableReason.REPLACED
            cp.faults.answer_delay = 0
            assert csms.conns["CP-1"] is not old
            assert await port.clear_cache() is ClearCacheStatus.accepted
            assert len(csms.events_of("BootNotification")) == 1

    run(scenario())


def test_a_charger_sending_garbage_is_disconnected_without_disturbing_another() -> None:
    async def scenario() -> None:
        from controller.hw.connection import ConnectionLimits

        async with (
            CsmsStub(limits=ConnectionLimits(max_bad_frames=5)) as csms,
            SimulatedCharger("BAD", csms.url, time_scale=0.01, reconnect_delay=0.05) as bad,
            SimulatedCharger("GOOD", csms.url, time_scale=0.01, reconnect_delay=0.05) as good,
        ):
            await bad.wait_online(3)
            await good.wait_online(3)
            await bad.send_garbage(9)
            await bad.wait_for(lambda: ("BAD", 1008) in csms.closes, 3, "1008")
            assert await csms.port("GOOD").get_local_list_version() == 0
            await bad.wait_for(lambda: bad.connect_count == 2 and bad.online, 3, "reconnect")
            assert [c for c in csms.closes if c[0] == "GOOD"] == []

    run(scenario())


def test_http_basic_authentication_with_the_right_and_the_wrong_password() -> None:
    async def scenario() -> None:
        key = "0123456789abcdef"
        async with (
            CsmsStub(passwords={"CP-A": key, "CP-B": key}) as csms,
            SimulatedCharger("CP-A", csms.url, key, time_scale=0.01) as good,
            SimulatedCharger("CP-B", csms.url, "wrong-password-00", time_scale=0.01, reconnect_delay=0.05) as bad,
        ):
            await good.wait_online(3)
            await bad.wait_for(lambda: bad.last_error is not None, 3, "a refused handshake")
            assert "401" in str(bad.last_error) and not bad.online

    run(scenario())


def test_firmware_sending_the_raw_key_bytes_and_a_trailing_slash_still_authenticates() -> None:
    key = "00112233445566778899aabbccddeeff"
    model = ChargerModel(basic_auth_raw_key=True, trailing_slash=True)

    async def scenario() -> None:
        async with (
            CsmsStub(passwords={"CP-RAW": key}) as csms,
            SimulatedCharger("CP-RAW", csms.url, key, model, time_scale=0.01) as cp,
        ):
            await cp.wait_online(3)
            assert csms.events_of("BootNotification")

    run(scenario())
