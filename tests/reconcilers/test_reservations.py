"""Reservations reconciler (controller/reconcilers/reservations.py): reservations are cancelled where the
station or EVSE stops being reservable, and kept where it still is."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.config import DesiredState
from controller.reconcilers import Kind, PendingReservation, plan_station

from .kit import NOW, charger, evse, policy, repo, station


def bookable(evse1: str, evse2: str) -> DesiredState:
    return repo(policy("bookable"), policy("walk-in", reservable=False),
                station("st-1", evses=[evse(1, reservationPolicy=evse1), evse(2, reservationPolicy=evse2)]))


def cancelled(ds: DesiredState, *pending: PendingReservation) -> list[tuple[int, str]]:
    plan = plan_station(ds, "ST-1", charger(connectors={0: "Available", 1: "Available", 2: "Available"}), NOW,
                        pending_reservations=pending)
    return [(a.payload["reservationId"], a.reason) for a in plan.actions if a.kind is Kind.CANCEL_RESERVATION]


@pytest.mark.parametrize(("evse1", "evse2", "expected"), [
    ("bookable", "bookable", []),
    ("walk-in", "bookable", [(1, "EVSE 1 is no longer reservable")]),
    ("walk-in", "walk-in", [(1, "EVSE 1 is no longer reservable"), (3, "no EVSE of the station is reservable")]),
], ids=["still-reservable", "one-evse-stops", "station-stops"])
def test_reservations_are_cancelled_where_the_evse_stops_being_reservable(evse1: str, evse2: str,
                                                                          expected: list[tuple[int, str]]) -> None:
    pending = [PendingReservation(1, 1), PendingReservation(3, 0)]
    assert cancelled(bookable(evse1, evse2), *pending) == expected


def test_a_reservation_on_an_evse_no_longer_declared_or_inoperative_is_cancelled() -> None:
    ds = repo(policy("bookable"), station("st-1", evses=[evse(1, reservationPolicy="bookable",
                                                              availability="inoperative")]))
    assert cancelled(ds, PendingReservation(4, 1), PendingReservation(5, 2)) == [
        (4, "EVSE 1 is declared inoperative"), (5, "connector 2 is no longer declared")]


def test_an_expired_reservation_is_left_to_the_charger() -> None:
    gone = PendingReservation(6, 1, expiry=NOW - dt.timedelta(minutes=1))
    assert cancelled(bookable("walk-in", "walk-in"), gone) == []
