"""Reservation rules (controller/reservations/rules.py), pure and on a fake clock: the policy checks and
where a booking goes, where an activation tries, and what a reservation needs next."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from controller.config import DesiredState
from controller.config.effective import EffectiveStation, effective_station
from controller.reservations.rules import (
    Attempt,
    Booking,
    Placement,
    Refusal,
    Slot,
    Step,
    Terms,
    Wish,
    next_step,
    place,
    targets,
)
from controller.store.records import ReservationStatus as S
from tests.config.ownerrepo import card, desired, evse, group, owner, policy, station

NOW = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def repo(**station_spec: object) -> DesiredState:
    station_spec.setdefault("evses", [evse(1), evse(2), evse(3, availability="inoperative")])
    return desired(
        owner(),
        group("drivers", card("DRV-0001", "d1"), card("DRV-OLD", "d2", validUntil="2025-05-01"),
              card("DRV-BLOCK", "d3", blocked=True)),
        group("staff", card("STF-0001", "d4")),
        policy("bays", allowedGroups=["drivers"], maxDurationMinutes=60, bufferMinutes=10, graceMinutes=15,
               fee="1.00", noShowFee="5.00"),
        policy("closed", reservable=False),
        station("st-1", reservationPolicy="bays", **station_spec),  # type: ignore[arg-type]
    )


def eff(ds: DesiredState) -> EffectiveStation:
    return effective_station(ds, ds.stations["st-1"])


def wish(evse_id: int | None = None, *, tag: str = "DRV-0001", start: dt.datetime = NOW, minutes: float = 30) -> Wish:
    return Wish(tag, evse_id, start, dt.timedelta(minutes=minutes))


def slot(evse_id: int, start: dt.datetime, minutes: int = 30, buffer: int = 10) -> Slot:
    return Slot(99, evse_id, start - dt.timedelta(minutes=buffer), start + dt.timedelta(minutes=minutes))


def code(result: Placement | Refusal) -> str:
    assert isinstance(result, Refusal), result
    return result.code


@pytest.mark.parametrize(("asked", "expected"), [
    (wish(tag="NOBODY"), "card_invalid"),
    (wish(tag="DRV-BLOCK"), "card_invalid"),
    (wish(tag="DRV-OLD", start=NOW + dt.timedelta(days=1)), "card_invalid"),
    (wish(tag="STF-0001"), "group_not_allowed"),
    (wish(minutes=61), "too_long"),
    (wish(3), "evse_inoperative"),
    (wish(7), "evse_not_found"),
], ids=["unknown", "blocked", "expires-before-start", "group", "too-long", "inoperative", "no-such-evse"])
def test_a_booking_the_policy_does_not_allow_is_refused_with_its_code(asked: Wish, expected: str) -> None:
    ds = repo()
    assert code(place(ds, eff(ds), asked, [], NOW)) == expected


def test_an_evse_without_a_reservable_policy_is_not_reservable() -> None:
    ds = repo(evses=[evse(1, reservationPolicy="closed"), evse(2, reservationPolicy="closed")])
    assert code(place(ds, eff(ds), wish(), [], NOW)) == "not_reservable"


def test_a_station_that_is_not_activated_takes_no_booking() -> None:
    ds = desired(owner(), group("drivers", card("DRV-0001", "d1")), policy("bays"),
                 station("st-1", reservationPolicy="bays", activation={"plan": "standard", "activated": False}))
    assert code(place(ds, eff(ds), wish(), [], NOW)) == "station_not_active"


def test_overlap_counts_the_buffer_before_a_future_booking_on_the_same_evse_only() -> None:
    ds = repo()
    later = NOW + dt.timedelta(hours=1)
    # [11:50, 12:30) against a booking held from 12:50: free; ending at 12:55 runs into its buffer
    assert place(ds, eff(ds), wish(1), [slot(1, later)], NOW) == Placement(1, Terms.of(ds.reservation_policies["bays"]))
    assert code(place(ds, eff(ds), wish(1, minutes=55), [slot(1, later)], NOW)) == "overlap"
    assert isinstance(place(ds, eff(ds), wish(2, minutes=55), [slot(1, later)], NOW), Placement)
    # a booking on "any EVSE" (connector 0) overlaps every EVSE of the station
    assert code(place(ds, eff(ds), wish(2), [slot(0, NOW)], NOW)) == "overlap"


def test_without_an_evse_the_first_free_one_is_taken_and_refusals_report_the_furthest_check() -> None:
    ds = repo()
    both = [slot(1, NOW), slot(2, NOW)]
    assert code(place(ds, eff(ds), wish(), both, NOW)) == "overlap"  # EVSE 3 is inoperative: overlap tells more
    got = place(ds, eff(ds), wish(), [slot(1, NOW)], NOW)
    assert isinstance(got, Placement) and got.evse == 2
    # holding now: an EVSE the charger reports Available goes first
    got = place(ds, eff(ds), wish(), [], NOW, observed={1: "Charging", 2: "Available"})
    assert isinstance(got, Placement) and got.evse == 2
    # a future booking ignores what the connectors show today
    got = place(ds, eff(ds), wish(start=NOW + dt.timedelta(hours=2)), [], NOW, observed={1: "Charging"})
    assert isinstance(got, Placement) and got.evse == 1


def test_connector_zero_only_when_the_charger_supports_it_and_every_evse_would_take_the_booking() -> None:
    ds = repo(evses=[evse(1), evse(2)])
    assert place(ds, eff(ds), wish(), [], NOW, zero_supported=True) == Placement(
        0, Terms.of(ds.reservation_policies["bays"]))
    got = place(ds, eff(ds), wish(), [slot(2, NOW)], NOW, zero_supported=True)
    assert isinstance(got, Placement) and got.evse == 1
    got = place(ds, eff(ds), wish(2), [], NOW, zero_supported=True)
    assert isinstance(got, Placement) and got.evse == 2


def test_an_activation_tries_the_evse_held_then_others_that_would_take_it_unless_pinned() -> None:
    ds = repo(evses=[evse(1), evse(2), evse(3), evse(4, availability="inoperative")])
    terms = Terms.of(ds.reservation_policies["bays"])
    free = Booking(NOW, 30 * MIN, pinned=False)
    assert targets(ds, eff(ds), 1, free, terms, "DRV-0001", [slot(3, NOW)], NOW) == [1, 2]
    assert targets(ds, eff(ds), 1, free, terms, "DRV-0001", [], NOW, observed={2: "Faulted", 3: "Available"}) \
        == [1, 3, 2]
    assert targets(ds, eff(ds), 1, Booking(NOW, 30 * MIN, pinned=True), terms, "DRV-0001", [], NOW) == [1]
    assert targets(ds, eff(ds), 0, free, terms, "DRV-0001", [], NOW, zero_supported=True) == [0, 1, 2, 3]
    assert targets(ds, eff(ds), 0, free, terms, "DRV-0001", [], NOW) == [1, 2, 3]


TERMS = Terms("bays", Decimal("1.00"), Decimal("5.00"), grace_minutes=15, buffer_minutes=10)
BOOKED = Booking(NOW, 60 * MIN, pinned=False)  # held from 11:50, no-show at 12:15


@pytest.mark.parametrize(("status", "now", "flags", "expected"), [
    (S.SCHEDULED, NOW - 20 * MIN, {}, (Step.WAIT, NOW - 10 * MIN)),
    (S.SCHEDULED, NOW - 10 * MIN, {}, (Step.ACTIVATE, NOW + 15 * MIN)),
    (S.SCHEDULED, NOW + 15 * MIN, {}, (Step.LAPSE, None)),
    (S.REQUESTED, NOW, {}, (Step.SEND, NOW + 15 * MIN)),
    (S.REQUESTED, NOW, {"retry_at": NOW + MIN}, (Step.WAIT, NOW + MIN)),
    (S.REQUESTED, NOW, {"retry_at": NOW + MIN, "resend": True}, (Step.SEND, NOW + 15 * MIN)),
    (S.REQUESTED, NOW + 15 * MIN, {}, (Step.LAPSE, None)),
    (S.ACCEPTED, NOW, {}, (Step.WAIT, NOW + 15 * MIN)),
    (S.ACCEPTED, NOW, {"resend": True}, (Step.SEND, NOW + 15 * MIN)),
    (S.ACCEPTED, NOW + 15 * MIN, {}, (Step.NO_SHOW, None)),
    (S.USED, NOW, {}, (Step.DONE, None)),
    (S.CANCELLED, NOW, {"resend": True}, (Step.DONE, None)),
])
def test_next_step_follows_the_hold_the_deadline_and_resends(status: S, now: dt.datetime,
                                                              flags: dict[str, object],
                                                              expected: tuple[Step, dt.datetime | None]) -> None:
    assert next_step(status, BOOKED, TERMS, now, **flags) == expected  # type: ignore[arg-type]


def test_the_no_show_deadline_is_the_grace_period_or_the_whole_slot_if_shorter() -> None:
    assert BOOKED.deadline(TERMS) == NOW + 15 * MIN
    assert Booking(NOW, 5 * MIN, pinned=True).deadline(TERMS) == NOW + 5 * MIN


def test_terms_and_bookings_round_trip_through_the_store_and_old_rows_get_defaults() -> None:
    assert TERMS.to_json() == ('{"name":"bays","fee":"1.00","noShowFee":"5.00","graceMinutes":15,'
                               '"bufferMinutes":10}')
    assert Terms.from_json(TERMS.to_json()) == TERMS
    assert Terms.from_json("bays") == Terms("bays")
    assert Terms.from_json('{"name": "x", "fee": "oops", "graceMinutes": -1}') == Terms("x")
    full = Booking(NOW, 90 * MIN, pinned=True, attempts=(Attempt(1, "Occupied", NOW),),
                   failure=Refusal("occupied", "EVSE 1 answered Occupied"), ended_at=NOW)
    assert Booking.from_state(full.to_state()) == full
