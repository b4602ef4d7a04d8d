"""Shared plans: stations with equal planning inputs get one plan, made out to each; any input that differs
(observed, declared, secrets, the accepted list, the time) gets a plan of its own, always equal to what
`plan_station` makes for that station."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from controller.config import DesiredState, ocpp16_keys
from controller.config.access import ListEntry
from controller.config.ocpp16_keys import config_key
from controller.reconcilers import ObservedStation, Plan, plan_station
from controller.reconcilers.observed import PendingReboot, Refusal
from controller.reconcilers.planner import PendingReservation
from controller.runtime.planshare import HORIZON, SharedPlans, _with, made_out_to
from tests.reconcilers.kit import NOW, charger, evse, profile, repo, station, tariff

SECOND = dt.timedelta(seconds=1)
FLEET = {"fleet": "a"}
HB_900 = profile("fleet", {"ocppConfiguration": {"HeartbeatInterval": 900}}, selector={"labels": FLEET})


def fleet(*stations: Any, extra: tuple[Any, ...] = ()) -> DesiredState:
    docs = stations or tuple(station(f"st-{i}", labels=dict(FLEET)) for i in range(1, 6))
    return repo(HB_900, *docs, *extra)


def direct(ds: DesiredState, identity: str, observed: ObservedStation, now: dt.datetime, **kw: Any) -> Plan:
    return plan_station(ds, identity, observed, now, **kw)


def test_stations_with_equal_inputs_share_one_plan_made_out_to_each() -> None:
    ds = fleet()
    shared = SharedPlans()
    plans = {}
    for i in range(1, 6):
        asked = f"st-{i}" if i == 3 else f"ST-{i}"  # identities are case-insensitive: the declared one is used
        plans[i] = shared.plan(ds, asked, charger(f"ST-{i}"), NOW + i * dt.timedelta(milliseconds=10))
    assert (shared.planned, shared.shared) == (1, 4)
    for i, plan in plans.items():
        assert plan == direct(ds, f"ST-{i}", charger(f"ST-{i}"), NOW + i * dt.timedelta(milliseconds=10))
        assert plan.station == f"ST-{i}" and plan.name == f"st-{i}"
        assert [dict(a.payload) for a in plan.actions][:1] == [{"key": "HeartbeatInterval", "value": "900"}]
        assert all(d["station"] == f"ST-{i}" for d in plan.to_dict()["actions"])  # whom they go to: the plan's
        assert plan.actions == plans[1].actions  # the very actions of the class's plan, not copies


Variant = Callable[[], tuple[DesiredState, ObservedStation, dict[str, Any]]]
BASE_STATIONS = (station("st-1", labels=dict(FLEET)),)


def observed_variant(**fields: Any) -> Variant:
    def make() -> tuple[DesiredState, ObservedStation, dict[str, Any]]:
        ds = fleet(*BASE_STATIONS, station("st-2", labels=dict(FLEET)))
        return ds, dataclasses.replace(charger("ST-2"), **fields), {}
    return make


def config_variant(config: dict[str, str | None], **kw: Any) -> Variant:
    def make() -> tuple[DesiredState, ObservedStation, dict[str, Any]]:
        ds = fleet(*BASE_STATIONS, station("st-2", labels=dict(FLEET)))
        return ds, charger("ST-2", config, **kw), {}
    return make


def declared_variant(*docs: Any, extra: tuple[Any, ...] = (), config: dict[str, str | None] | None = None,
                     base: tuple[Any, ...] = BASE_STATIONS, **fields: Any) -> Variant:
    def make() -> tuple[DesiredState, ObservedStation, dict[str, Any]]:
        return fleet(*base, *docs, extra=extra), dataclasses.replace(charger("ST-2", config), **fields), {}
    return make


def argument_variant(**kw: Any) -> Variant:
    def make() -> tuple[DesiredState, ObservedStation, dict[str, Any]]:
        ds = fleet(*BASE_STATIONS, station("st-2", labels=dict(FLEET)))
        return ds, charger("ST-2"), kw
    return make


CDCP = {"CustomDisplayCostAndPrice": "true"}
PEAK = {"name": "peak", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "12:10", "end": "21:00",
        "price": {"perKwh": "0.50"}}
ENTRY = ListEntry("CARD-1", "Accepted", None, "drivers")
VARIANTS: dict[str, Variant] = {
    "the key already at its value": config_variant({"HeartbeatInterval": "900"}),
    "another value of an unrelated key": config_variant({"MeterValueSampleInterval": "30"}),
    "the key read-only": config_variant({}, readonly=["HeartbeatInterval"]),
    "the key unknown": config_variant({}, drop=["HeartbeatInterval"], unknown=["HeartbeatInterval"]),
    "no local list": config_variant({"SupportedFeatureProfiles": "Core,Reservation"}),
    "prices shown": config_variant(CDCP),
    "offline": observed_variant(online=False),
    "another vendor": observed_variant(vendor="Other", model="M", firmware="1"),
    "a vendor its own profile selects": declared_variant(
        station("st-2", labels=dict(FLEET)),
        extra=(profile("other-vendor", {"ocppConfiguration": {"MeterValueSampleInterval": 30}},
                       selector={"boot": {"vendor": "Other"}}),), vendor="Other", model="M", firmware="1"),
    "list version unknown": observed_variant(local_list_version=None),
    "list version 3, hash known": observed_variant(local_list_version=3, local_list_hash="sha256:x"),
    "list mismatch": observed_variant(local_list_mismatch=True),
    "connector unavailable": observed_variant(connectors={0: "Available", 1: "Unavailable"}),
    "a session running": observed_variant(sessions=frozenset({1})),
    "a reboot pending": observed_variant(pending_reboot=PendingReboot(NOW - SECOND, {"HEARTBEATINTERVAL": "900"}),
                                         sessions=frozenset({1})),
    "the key refused": observed_variant(refused={"HEARTBEATINTERVAL": Refusal("Rejected", "900", NOW - SECOND)}),
    "the key sent, unconfirmed": observed_variant(unconfirmed={"HEARTBEATINTERVAL": "900"}),
    "the key applied before": observed_variant(applied={"HEARTBEATINTERVAL": "900"}),
    "a write-only key sent": observed_variant(write_only_sent={"AUTHORIZATIONKEY": "sha256:y"}),
    "an availability scheduled": observed_variant(scheduled_availability={1: "Inoperative"}),
    "cache cleared for a list": observed_variant(cache_cleared_hash="sha256:z"),
    "never read": observed_variant(read_at=None),
    "a profile of its own": declared_variant(
        station("st-2", labels={**FLEET, "own": "yes"}),
        extra=(profile("own", {"ocppConfiguration": {"HeartbeatInterval": 600}}, priority=10,
                       selector={"labels": {"own": "yes"}}),)),
    "outside the profile's selector": declared_variant(station("st-2", labels={"fleet": "b"})),
    "two EVSEs": declared_variant(station("st-2", labels=dict(FLEET), evses=[evse(1), evse(2)])),
    "an EVSE inoperative": declared_variant(station("st-2", labels=dict(FLEET),
                                                    evses=[evse(1, availability="inoperative")])),
    "not activated": declared_variant(station("st-2", labels=dict(FLEET),
                                              activation={"plan": "standard", "activated": False})),
    "removed": declared_variant(),
    "a tariff shown in another time zone": declared_variant(  # 12:00 in Amsterdam (peak), 06:00 in New York
        station("st-2", labels=dict(FLEET), tariff="standard", timezone="America/New_York"),
        extra=(tariff("standard", displayText="0.35 EUR/kWh", windows=[PEAK]),), config=CDCP,
        base=(station("st-1", labels=dict(FLEET), tariff="standard"),)),
    "a secret": argument_variant(secrets={"AuthorizationKey": "0123456789abcdef0123"}),
    "an accepted list": argument_variant(snapshot_entries=(ENTRY,)),
    "a reservation pending": argument_variant(pending_reservations=(PendingReservation(7, 1, None),)),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_station_whose_inputs_differ_in_one_thing_gets_the_plan_planned_for_it(name: str) -> None:
    ds, observed, kw = VARIANTS[name]()
    shared = SharedPlans()
    base_observed = charger("ST-1", CDCP if "tariff" in name else None)
    base = shared.plan(ds, "ST-1", base_observed, NOW)
    assert base == direct(ds, "ST-1", base_observed, NOW)
    got = shared.plan(ds, "ST-2", observed, NOW + SECOND / 10, **kw)
    assert got == direct(ds, "ST-2", observed, NOW + SECOND / 10, **kw)


def test_the_variants_do_change_the_plan() -> None:
    """The test above has teeth: nearly every variant's own plan differs from the base plan made out to it."""
    same = []
    for name, make in VARIANTS.items():
        ds, observed, kw = make()
        base_observed = charger("ST-1", CDCP if "tariff" in name else None)
        base = direct(ds, "ST-1", base_observed, NOW)
        own = direct(ds, "ST-2", observed, NOW, **kw)
        made_out = dataclasses.replace(base, station=own.station, name=own.name)
        if own == made_out:
            same.append(name)
    # inputs that do not change this plan, so sharing it would be right too (the test above still checks
    # they get a plan equal to their own): an unrelated key's value, a vendor no profile selects, what only
    # matters with offline authorization on (list mismatch, accepted list), a write-only key nobody declares,
    # a session while no reboot waits, an availability already scheduled as declared
    assert set(same) == {"another value of an unrelated key", "another vendor", "list mismatch", "a session running",
                         "a write-only key sent", "an availability scheduled", "an accepted list"}, same


