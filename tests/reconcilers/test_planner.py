"""The station planner and renderer (controller/reconcilers/planner.py, render.py): phase order, no
duplicates, de-activated / removed / unobserved stations, the plan as JSON, and Terraform-style output
(golden files; refresh with CHARGEOPS_UPDATE_GOLDEN=1 and review the diff)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from controller.config import DesiredState
from controller.reconcilers import (
    Action,
    Kind,
    ObservedKey,
    ObservedStation,
    PendingReservation,
    Phase,
    Plan,
    plan_removed_station,
    plan_station,
    render_plan,
)
from controller.reconcilers.actions import Change, Part, combine, info
from controller.reconcilers.planner import consistent
from controller.reconcilers.render import Format

from .kit import NOW, FakeCharger, card, charger, group, kinds, policy, repo, station, tariff

GOLDEN = Path(__file__).parent / "golden"
TAGS = ("04A3B2C1D0E9F8", "NLEVB000123457")
DEACTIVATED: dict[str, Any] = {"activation": {"plan": "standard", "activated": False}}


def fleet(blocked: tuple[str, ...] = ()) -> DesiredState:
    return repo(group("staff", *[card(t, blocked=t in blocked) for t in TAGS]), policy("bookable"),
                station("st-1", offlineAuthorization=True), station("st-2"), station("st-3", **DEACTIVATED),
                station("st-4"))


def fleet_plans() -> list[Plan]:
    """One of each: updated with a revocation, revocation only, de-activated, unobserved, removed."""
    before, after = fleet(), fleet(blocked=("NLEVB000123457",))
    st1 = FakeCharger(charger("ST-1"))
    st1.apply(st1.plan(before))
    st1.obs = dataclasses.replace(st1.obs, configuration={
        **st1.obs.configuration, "HEARTBEATINTERVAL": ObservedKey("HeartbeatInterval", "900")})
    return [
        st1.plan(after),
        FakeCharger(charger("ST-2")).plan(after),
        plan_station(after, "ST-3", charger("ST-3", config={"LocalAuthorizeOffline": "true"}), NOW,
                     pending_reservations=[PendingReservation(17, 1)]),
        plan_station(after, "ST-4", None, NOW),
        plan_station(after, "OLD-9", charger("OLD-9", config={"LocalAuthListEnabled": "true"}, local_list_version=4),
                     NOW),
    ]


@pytest.mark.parametrize(("fmt", "name"), [("human", "plan.txt"), ("markdown", "plan.md")])
def test_the_rendered_plan_matches_the_golden_file(fmt: Format, name: str) -> None:
    got = render_plan(fleet_plans(), fmt)
    path = GOLDEN / name
    if os.environ.get("CHARGEOPS_UPDATE_GOLDEN"):
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no golden file {name}: run with CHARGEOPS_UPDATE_GOLDEN=1"
    assert got == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["human", "markdown", "json"])
def test_no_rendering_shows_a_whole_id_tag(fmt: Format) -> None:
    out = render_plan(fleet_plans(), fmt)
    assert "3457" in out
    assert not any(tag in out for tag in TAGS)


def test_a_fleet_in_sync_renders_no_changes() -> None:
    ds = repo(station("st-1"))
    plan = FakeCharger(charger()).plan(ds)
    assert render_plan([plan]) == "No changes. Every observed charger matches the configuration.\n"
    assert json.loads(render_plan([plan], "json"))["changes"] is False


def test_the_json_rendering_carries_the_summary_and_every_plan() -> None:
    doc = json.loads(render_plan(fleet_plans(), "json"))
    assert doc["summary"] == {"add": 0, "change": 9, "remove": 1}
    assert [p["station"] for p in doc["plans"]] == ["OLD-9", "ST-1", "ST-2", "ST-3", "ST-4"]


def test_a_plan_survives_a_json_round_trip() -> None:
    for plan in fleet_plans():
        text = json.dumps(plan.to_dict())
        back = Plan.from_dict(json.loads(text))
        assert back == plan
        assert back.content_hash() == plan.content_hash()


def test_the_content_hash_ignores_notes_and_times_but_not_actions() -> None:
    plan = fleet_plans()[0]
    assert dataclasses.replace(plan, notes=(), next_review_at=NOW).content_hash() == plan.content_hash()
    assert dataclasses.replace(plan, actions=plan.actions[1:]).content_hash() != plan.content_hash()


def test_actions_are_in_phase_order() -> None:
    for plan in fleet_plans():
        phases = [a.phase for a in plan.actions]
        assert phases == sorted(phases)


def test_a_deactivated_station_is_made_inert_without_duplicates_or_price_pushes() -> None:
    ds = repo(tariff("standard"), policy("bookable"),
              station("st-1", tariff="standard", offlineAuthorization=True, reservationPolicy="bookable",
                      **DEACTIVATED))
    obs = charger(config={"LocalAuthListEnabled": "true", "LocalAuthorizeOffline": "true",
                          "AllowOfflineTxForUnknownId": "true", "CustomDisplayCostAndPrice": "true"},
                  local_list_version=3, connectors={0: "Available", 1: "Charging"}, sessions=[1])
    plan = plan_station(ds, "ST-1", obs, NOW, pending_reservations=[PendingReservation(5, 1),
                                                                    PendingReservation(6, 0)])
    assert kinds(plan) == ["ChangeConfiguration"] * 3 + ["GetConfiguration", "SendLocalList", "CancelReservation",
                                                         "CancelReservation", "ChangeAvailability"]
    assert {str(a.payload["key"]): a.payload["value"] for a in plan.actions[:3]} == {
        "AllowOfflineTxForUnknownId": "false", "LocalAuthListEnabled": "false", "LocalAuthorizeOffline": "false"}
    send = plan.actions[4]
    assert (send.payload["updateType"], send.payload["localAuthorizationList"]) == ("Full", [])
    avail = plan.actions[-1]
    assert avail.payload == {"connectorId": 0, "type": "Inoperative"} and avail.effects.affects_running_session


def test_a_removed_station_is_made_inert_and_never_reset() -> None:
    obs = charger("OLD-1", config={"LocalAuthorizeOffline": "true"}, local_list_version=0)
    plan = plan_station(repo(station("st-1")), "OLD-1", obs, NOW, pending_reservations=[PendingReservation(9, 2)])
    assert plan.removed and Kind.RESET.value not in kinds(plan)
    assert kinds(plan) == ["ChangeConfiguration", "GetConfiguration", "CancelReservation", "ChangeAvailability"]
    assert plan_removed_station("OLD-1", obs, NOW).counts() == {"add": 0, "change": 2, "remove": 0}


def test_a_station_never_observed_gets_no_actions() -> None:
    plan = plan_station(repo(station("st-1")), "ST-1", ObservedStation("ST-1"), NOW)
    assert (plan.actions, plan.observed) == ((), False)


def test_two_reconcilers_asking_different_values_for_one_key_keep_the_first_and_warn() -> None:
    def change(value: str) -> Action:
        return Action(Phase.FEATURES, Kind.CHANGE_CONFIGURATION, {"key": "X", "value": value}, value,
                      Change("X", None, value))
    same = consistent(Part((change("1"), change("1"))))
    assert len(same.actions) == 1 and same.notes == ()
    clash = consistent(Part((change("1"), change("2"))))
    assert [a.payload["value"] for a in clash.actions] == ["1"] and clash.notes[0].text.startswith("two reconcilers")


def test_parts_combined_in_one_pass_equal_parts_added_one_by_one() -> None:
    def change(key: str) -> Action:
        return Action(Phase.FEATURES, Kind.CHANGE_CONFIGURATION, {"key": key, "value": "1"}, key,
                      Change(key, None, "1"))
    later, sooner = NOW + dt.timedelta(hours=2), NOW + dt.timedelta(hours=1)
    parts = [Part(), Part((change("A"),), (info("a"),), later, 2), Part(), Part(unchanged=1),
             Part((change("B"),), (), sooner), Part(notes=(info("c"),))]
    added = Part()
    for part in parts:
        added = added + part
    assert combine(parts) == added
    assert added == Part((change("A"), change("B")), (info("a"), info("c")), sooner, 3)
    assert Part() + parts[1] is parts[1] and parts[1] + Part() is parts[1]  # nothing to add: no new part
    assert combine([]) == Part()


def test_an_observed_station_survives_its_export_round_trip() -> None:
    fc = FakeCharger(charger(sessions=[1]))
    fc.apply(fc.plan(fleet(blocked=TAGS[:1])))
    exported = json.loads(json.dumps(fc.obs.to_dict()))
    assert ObservedStation.from_dict(exported) == fc.obs


def test_capabilities_are_read_from_the_configuration() -> None:
    obs = charger(config={"ReserveConnectorZeroSupported": "TRUE", "SendLocalListMaxLength": "250"})
    assert (obs.reserve_connector_zero_supported, obs.send_local_list_max_length, obs.local_auth_list_max_length,
            obs.get_configuration_max_keys, obs.custom_display_cost_and_price) == (True, 250, 10000, 50, False)
    assert obs.supports("localauthlistmanagement") and not obs.supports("SmartCharging")
    assert ObservedStation("X").supports("SmartCharging")  # profiles not reported: assumed
