"""Access reconciler (controller/reconcilers/access.py): the local list — Full, Differential, chunks,
capacity, versions — revocation with Blocked entries and ClearCache, content-addressed snapshots."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import pytest

from controller.config import DesiredState, validate_sources
from controller.config.access import ListEntry
from controller.reconcilers import Kind, Level, Plan
from controller.reconcilers.access import snapshot_hash

from ..config.ownerrepo import sources
from .kit import NOW, FakeCharger, card, charger, group, kinds, owner, repo, station

OFFLINE: dict[str, Any] = {"offlineAuthorization": True}
TAGS = ["04A3B2C1D0E9F8", "1111AAAA", "2222BBBB", "3333CCCC", "4444DDDD"]


def lists(plan: Plan) -> list[tuple[int, str, list[str]]]:
    """(version, updateType, idTags with status or 'delete') of every SendLocalList."""
    return [(a.payload["listVersion"], a.payload["updateType"],
             [f"{e['idTag']}:{e['idTagInfo']['status']}" if "idTagInfo" in e else f"{e['idTag']}:delete"
              for e in a.payload["localAuthorizationList"]])
            for a in plan.actions if a.kind is Kind.SEND_LOCAL_LIST]


def cards_repo(tags: list[str] = TAGS, *, blocked: tuple[str, ...] = (), **spec: Any) -> DesiredState:
    return repo(group("staff", *[card(t, blocked=t in blocked) for t in tags]),
                station("st-1", **{**OFFLINE, **spec}))


def synced(ds: DesiredState, **kw: Any) -> FakeCharger:
    """A charger whose list (and configuration) already matches `ds`."""
    fc = FakeCharger(charger(**kw))
    fc.apply(fc.plan(ds))
    assert fc.plan(ds).actions == ()
    return fc


def test_the_first_push_is_a_full_list_after_offline_authorization_is_enabled() -> None:
    plan = FakeCharger(charger()).plan(cards_repo())
    assert lists(plan) == [(1, "Full", [f"{t}:Accepted" for t in sorted(TAGS)])]
    features = [a for a in plan.actions if a.kind is Kind.CHANGE_CONFIGURATION]
    assert {str(a.payload["key"]) for a in features} == {"LocalAuthListEnabled", "LocalAuthorizeOffline"}
    assert plan.actions.index(features[-1]) < kinds(plan).index("SendLocalList")  # features before data


def test_a_full_list_is_chunked_by_send_local_list_max_length_with_increasing_versions() -> None:
    plan = FakeCharger(charger(config={"SendLocalListMaxLength": "2"}, local_list_version=7,
                               local_list_mismatch=True)).plan(cards_repo())
    t = sorted(TAGS)
    assert lists(plan) == [(8, "Full", [f"{t[0]}:Accepted", f"{t[1]}:Accepted"]),
                           (9, "Differential", [f"{t[2]}:Accepted", f"{t[3]}:Accepted"]),
                           (10, "Differential", [f"{t[4]}:Accepted"])]
    records = [a.record["localListHash"] for a in plan.actions if a.kind is Kind.SEND_LOCAL_LIST]
    assert records[:2] == [None, None] and records[2] is not None  # only the complete list has a snapshot


@cache
def big_repo(extra: int = 0) -> DesiredState:
    """5,000 cards in one group (a CardList file written as text: fast), plus `extra` more."""
    lines = ["apiVersion: chargeops.io/v1", "kind: CardList", "metadata: {name: fleet-cards}",
             "spec:", "  group: fleet", "  cards:"]
    lines += [f'    - {{idTag: "FLEET{i:06d}", driver: "drv-{i:05d}"}}' for i in range(5000 + extra)]
    files = [*sources(owner(), group("fleet"), station("st-1", **OFFLINE), station("st-2", **OFFLINE)),
             ("cards.yaml", "\n".join(lines).encode())]
    result = validate_sources(files)
    assert result.desired is not None, result.errors[:3]
    return result.desired


def test_adding_one_card_to_a_group_of_5000_sends_one_differential_entry_per_station() -> None:
    before, after = big_repo(), big_repo(extra=1)
    for identity in ("ST-1", "ST-2"):
        fc = synced(before, identity=identity)
        assert fc.obs.local_list_version == 1 and len(fc.list_entries) == 5000
        plan = fc.plan(after)
        assert lists(plan) == [(2, "Differential", ["FLEET005000:Accepted"])]
        assert kinds(plan) == ["SendLocalList"]
        fc.apply(plan)
        assert len(fc.list_entries) == 5001 and fc.plan(after).actions == ()


def test_both_stations_holding_the_same_list_share_one_snapshot_hash() -> None:
    a, b = synced(big_repo(), identity="ST-1"), synced(big_repo(), identity="ST-2")
    assert a.obs.local_list_hash == b.obs.local_list_hash is not None


def test_a_snapshot_hash_depends_on_content_not_order() -> None:
    e1 = ListEntry("AAAA0001", "Accepted", None, "g")
    e2 = ListEntry("BBBB0002", "Blocked", None, "g")
    assert snapshot_hash([e1, e2]) == snapshot_hash([e2, e1]) != snapshot_hash([e1])
    assert snapshot_hash([e1]) != snapshot_hash([dataclasses.replace(e1, status="Expired")])


def test_a_blocked_card_is_pushed_as_blocked_not_deleted_then_the_cache_is_cleared() -> None:
    fc = synced(cards_repo())
    plan = fc.plan(cards_repo(blocked=("2222BBBB",)))
    assert lists(plan) == [(2, "Differential", ["2222BBBB:Blocked"])]
    assert kinds(plan) == ["SendLocalList", "ClearCache"]
    assert "****BBBB" in plan.actions[1].reason and "2222BBBB" not in plan.actions[1].reason
    fc.apply(plan)
    assert fc.plan(cards_repo(blocked=("2222BBBB",))).actions == ()


def test_a_card_removed_from_the_group_is_deleted_from_the_list_then_the_cache_is_cleared() -> None:
    fc = synced(cards_repo())
    plan = fc.plan(cards_repo([t for t in TAGS if t != "3333CCCC"]))
    assert lists(plan) == [(2, "Differential", ["3333CCCC:delete"])]
    assert kinds(plan) == ["SendLocalList", "ClearCache"]


def test_a_blocked_card_clears_the_cache_of_a_station_without_a_local_list_too() -> None:
    ds = repo(group("staff", *[card(t, blocked=t == "1111AAAA") for t in TAGS]), station("st-1"))
    fc = FakeCharger(charger())
    plan = fc.plan(ds)
    assert kinds(plan) == ["ClearCache"]
    fc.apply(plan)
    assert fc.plan(ds).actions == ()


@pytest.mark.parametrize(("observed", "why"), [
    ({"local_list_version": 3, "local_list_mismatch": True}, "Failed / VersionMismatch"),
    ({"local_list_version": 3, "local_list_hash": None}, "unknown (not sent by chargeops)"),
    ({"local_list_version": None}, "version is not known"),
    ({"local_list_version": 0}, "list is empty"),
], ids=["version-mismatch", "list-not-ours", "version-unknown", "list-was-wiped"])
def test_the_whole_list_is_sent_when_the_chargers_list_cannot_be_trusted(observed: dict[str, Any], why: str) -> None:
    fc = synced(cards_repo())
    fc.obs = dataclasses.replace(fc.obs, **observed)
    plan = fc.plan(cards_repo(blocked=("2222BBBB",)))
    ((version, update, entries),) = lists(plan)
    assert (update, len(entries)) == ("Full", 5) and why in plan.actions[0].reason
    assert version == (observed["local_list_version"] or 0) + 1


def test_list_versions_only_increase() -> None:
    fc = synced(cards_repo(), local_list_version=41, local_list_mismatch=True)
    assert fc.obs.local_list_version == 42
    assert lists(fc.plan(cards_repo(TAGS[:4])))[0][0] == 43


def test_a_list_that_does_not_fit_is_cut_deterministically_with_a_warning() -> None:
    tags = [*TAGS, "0000ZZZZ"]
    plans = [FakeCharger(charger(config={"LocalAuthListMaxLength": "3"})).plan(ds) for ds in (
        cards_repo(tags, blocked=("4444DDDD",)), cards_repo(tags[::-1], blocked=("4444DDDD",)))]
    assert lists(plans[0]) == lists(plans[1]) == [
        (1, "Full", ["4444DDDD:Blocked", "0000ZZZZ:Accepted", "04A3B2C1D0E9F8:Accepted"])]
    assert [n.text for n in plans[0].notes if n.level is Level.WARNING] == [
        "local list does not fit: 6 cards, capacity 3 — the first 3 in order are sent (blocked first, then "
        "accepted by idTag, then expired)"]


def test_a_differential_no_smaller_than_the_list_is_sent_as_a_full_list() -> None:
    fc = synced(cards_repo(TAGS[:2]))
    plan = fc.plan(cards_repo(TAGS[2:4]))
    assert [(v, u) for v, u, _ in lists(plan)] == [(2, "Full")]


def test_turning_offline_authorization_off_empties_the_list_once() -> None:
    fc = synced(cards_repo())
    off = cards_repo(offlineAuthorization=False)
    plan = fc.plan(off)
    assert lists(plan) == [(2, "Full", [])]
    assert {str(a.payload["key"]): a.payload["value"] for a in plan.actions
            if a.kind is Kind.CHANGE_CONFIGURATION} == {"LocalAuthListEnabled": "false",
                                                        "LocalAuthorizeOffline": "false"}
    fc.apply(plan)
    assert fc.list_entries == {} and fc.plan(off).actions == ()


def test_a_charger_without_local_list_support_gets_no_list_and_a_note() -> None:
    plan = FakeCharger(charger(local_list_version=-1)).plan(cards_repo())
    assert "SendLocalList" not in kinds(plan)
    assert any("does not support local lists" in n.text for n in plan.notes)


def test_expiry_dates_go_on_the_wire_as_the_end_of_the_last_valid_day_in_the_owners_zone() -> None:
    ds = repo(group("staff", card("1111AAAA", validUntil="2026-12-31")), station("st-1", **OFFLINE))
    (send,) = [a for a in FakeCharger(charger()).plan(ds, now=NOW).actions if a.kind is Kind.SEND_LOCAL_LIST]
    info = send.payload["localAuthorizationList"][0]["idTagInfo"]
    assert info == {"status": "Accepted", "expiryDate": "2026-12-31T23:00:00Z", "parentIdTag": "staff"}