def test_a_plan_is_not_reused_at_its_review_time_nor_after_the_horizon_nor_before_it_was_made() -> None:
    ds = repo(tariff("standard", windows=[PEAK], displayText="0.35 EUR/kWh"),
              *(station(f"st-{i}", tariff="standard") for i in range(1, 7)))
    review = dt.datetime(2026, 6, 17, 10, 10, tzinfo=dt.UTC)  # 12:10 in Amsterdam: the peak window starts
    start = review - SECOND / 2
    shared = SharedPlans()
    first = shared.plan(ds, "ST-1", charger("ST-1", CDCP), start)
    assert first.next_review_at == review
    cases = [("ST-2", start + SECOND / 4, True), ("ST-3", review, False), ("ST-4", start - SECOND / 100, False)]
    for identity, now, reused in cases:
        before = shared.shared
        got = shared.plan(ds, identity, charger(identity, CDCP), now)
        assert got == direct(ds, identity, charger(identity, CDCP), now), identity
        assert (shared.shared == before + 1) is reused, identity
    later = dt.datetime(2026, 6, 17, 13, 1, tzinfo=dt.UTC)  # no review in sight: only the horizon ends it
    shared.plan(ds, "ST-5", charger("ST-5", CDCP), later)
    before = shared.shared
    shared.plan(ds, "ST-6", charger("ST-6", CDCP), later + HORIZON)
    assert shared.shared == before


