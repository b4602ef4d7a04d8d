"""The frozen dataclasses stay in line with `schemas/` (the single source of truth): every schema field
of a kind's spec has a model field (camelCase -> snake_case), and the model has no field the schema
does not declare (besides bookkeeping such as `src`)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from controller.config import model as m
from controller.config.schema import _properties, _resolve, raw_schemas


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()



def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


BOOKKEEPING = {"src", "has_selector"}



def _schema_fields(kind: str, path: tuple[str, ...], name: str | None = None) -> set[str]:
    schemas = raw_schemas()
    node: Any = schemas[kind]
    for p in path:
        node = node[p]
    if name:
        node = node[name]
    return {snake(k) for k in _properties(_resolve(node, schemas), schemas)}


@pytest.mark.parametrize(("cls", "defname"), [(m.StationSettings, "StationSettings"),
                                              (m.PriceComponents, "PriceComponents"),
                                              (m.Card, "Card"), (m.Address, "Address"),
                                              (m.Coordinates, "Coordinates"), (m.Maintenance, "Maintenance")])
def test_shared_definitions_match_their_dataclass(cls: type, defname: str) -> None:
    schema = _schema_fields("common", ("$defs",), defname)
    model = fields(cls) - BOOKKEEPING - {"group"}  # a card's group comes from where it is declared
    assert schema == model


@pytest.mark.parametrize(("cls", "kind"), [(m.Tariff, "tariff"), (m.ReservationPolicy, "reservationpolicy"),
                                           (m.AccessGroup, "accessgroup")])
def test_kind_spec_fields_match_their_dataclass(cls: type, kind: str) -> None:
    schema = _schema_fields(kind, ("properties",), "spec") | {"name"}
    model = fields(cls) - BOOKKEEPING
    assert schema - {"cards"} == model  # cards are collected into DesiredState.cards


def test_station_spec_fields_are_all_carried_by_the_station_model() -> None:
    schema = _schema_fields("station", ("properties",), "spec")
    settings = fields(m.StationSettings)
    model = fields(m.Station) - BOOKKEEPING
    renamed = {"credentials": "authorization_key"}
    missing = {f for f in schema if f not in model and f not in settings and renamed.get(f) not in model}
    assert missing == set()
    extra = model - schema - {"name", "labels", "settings", "authorization_key"}
    assert extra == set()


def test_evse_and_plug_fields_match_the_schema() -> None:
    evse = _schema_fields("station", ("properties", "spec", "properties", "evses"), "items")
    assert evse == fields(m.Evse)
    plug_node = raw_schemas()["station"]["properties"]["spec"]["properties"]["evses"]["items"]["properties"]["plugs"]
    plug = {snake(k) for k in plug_node["items"]["properties"]}
    assert plug == fields(m.Plug)
