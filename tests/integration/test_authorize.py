"""Authorize decisions over real websockets, for each access case: unknown, blocked, expired, public,
restricted (member, non-member, nested group), concurrent sessions, reservation-only EVSEs (holder and
others) and case-insensitive idTags."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from controller.store.records import ReservationRequest, ReservationStatus
from tests.config.ownerrepo import card, evse, group, owner, policy, station

from .harness import calls_to, csms, desired_of, run


def _repo():  # type: ignore[no-untyped-def]
    return desired_of(
        owner(),
        group("employees", card("EMP-0001", "drv-1"), card("emp-0002", "drv-2"),
              card("EMP-BLOCKED", "drv-3", blocked=True), card("EMP-OLD", "drv-4", validUntil="2020-01-01")),
        group("contractors", card("CON-0001", "drv-5")),
        group("staff", includes=["employees", "contractors"]),
        group("visitors", card("VIS-0001", "drv-6"), card("VIS-0002", "drv-7"), maxConcurrentSessions=1),
        policy("bays"),
        station("public-1"),
        station("public-2"),
        station("staff-only", access={"mode": "restricted", "groups": ["staff"]}),
        station("emp-only", access={"mode": "restricted", "groups": ["employees"]}),
        station("bay", evses=[evse(1, reservationPolicy="bays"), evse(2)]),
    )


async def authorize(cp, id_tag: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    reply = await cp.send("Authorize", {"idTag": id_tag})
    return dict(reply["idTagInfo"])


def test_authorize_answers_each_access_case(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, h.charger("PUBLIC-1") as pub, h.charger("EMP-ONLY") as emp, \
                h.charger("STAFF-ONLY") as staff:
            for cp in (pub, emp, staff):
                await cp.wait_online(5)
            assert (await authorize(pub, "NOBODY"))["status"] == "Invalid"
            assert (await authorize(pub, "EMP-BLOCKED"))["status"] == "Blocked"
            assert (await authorize(pub, "EMP-OLD"))["status"] == "Expired"
            ok = await authorize(pub, "VIS-0001")
            assert ok["status"] == "Accepted" and ok["parentIdTag"] == "visitors" and "expiryDate" in ok
            # idTags are case-insensitive
            assert (await authorize(pub, "vis-0001"))["status"] == "Accepted"
            assert (await authorize(pub, "EMP-0002"))["status"] == "Accepted"
            # restricted stations: only their groups, nested groups included
            assert (await authorize(emp, "EMP-0001"))["status"] == "Accepted"
            assert (await authorize(emp, "CON-0001"))["status"] == "Invalid"
            assert (await authorize(emp, "VIS-0001"))["status"] == "Invalid"
            assert (await authorize(staff, "CON-0001"))["status"] == "Accepted"
            assert (await authorize(staff, "CON-0001"))["parentIdTag"] == "contractors"

    run(scenario())


def test_a_card_already_charging_gets_concurrent_tx_elsewhere(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, h.charger("PUBLIC-1") as a, h.charger("PUBLIC-2") as b:
            await a.wait_online(5)
            await b.wait_online(5)
            start = await a.send("StartTransaction", {"connectorId": 1, "idTag": "VIS-0002", "meterStart": 0,
                                                      "timestamp": a.timestamp()})
            assert start["idTagInfo"]["status"] == "Accepted"
            assert (await authorize(b, "VIS-0002"))["status"] == "ConcurrentTx"
            await a.send("StopTransaction", {"transactionId": start["transactionId"], "meterStop": 100,
                                             "timestamp": a.timestamp()})
            assert (await authorize(b, "VIS-0002"))["status"] == "Accepted"

    run(scenario())


def test_a_reservation_only_evse_is_for_its_holder_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, h.charger("BAY") as cp:
            await cp.wait_online(5)
            # EVSE 1 needs a reservation, EVSE 2 is free to use: Authorize (no connector) is accepted
            assert (await authorize(cp, "VIS-0001"))["status"] == "Accepted"
            start = await cp.send("StartTransaction", {"connectorId": 1, "idTag": "VIS-0001", "meterStart": 0,
                                                       "timestamp": cp.timestamp()})
            assert start["idTagInfo"]["status"] == "Invalid"  # recorded, but not authorized there
            tx = await h.store.get_transaction(start["transactionId"])
            assert tx is not None and any("Invalid" in a for a in tx.anomalies)
            expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
            res = await h.store.create_reservation(ReservationRequest("BAY", 1, "VIS-0002", expiry, "bays"))
            await h.store.update_reservation(res.id, ReservationStatus.ACCEPTED)
            holder = await cp.send("StartTransaction", {"connectorId": 1, "idTag": "vis-0002", "meterStart": 5,
                                                        "timestamp": cp.timestamp(), "reservationId": res.id})
            assert holder["idTagInfo"]["status"] == "Accepted"
            used = await h.store.get_reservation(res.id)
            assert used is not None and used.status == ReservationStatus.USED

    run(scenario())


def test_a_stop_is_answered_on_the_card_alone_while_the_station_is_reserved_for_another(tmp_path: Path) -> None:
    """A driver whose session ran before the whole station was reserved for someone else stops with their card:
    the stop's idTagInfo says what the card is (Accepted), not that the EVSEs are taken; and the answer does not
    wait for a read of the reservations."""
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, h.charger("PUBLIC-1") as cp:
            await cp.wait_online(5)
            start = await cp.send("StartTransaction", {"connectorId": 1, "idTag": "VIS-0001", "meterStart": 0,
                                                       "timestamp": cp.timestamp()})
            assert start["idTagInfo"]["status"] == "Accepted"
            expiry = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
            res = await h.store.create_reservation(ReservationRequest("PUBLIC-1", 0, "VIS-0002", expiry, "bays"))
            await h.store.update_reservation(res.id, ReservationStatus.ACCEPTED)
            assert (await authorize(cp, "VIS-0001"))["status"] == "Invalid"  # a new session: reserved for another
            reads = calls_to(h.store, "list_reservations")
            stop = await cp.send("StopTransaction", {"transactionId": start["transactionId"], "meterStop": 100,
                                                     "timestamp": cp.timestamp(), "idTag": "VIS-0001"})
            assert stop["idTagInfo"]["status"] == "Accepted" and reads == []
            blocked = await cp.send("StopTransaction", {"transactionId": 999, "meterStop": 1,
                                                        "timestamp": cp.timestamp(), "idTag": "EMP-BLOCKED"})
            assert blocked["idTagInfo"]["status"] == "Blocked"  # the card's standing is still decided

    run(scenario())