def test_a_plan_is_not_reused_across_a_quarter_hour() -> None:
    ds = fleet()
    shared = SharedPlans()
    quarter = dt.datetime(2026, 6, 17, 21, 45, tzinfo=dt.UTC)  # 23:45 in Amsterdam; midnight somewhere
    shared.plan(ds, "ST-1", charger("ST-1"), quarter - SECOND / 2)
    shared.plan(ds, "ST-2", charger("ST-2"), quarter - SECOND / 4)
    shared.plan(ds, "ST-3", charger("ST-3"), quarter + SECOND / 4)
    assert (shared.planned, shared.shared) == (2, 1)


def test_a_new_desired_state_plans_again() -> None:
    shared = SharedPlans()
    shared.plan(fleet(), "ST-1", charger("ST-1"), NOW)
    other = fleet()  # equal content, another revision object: plans are kept per desired state
    got = shared.plan(other, "ST-2", charger("ST-2"), NOW)
    assert got == direct(other, "ST-2", charger("ST-2"), NOW)
    assert (shared.planned, shared.shared) == (2, 0)


def test_classes_are_bounded() -> None:
    ds = fleet()
    shared = SharedPlans(per_bucket=2, max_buckets=2)
    for value in ("1", "2", "3"):  # one bucket (same profiles, list, firmware, model), three classes
        shared.plan(ds, "ST-1", charger("ST-1", {"MeterValueSampleInterval": value}), NOW)
    assert [len(b) for b in shared._buckets.values()] == [2]
    shared.plan(ds, "ST-2", charger("ST-2", {"MeterValueSampleInterval": "1"}), NOW)  # the oldest was dropped
    assert shared.shared == 0
    for firmware in ("a", "b"):  # two more buckets: past the bound, the table starts again
        shared.plan(ds, "ST-1", dataclasses.replace(charger("ST-1"), firmware=firmware), NOW)
    assert len(shared._buckets) == 1


