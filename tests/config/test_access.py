"""Who may charge where (controller/config/access.py): card status, access rules with nested groups, and
the local authorization list a station gets."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.config import DesiredState, effective_station
from controller.config.access import ACCEPTED, BLOCKED, EXPIRED, ListEntry, card_status, local_list, may_use
from controller.config.model import Access

from .ownerrepo import Doc, card, card_list, desired, evse, group, owner, station

TODAY = dt.date(2026, 6, 15)
STAFF_ONLY = {"mode": "restricted", "groups": ["staff"]}


def cards_repo(*stations: Doc, reverse: bool = False) -> DesiredState:
    """employees (2 cards, one blocked) and contractors (one expired) are included in staff; visitors are not."""
    employees = [card("04A3B2C1D0E9F8", "drv-1"), card("nlevb000123457", "drv-2", blocked=True)]
    contractors = [card("C0A81F2200", "drv-3", validUntil="2026-06-14"),
                   card("c0a81f2201", "drv-4", validUntil="2026-06-15")]
    visitors = [card("VIS0000001", "drv-5"), card("VIS0000002", "drv-6", blocked=True)]
    if reverse:
        employees, contractors, visitors = employees[::-1], contractors[::-1], visitors[::-1]
    docs = [owner(), group("employees", *employees), group("contractors"),
            card_list("contractors-2026", "contractors", *contractors),
            group("staff", card("STAFF00001", "drv-7"), includes=["employees", "contractors"]),
            group("visitors", *visitors), *stations]
    return desired(*(docs[::-1] if reverse else docs))


# --- card status --------------------------------------------------------------------------------------


def test_a_card_is_accepted_up_to_and_including_its_last_valid_day() -> None:
    ds = cards_repo()
    assert card_status(ds.cards["C0A81F2201"], TODAY) == ACCEPTED
    assert card_status(ds.cards["C0A81F2201"], TODAY + dt.timedelta(days=1)) == EXPIRED


def test_a_card_past_its_valid_until_date_is_expired() -> None:
    assert card_status(cards_repo().cards["C0A81F2200"], TODAY) == EXPIRED


def test_a_blocked_card_is_blocked_whatever_its_dates() -> None:
    ds = desired(owner(), group("g", card("04A3B2C1D0E9F8", blocked=True, validUntil="2020-01-01")))
    assert card_status(ds.cards["04A3B2C1D0E9F8"], TODAY) == BLOCKED


def test_a_card_without_dates_is_accepted() -> None:
    assert card_status(cards_repo().cards["04A3B2C1D0E9F8"], TODAY) == ACCEPTED


# --- access rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_tag", "groups", "allowed"),
    [
        ("04A3B2C1D0E9F8", ("employees",), True),
        ("04A3B2C1D0E9F8", ("staff",), True),  # employees are included in staff
        ("C0A81F2201", ("staff",), True),  # contractors too, from their card list
        ("STAFF00001", ("staff",), True),
        ("STAFF00001", ("employees",), False),  # inclusion works one way only
        ("VIS0000001", ("staff",), False),
        ("VIS0000001", ("staff", "visitors"), True),
        ("UNKNOWN0001", ("staff", "visitors"), False),
    ],
)
def test_restricted_access_lets_in_cards_of_the_listed_groups_and_of_groups_they_include(
        id_tag: str, groups: tuple[str, ...], allowed: bool) -> None:
    assert may_use(cards_repo(), Access("restricted", groups), id_tag) is allowed


def test_public_access_lets_in_any_card_the_owner_knows_and_no_other() -> None:
    ds = cards_repo()
    assert may_use(ds, Access("public"), "VIS0000001")
    assert may_use(ds, Access("public"), "NLEVB000123457")  # blocked is a status, decided afterwards
    assert not may_use(ds, Access("public"), "UNKNOWN0001")


def test_group_membership_follows_includes_through_several_levels() -> None:
    ds = desired(owner(), group("a", includes=["b"]), group("b", includes=["c"]), group("c", card("DEEP000001")))
    assert may_use(ds, Access("restricted", ("a",)), "DEEP000001")
    assert ds.card_groups["DEEP000001"] == frozenset({"a", "b", "c"})


# --- local authorization list --------------------------------------------------------------------------


def entries(ds: DesiredState, name: str = "st-1") -> tuple[ListEntry, ...]:
    return local_list(ds, effective_station(ds, ds.stations[name]), TODAY)


def test_a_public_station_gets_every_card_blocked_first_then_accepted_then_expired() -> None:
    ds = cards_repo(station(offlineAuthorization=True))
    got = [(e.id_tag, e.status) for e in entries(ds)]
    assert got == [
        ("nlevb000123457", BLOCKED), ("VIS0000002", BLOCKED),
        ("04A3B2C1D0E9F8", ACCEPTED), ("c0a81f2201", ACCEPTED), ("STAFF00001", ACCEPTED), ("VIS0000001", ACCEPTED),
        ("C0A81F2200", EXPIRED),
    ]


def test_a_restricted_station_gets_only_the_cards_of_its_groups() -> None:
    ds = cards_repo(station(offlineAuthorization=True, access=STAFF_ONLY))
    got = [(e.id_tag, e.status) for e in entries(ds)]
    assert got == [("nlevb000123457", BLOCKED), ("04A3B2C1D0E9F8", ACCEPTED), ("c0a81f2201", ACCEPTED),
                   ("STAFF00001", ACCEPTED), ("C0A81F2200", EXPIRED)]


def test_one_public_evse_opens_the_list_to_every_card() -> None:
    ds = cards_repo(station(offlineAuthorization=True, access=STAFF_ONLY,
                            evses=[evse(1), evse(2, access={"mode": "public"})]))
    assert len(entries(ds)) == len(ds.cards)


def test_evses_restricted_to_different_groups_share_one_list_with_both() -> None:
    ds = cards_repo(station(offlineAuthorization=True, evses=[
        evse(1, access={"mode": "restricted", "groups": ["employees"]}),
        evse(2, access={"mode": "restricted", "groups": ["visitors"]})]))
    assert sorted(e.id_tag.upper() for e in entries(ds)) == [
        "04A3B2C1D0E9F8", "NLEVB000123457", "VIS0000001", "VIS0000002"]


def test_entries_carry_the_expiry_of_accepted_cards_and_the_group_as_parent_id_tag() -> None:
    ds = cards_repo(station(offlineAuthorization=True, access=STAFF_ONLY))
    by_tag = {e.id_tag: e for e in entries(ds)}
    assert by_tag["c0a81f2201"] == ListEntry("c0a81f2201", ACCEPTED, dt.date(2026, 6, 15), "contractors")
    assert by_tag["C0A81F2200"].expiry_date is None
    assert by_tag["04A3B2C1D0E9F8"] == ListEntry("04A3B2C1D0E9F8", ACCEPTED, None, "employees")


def test_the_list_does_not_depend_on_the_order_of_documents_and_cards() -> None:
    a = cards_repo(station(offlineAuthorization=True))
    b = cards_repo(station(offlineAuthorization=True), reverse=True)
    assert entries(a) == entries(b)


def test_the_list_is_empty_when_offline_authorization_is_off() -> None:
    ds = cards_repo(station(offlineAuthorization=False))
    assert entries(ds) == ()


def test_the_list_is_empty_for_a_station_that_is_not_activated() -> None:
    ds = cards_repo(station(offlineAuthorization=True, activation={"plan": "standard", "activated": False}))
    assert entries(ds) == ()
