"""Reservations end to end: the whole controller (API on port 0 with a token, real SQLite, real websockets)
and simulated chargers. Booked, held at the charger from start - buffer, refused to other cards, re-sent
after a reboot, used by the holder, cancelled, expired as a no-show, moved off an occupied EVSE, kept
across a controller restart; and every API refusal with its code."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller.hw.server import ServerSettings
from controller.hw.simulator import ChargerModel, SimulatedCharger
from controller.reservations.register import scheduler_of
from controller.runtime.controller import ApiSettings, Controller, ControllerSettings
from controller.runtime.reconcile import ReconcileSettings
from tests.config.ownerrepo import card, dump, evse, group, owner, policy, station

from .harness import run, wait_until

TOKEN = "res-token"
HOLDER, OTHER, VISITOR, BLOCKED = "DRV-0001", "DRV-0002", "VIS-0001", "DRV-BLOCK"


def write_repo(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "owner.yaml").write_text(dump(owner()))
    (root / "cards.yaml").write_text(dump(
        group("drivers", card(HOLDER, "drv-1"), card(OTHER, "drv-2"), card(BLOCKED, "drv-3", blocked=True)),
        group("visitors", card(VISITOR, "drv-4"))))
    (root / "policies.yaml").write_text(dump(
        policy("bays", fee="1.00", noShowFee="5.00", allowedGroups=["drivers"], maxDurationMinutes=60,
               bufferMinutes=1, graceMinutes=15, walkIns=True),
        policy("quick", fee="0.50", noShowFee="5.00", allowedGroups=["drivers"], bufferMinutes=0)))
    (root / "stations.yaml").write_text(dump(
        station("bay-1", "BAY-1", reservationPolicy="bays"),
        station("bay-2", "BAY-2", evses=[evse(1), evse(2)], reservationPolicy="quick"),
        station("plain", "PLAIN")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def controller(tmp: Path, port: int = 0) -> AsyncIterator[Controller]:
    ctl = Controller(ControllerSettings(
        repo=tmp / "repo", db_path=tmp / "chargeops.db", server=ServerSettings(port=port, call_timeout=3.0),
        reconcile=ReconcileSettings(call_timeout=3.0, retry_base=0.2, retry_max=2.0), watch=False,
        api=ApiSettings(port=0, tokens=(TOKEN,))))
    await ctl.start()
    try:
        yield ctl
    finally:
        await ctl.stop()


def charger(ctl: Controller, identity: str, port: int | None = None) -> SimulatedCharger:
    url = f"ws://127.0.0.1:{port or ctl.port}/ocpp"
    return SimulatedCharger(identity, url, time_scale=0.01, reconnect_delay=0.05, call_timeout=5.0)


def _call(base: str, method: str, path: str, body: Any, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def api(ctl: Controller, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    return await asyncio.to_thread(_call, ctl.api.url, method, path, body, token)


async def book(ctl: Controller, **body: Any) -> dict[str, Any]:
    code, answer = await api(ctl, "POST", "/api/v1/reservations", body)
    assert code == 201, answer
    return dict(answer)


async def status_of(ctl: Controller, rid: int) -> str:
    code, answer = await api(ctl, "GET", f"/api/v1/reservations/{rid}")
    assert code == 200, answer
    return str(answer["status"])


def reserve_calls(cp: SimulatedCharger, rid: int) -> list[Any]:
    return [c for c in cp.calls("ReserveNow") if c.payload["reservationId"] == rid]


def soon(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


def test_a_boot_reported_on_the_connection_that_holds_the_reservation_sends_no_second_reserve_now(
        tmp_path: Path) -> None:
    """A charger boots before it connects: the ReserveNow accepted on this connection stands. A second one
    (the boot event arriving after the connect's re-send) once reached the charger after the holder had
    presented the card, was answered Occupied, and the controller failed the reservation. A new connection
    still gets the reservation again."""
    write_repo(tmp_path / "repo")

    async def scenario() -> None:
        async with controller(tmp_path) as ctl, charger(ctl, "BAY-1") as cp:
            await cp.wait_online(10)
            made = await book(ctl, station="bay-1", idTag=HOLDER, start=soon(0), durationMinutes=30)
            rid = made["id"]
            await wait_until(lambda: _is(ctl, rid, "accepted"), 10, "accepted")
            assert len(reserve_calls(cp, rid)) == 1
            scheduler = scheduler_of(ctl)
            assert scheduler is not None
            assert await cp.present_card(HOLDER) == "Accepted"  # the holder is at the charger
            scheduler.connected("BAY-1", "boot")  # a boot reported on the same connection
            await asyncio.sleep(0.5)
            assert len(reserve_calls(cp, rid)) == 1 and await _is(ctl, rid, "accepted")
            await cp.plug_in(1)
            await wait_until(lambda: _is(ctl, rid, "used"), 5, "used")

    run(scenario(), timeout=30)


def test_a_reservation_is_held_from_start_minus_buffer_refused_to_others_resent_after_a_reboot_and_used(
        tmp_path: Path) -> None:
    write_repo(tmp_path / "repo")

    async def scenario() -> None:
        async with controller(tmp_path) as ctl, charger(ctl, "BAY-1") as cp:
            await cp.wait_online(10)
            start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61.5)  # bufferMinutes 1: held in 1.5 s
            made = await book(ctl, station="bay-1", idTag=HOLDER, start=start.isoformat(), durationMinutes=30)
            rid = made["id"]
            assert made["status"] == "scheduled" and made["idTag"] == "****0001" and made["evse"] == 1
            assert made["policy"] == {"name": "bays", "fee": "1.00", "noShowFee": "5.00", "graceMinutes": 15,
                                      "bufferMinutes": 1}
            assert not reserve_calls(cp, rid)  # nothing at the charger before start - buffer
            # walk-ins are welcome until the hold starts; the slot is taken for other bookings already
            assert (await cp.send("Authorize", {"idTag": OTHER}))["idTagInfo"]["status"] == "Accepted"
            code, err = await api(ctl, "POST", "/api/v1/reservations", {"station": "BAY-1", "idTag": OTHER,
                                                                         "start": soon(90), "durationMinutes": 10})
            assert (code, err["error"]["code"]) == (409, "overlap")
            await wait_until(lambda: reserve_calls(cp, rid), 10, "ReserveNow at start - buffer")
            sent = reserve_calls(cp, rid)[0]
            assert sent.at >= start - dt.timedelta(minutes=1, seconds=1)
            assert sent.payload["connectorId"] == 1 and sent.payload["idTag"] == HOLDER
            await wait_until(lambda: _is(ctl, rid, "accepted"), 5, "accepted")
            # anyone else is refused while it holds the EVSE, online and at StartTransaction
            assert (await cp.send("Authorize", {"idTag": OTHER}))["idTagInfo"]["status"] == "Invalid"
            started = await cp.send("StartTransaction", {"connectorId": 1, "idTag": OTHER, "meterStart": 0,
                                                         "timestamp": cp.timestamp()})
            assert started["idTagInfo"]["status"] == "Invalid"
            await cp.send("StopTransaction", {"transactionId": started["transactionId"], "meterStop": 0,
                                              "timestamp": cp.timestamp()})
            assert await cp.present_card(OTHER) == "Invalid"
            # the charger reboots and forgets it: ReserveNow again, same reservationId
            await cp.reboot()
            await wait_until(lambda: len(reserve_calls(cp, rid)) >= 2 and cp.connectors[1].reservation, 10,
                             "re-sent after the reboot")
            assert {c.payload["reservationId"] for c in reserve_calls(cp, rid)} == {rid}
            # the holder charges: StartTransaction carries the reservationId, the reservation is used
            assert await cp.present_card(HOLDER) == "Accepted"
            await cp.plug_in(1)
            await wait_until(lambda: _is(ctl, rid, "used"), 5, "used")
            assert cp.transactions[-1].reservation_id == rid
            code, used = await api(ctl, "GET", f"/api/v1/reservations/{rid}")
            assert used["endedAt"] is not None and not used["noShow"]

    run(scenario(), timeout=30)


async def _is(ctl: Controller, rid: int, status: str) -> bool:
    return await status_of(ctl, rid) == status


def test_a_reservation_is_cancelled_expires_as_a_no_show_and_moves_off_an_occupied_evse(tmp_path: Path) -> None:
    write_repo(tmp_path / "repo")

    async def scenario() -> None:
        async with controller(tmp_path) as ctl, charger(ctl, "BAY-1") as one, charger(ctl, "BAY-2") as two:
            await one.wait_online(10)
            await two.wait_online(10)
            # cancelled: CancelReservation reaches the charger, the EVSE is free again
            made = await book(ctl, station="BAY-1", idTag=HOLDER, durationMinutes=20)
            await wait_until(lambda: _is(ctl, made["id"], "accepted"), 5, "accepted")
            assert one.connectors[1].reservation is not None
            code, gone = await api(ctl, "DELETE", f"/api/v1/reservations/{made['id']}")
            assert code == 200 and gone["status"] == "cancelled"
            await wait_until(lambda: [c for c in one.calls("CancelReservation")
                                      if c.payload["reservationId"] == made["id"]], 5, "CancelReservation")
            assert one.connectors[1].reservation is None
            assert (await one.send("Authorize", {"idTag": OTHER}))["idTagInfo"]["status"] == "Accepted"
            code, again = await api(ctl, "DELETE", f"/api/v1/reservations/{made['id']}")
            assert (code, again["error"]["code"]) == (409, "not_active")
            # moved: booked on EVSE 1 (any EVSE asked for), EVSE 1 occupied when the hold starts
            await wait_until(lambda: _reported(ctl, "BAY-2", 1, "Available"), 5, "statuses known")
            moving = await book(ctl, station="bay-2", idTag=HOLDER, start=soon(1.5), durationMinutes=0.06)
            assert (moving["evse"], moving["status"]) == (1, "scheduled")
            await two.plug_in(1)
            await wait_until(lambda: _is(ctl, moving["id"], "accepted"), 6, "held elsewhere")
            code, moved = await api(ctl, "GET", f"/api/v1/reservations/{moving['id']}")
            assert moved["evse"] == 2 and moved["pinned"] is False
            assert [(a["evse"], a["answer"]) for a in moved["attempts"]] == [(1, "Occupied"), (2, "Accepted")]
            assert two.connectors[2].reservation is not None
            # nobody came: at the deadline (start + min(grace, duration)) it expires as a no-show
            await wait_until(lambda: _is(ctl, moving["id"], "expired"), 8, "expired")
            code, late = await api(ctl, "GET", f"/api/v1/reservations/{moving['id']}")
            assert late["noShow"] is True and late["policy"]["noShowFee"] == "5.00"
            await wait_until(lambda: _audited(ctl, "BAY-2", "ReservationNoShow"), 5, "no-show recorded")
            no_show = await _audited(ctl, "BAY-2", "ReservationNoShow")
            assert no_show[0].detail["fee"] == "5.00" and no_show[0].detail["idTag"] == "****0001"
            assert no_show[0].detail["reservationId"] == moving["id"]
            # a pinned EVSE that answers Occupied is not moved: the reservation fails and says why
            pinned = await book(ctl, station="bay-2", evse=1, idTag=OTHER, durationMinutes=5)
            await wait_until(lambda: _is(ctl, pinned["id"], "rejected"), 5, "rejected")
            code, failed = await api(ctl, "GET", f"/api/v1/reservations/{pinned['id']}")
            assert failed["failure"] == {"code": "occupied", "message": "EVSE 1 answered Occupied"}
            code, listed = await api(ctl, "GET", "/api/v1/reservations?station=bay-2&status=expired,rejected")
            assert code == 200 and [r["id"] for r in listed] == [moving["id"], pinned["id"]]

    run(scenario(), timeout=30)


async def _audited(ctl: Controller, station: str, action: str) -> list[Any]:
    assert ctl.store is not None
    return [a for a in await ctl.store.list_audit(station=station, limit=1000) if a.action == action]


async def _reported(ctl: Controller, identity: str, connector: int, status: str) -> bool:
    assert ctl.store is not None
    rec = await ctl.store.get_station(identity)
    return rec is not None and any(c.connector_id == connector and c.status == status for c in rec.connectors)


def test_any_evse_goes_to_connector_zero_where_supported_and_a_start_without_reservation_id_uses_it(
        tmp_path: Path) -> None:
    write_repo(tmp_path / "repo")

    async def scenario() -> None:
        async with controller(tmp_path) as ctl, SimulatedCharger(
                "BAY-1", f"ws://127.0.0.1:{ctl.port}/ocpp", model=ChargerModel(reserve_connector_zero=True),
                time_scale=0.01, reconnect_delay=0.05) as cp:
            await cp.wait_online(10)
            await wait_until(lambda: _config_read(ctl, "BAY-1", "ReserveConnectorZeroSupported"), 5, "config read")
            made = await book(ctl, station="bay-1", idTag=HOLDER, durationMinutes=10)
            assert made["evse"] == 0
            await wait_until(lambda: _is(ctl, made["id"], "accepted"), 5, "accepted")
            assert reserve_calls(cp, made["id"])[0].payload["connectorId"] == 0
            assert (await cp.send("Authorize", {"idTag": OTHER}))["idTagInfo"]["status"] == "Invalid"
            # a charger that leaves the reservationId out: the holder's card on the station ends it all the same
            await cp.send("StartTransaction", {"connectorId": 1, "idTag": HOLDER, "meterStart": 0,
                                               "timestamp": cp.timestamp()})
            await wait_until(lambda: _is(ctl, made["id"], "used"), 5, "used")

    run(scenario(), timeout=20)


async def _config_read(ctl: Controller, identity: str, key: str) -> bool:
    assert ctl.store is not None
    rec = await ctl.store.get_station(identity)
    return rec is not None and rec.config_value(key) is not None


def test_the_api_refuses_each_booking_the_policy_does_not_allow(tmp_path: Path) -> None:
    write_repo(tmp_path / "repo")

    async def scenario() -> None:
        async with controller(tmp_path) as ctl:
            async def refused(body: dict[str, Any], token: str | None = TOKEN) -> tuple[int, str]:
                code, answer = await api(ctl, "POST", "/api/v1/reservations", body, token)
                return code, answer["error"]["code"]

            ok = {"station": "bay-1", "idTag": HOLDER, "durationMinutes": 30}
            assert await refused(ok, None) == (401, "unauthorized")
            assert await refused({**ok, "station": "PLAIN"}) == (422, "not_reservable")
            assert await refused({**ok, "idTag": VISITOR}) == (403, "group_not_allowed")
            assert await refused({**ok, "durationMinutes": 61}) == (422, "too_long")
            assert await refused({**ok, "idTag": BLOCKED}) == (403, "card_invalid")
            assert await refused({**ok, "idTag": "NOBODY-1"}) == (403, "card_invalid")
            assert await refused({**ok, "station": "nowhere"}) == (404, "station_not_found")
            assert await refused({**ok, "evse": 3}) == (404, "evse_not_found")
            assert await refused({**ok, "start": "2020-01-01T00:00:00Z"}) == (422, "start_in_past")
            assert await refused({**ok, "start": "tomorrow"}) == (400, "invalid_request")
            assert await refused({**ok, "durationMinutes": 0}) == (400, "invalid_request")
            made = await book(ctl, **{**ok, "start": soon(3600)})
            assert await refused({**ok, "idTag": OTHER, "start": soon(3600 + 29 * 60)}) == (409, "overlap")
            # the buffer before a future booking is part of it: ending 30 s into the buffer overlaps
            assert await refused({**ok, "start": soon(3600 - 90), "durationMinutes": 1}) == (409, "overlap")
            assert (await book(ctl, **{**ok, "start": soon(3600 + 31 * 60 + 60)}))["status"] == "scheduled"
            code, mine = await api(ctl, "GET", "/api/v1/reservations?station=BAY-1")
            assert code == 200 and mine[0]["id"] == made["id"]
            assert all(r["idTag"].startswith("****") for r in mine)
            assert (await api(ctl, "GET", "/api/v1/reservations/999"))[0] == 404
            assert (await api(ctl, "GET", f"/api/v1/reservations/{made['id']}", token="wrong"))[0] == 401

    run(scenario(), timeout=20)


def test_reservations_survive_a_controller_restart_and_are_resent_on_reconnect(tmp_path: Path) -> None:
    write_repo(tmp_path / "repo")
    port = free_port()

    async def scenario() -> None:
        async with charger_at(port, "BAY-1") as one, charger_at(port, "BAY-2") as two:
            async with controller(tmp_path, port) as ctl:
                await one.wait_online(10)
                await two.wait_online(10)
                held = await book(ctl, station="bay-1", idTag=HOLDER, durationMinutes=30)
                await wait_until(lambda: _is(ctl, held["id"], "accepted"), 5, "accepted")
                later = await book(ctl, station="bay-2", evse=2, idTag=OTHER, start=soon(3), durationMinutes=5)
                assert later["status"] == "scheduled"
            sent_before = len(reserve_calls(one, held["id"]))
            async with controller(tmp_path, port) as ctl:
                # the charger reconnects (no boot) and gets its reservation again, same reservationId
                await wait_until(lambda: len(reserve_calls(one, held["id"])) > sent_before, 10, "re-sent")
                assert await _is(ctl, held["id"], "accepted")
                # the scheduled one was reloaded from the store and is held when its time comes
                await wait_until(lambda: reserve_calls(two, later["id"]), 10, "scheduled one held")
                await wait_until(lambda: _is(ctl, later["id"], "accepted"), 5, "accepted after restart")
                assert two.connectors[2].reservation is not None
                assert (await one.send("Authorize", {"idTag": OTHER}))["idTagInfo"]["status"] == "Invalid"

    run(scenario(), timeout=30)


def charger_at(port: int, identity: str) -> SimulatedCharger:
    return SimulatedCharger(identity, f"ws://127.0.0.1:{port}/ocpp", time_scale=0.01, reconnect_delay=0.05,
                            call_timeout=5.0)
