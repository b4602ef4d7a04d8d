"""The OCPI 2.2.1 JSON Schemas in schemas/ocpi: valid schemas, and strict where the specification is."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from .kit import OCPI_SCHEMAS, errors, schema

NAMES = sorted(p.stem for p in OCPI_SCHEMAS.glob("*.json"))
TS = "2026-01-05T08:00:00Z"
CONNECTOR = {"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
             "max_voltage": 230, "max_amperage": 16, "last_updated": TS}
EVSE = {"uid": "ST-1-1", "evse_id": "NL*TST*EST*1*1", "status": "AVAILABLE", "connectors": [CONNECTOR],
        "last_updated": TS}
LOCATION = {"country_code": "NL", "party_id": "TST", "id": "site", "publish": True, "address": "Markt 1",
            "city": "Delft", "country": "NLD", "coordinates": {"latitude": "52.01148", "longitude": "4.35874"},
            "time_zone": "Europe/Amsterdam", "evses": [EVSE], "last_updated": TS}


@pytest.mark.parametrize("name", NAMES)
def test_each_ocpi_schema_is_a_valid_draft_2020_12_schema_with_an_id(name: str) -> None:
    Draft202012Validator.check_schema(schema(name))
    assert schema(name)["$id"].endswith(f"/ocpi/2.2.1/{name}.json")


def test_the_minimal_objects_written_from_the_specification_are_valid() -> None:
    assert errors("location", LOCATION) == []


def broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(LOCATION)
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


@pytest.mark.parametrize(("path", "value"), [
    (("time_zone",), ...),  # required
    (("country",), "NL"),  # alpha-3
    (("id",), "x" * 37),  # CiString(36)
    (("address",), "a" * 46),  # string(45)
    (("coordinates", "latitude"), "52.0114"),  # at least 5 decimals
    (("coordinates", "longitude"), 4.35874),  # a string
    (("publish_allowed_to",), [{"group_id": "staff"}]),  # only when publish is false
    (("last_updated",), "2026-01-05 08:00:00"),
    (("evses", 0, "status"), "OCCUPIED"),
    (("evses", 0, "connectors"), []),  # at least one
    (("evses", 0, "evse_id"), "NL-TST-1"),  # eMI3
    (("evses", 0, "connectors", 0, "max_voltage"), ...),
    (("evses", 0, "connectors", 0, "standard"), "TYPE2"),
    (("evses", 0, "connectors", 0, "max_power"), 11000),  # no such field
    (("opening_times",), {"twentyfourseven": False}),  # needs regular_hours
    (("opening_times",), {"twentyfourseven": False, "regular_hours": [
        {"weekday": 8, "period_begin": "08:00", "period_end": "24:00"}]}),
])
def test_the_location_schema_rejects_what_the_specification_forbids(path: tuple[Any, ...], value: Any) -> None:
    assert errors("location", broken(path, value))


def test_a_publish_token_needs_an_identifying_field_and_its_companion() -> None:
    private = {**LOCATION, "publish": False}
    assert errors("location", {**private, "publish_allowed_to": [{"group_id": "staff"}]}) == []
    assert errors("location", {**private, "publish_allowed_to": [{"issuer": "X"}]})
    assert errors("location", {**private, "publish_allowed_to": [{"uid": "04A3B2"}]})  # type missing
    assert errors("location", {**private, "publish_allowed_to": [{"uid": "04A3B2", "type": "RFID"}]}) == []