class NeverCompared(tuple):  # type: ignore[type-arg]
    def __eq__(self, other: object) -> bool:
        raise AssertionError("accepted list compared entry by entry")

    __hash__ = tuple.__hash__


def test_accepted_lists_are_compared_by_their_content_address_not_entry_by_entry() -> None:
    ds = fleet()
    shared = SharedPlans()
    observed = {i: dataclasses.replace(charger(f"ST-{i}"), local_list_version=3, local_list_hash="sha256:list")
                for i in (1, 2)}
    for i in (1, 2):  # two copies of the same list (equal content: same address), never compared one by one
        got = shared.plan(ds, f"ST-{i}", observed[i], NOW, snapshot_entries=NeverCompared((ENTRY,)))
        assert got == direct(ds, f"ST-{i}", observed[i], NOW, snapshot_entries=(ENTRY,))
    assert (shared.planned, shared.shared) == (1, 1)


def test_configuration_keys_are_interned_and_the_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    a = config_key("HeartbeatInterval", "900")
    assert a is config_key("HeartbeatInterval", "900")
    assert config_key("HeartbeatInterval", "900", True) is not a and config_key("HeartbeatInterval", "901") != a
    monkeypatch.setattr(ocpp16_keys, "_INTERNED", {})
    monkeypatch.setattr(ocpp16_keys, "INTERNED_MAX", 3)
    keys = [config_key("K", str(i)) for i in range(5)]
    assert len(ocpp16_keys._INTERNED) == 3
    assert config_key("K", "4") is keys[4] and config_key("K", "0") == keys[0]


def test_the_planners_ask_only_whether_a_charger_was_read_not_when() -> None:
    """What `SharedPlans` leaves out of the comparison (the time of the last read) must not change a plan."""
    ds = fleet()
    for config in (None, CDCP, {"HeartbeatInterval": "900"}):
        recent, old = (direct(ds, "ST-1", dataclasses.replace(charger("ST-1", config), read_at=NOW - age), NOW)
                       for age in (SECOND, dt.timedelta(days=30)))
        assert recent == old


def test_made_out_to_is_dataclasses_replace_without_what_is_not_a_field() -> None:
    plan = direct(fleet(), "ST-1", charger("ST-1"), NOW)
    assert plan.actions
    vars(plan)["memo"] = "something cached on the instance"  # not a field: not carried to the copy
    got = made_out_to(plan, "ST-2", "st-2")
    assert got == dataclasses.replace(plan, station="ST-2", name="st-2")
    assert "memo" not in vars(got) and got.actions is plan.actions and plan.station == "ST-1"
    assert got.content_hash() == direct(fleet(), "ST-2", charger("ST-2"), NOW).content_hash() != plan.content_hash()
    pending = PendingReboot(NOW, {})  # a slots dataclass: dataclasses.replace itself
    assert _with(pending, since=NOW + SECOND) == PendingReboot(NOW + SECOND, {})


def test_interning_from_several_threads_at_once_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's reader threads intern the keys they read while the event loop interns read-backs."""
    monkeypatch.setattr(ocpp16_keys, "_INTERNED", {})
    monkeypatch.setattr(ocpp16_keys, "INTERNED_MAX", 8)  # evicting all the time
    errors: list[BaseException] = []
    interval = sys.getswitchinterval()

    def work(seed: int) -> None:
        try:
            for i in range(50_000):
                key = config_key("K", str((i * 7 + seed) % 50))
                assert key.value == str((i * 7 + seed) % 50)
        except BaseException as exc:
            errors.append(exc)

    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == [] and len(ocpp16_keys._INTERNED) <= 8
