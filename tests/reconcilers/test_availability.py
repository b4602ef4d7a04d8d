"""Availability reconciler (controller/reconcilers/availability.py): declared operative / inoperative per
EVSE against the reported connector status; Scheduled answers; de-activation on connector 0."""

from __future__ import annotations

from typing import Any

import pytest

from controller.reconcilers import Kind, Level, Plan

from .kit import FakeCharger, charger, evse, repo, station

TWO = [evse(1), evse(2, availability="inoperative")]


def availability(plan: Plan) -> list[tuple[int, str]]:
    return [(a.payload["connectorId"], a.payload["type"]) for a in plan.actions
            if a.kind is Kind.CHANGE_AVAILABILITY]


@pytest.mark.parametrize(("connectors", "expected"), [
    ({0: "Available", 1: "Available", 2: "Available"}, [(2, "Inoperative")]),
    ({0: "Available", 1: "Charging", 2: "Unavailable"}, []),
    ({0: "Available", 1: "Unavailable", 2: "Unavailable"}, [(1, "Operative")]),
    ({0: "Available", 1: "Faulted", 2: "Preparing"}, [(2, "Inoperative")]),
    ({0: "Available"}, [(2, "Inoperative")]),  # unknown status: only the safe direction is acted on
    ({0: "Unavailable", 1: "Unavailable", 2: "Unavailable"}, [(0, "Operative"), (2, "Inoperative")]),
], ids=["make-inoperative", "in-sync", "make-operative", "faulted-counts-as-operative", "status-unknown",
        "reactivated-station"])
def test_declared_availability_against_the_reported_status(connectors: dict[int, str],
                                                           expected: list[tuple[int, str]]) -> None:
    plan = FakeCharger(charger(connectors=connectors)).plan(repo(station("st-1", evses=TWO)))
    assert availability(plan) == expected


def test_a_station_with_every_evse_inoperative_is_not_reopened_on_connector_0() -> None:
    ds = repo(station("st-1", evses=[evse(1, availability="inoperative")]))
    obs = charger(connectors={0: "Unavailable", 1: "Unavailable"})
    assert FakeCharger(obs).plan(ds).actions == ()


def test_an_inoperative_change_on_a_busy_connector_says_it_affects_the_session() -> None:
    obs = charger(connectors={0: "Available", 1: "Available", 2: "Charging"}, sessions=[2])
    (action,) = FakeCharger(obs).plan(repo(station("st-1", evses=TWO))).actions
    assert action.effects.affects_running_session and "Scheduled" in action.reason


def test_a_scheduled_answer_is_not_resent_while_the_session_runs() -> None:
    ds = repo(station("st-1", evses=TWO))
    fc = FakeCharger(charger(connectors={0: "Available", 1: "Available", 2: "Charging"}, sessions=[2]))
    fc.apply(fc.plan(ds))
    assert fc.obs.scheduled_availability == {2: "Inoperative"}
    again = fc.plan(ds)
    assert again.actions == ()
    assert [n.level for n in again.notes] == [Level.DEFERRED]


def deactivated(**spec: Any) -> Any:
    return repo(station("st-1", evses=TWO, activation={"plan": "standard", "activated": False}, **spec))


def test_a_deactivated_station_is_made_inoperative_on_connector_0_only() -> None:
    plan = FakeCharger(charger(connectors={0: "Available", 1: "Available", 2: "Available"})).plan(deactivated())
    assert availability(plan) == [(0, "Inoperative")]


def test_a_deactivated_station_already_unavailable_needs_nothing() -> None:
    for connectors in ({0: "Unavailable"}, {1: "Unavailable", 2: "Unavailable"}):
        assert availability(FakeCharger(charger(connectors=connectors)).plan(deactivated())) == []
