"""Checks on the JSON Schemas in schemas/ themselves, and on the reference doc generated from them.

The loader validates with jsonschema_rs; these tests use the pure-Python ``jsonschema`` library, so the
schemas are also known to work under a second, independent implementation (which editors resemble more).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from controller.config import refdoc
from controller.config.schemas_path import schemas_dir

SCHEMA_DIR = schemas_dir()
FILES = sorted(p.name for p in SCHEMA_DIR.glob("*.json"))
KIND_FILES = [f for f in FILES if f not in ("common.json", "all.json")]
META = "https://json-schema.org/draft/2020-12/schema"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


SCHEMAS = {name: load(name) for name in FILES}


def resolve(schema: dict[str, Any], file: str) -> tuple[dict[str, Any], str]:
    """Follow $ref (within a file or into another schema file) until a schema without one."""
    seen: set[tuple[str, str]] = set()
    while "$ref" in schema:
        file_part, _, pointer = schema["$ref"].partition("#")
        file = file_part or file
        assert (file, pointer) not in seen, f"$ref cycle at {file}#{pointer}"
        seen.add((file, pointer))
        target: Any = SCHEMAS[file]
        for part in (p for p in pointer.split("/") if p):
            target = target[part]
        schema = target
    return schema, file


def subschemas(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema in a schema document, with a readable path."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from subschemas(sub, f"{path}.{name}")
    for name, sub in schema.get("$defs", {}).items():
        yield from subschemas(sub, f"{path}$defs.{name}")
    for keyword in ("items", "additionalProperties", "propertyNames"):
        yield from subschemas(schema.get(keyword), f"{path}.{keyword}")
    for keyword in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(keyword, [])):
            yield from subschemas(sub, f"{path}.{keyword}[{i}]")


def registry() -> Registry:
    resources = [(s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values()]
    return Registry().with_resources(resources)


def validator(file: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[file], registry=registry())


# --- the schema files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_every_schema_file_is_a_valid_draft_2020_12_schema(name: str) -> None:
    assert SCHEMAS[name]["$schema"] == META
    Draft202012Validator.check_schema(SCHEMAS[name])


@pytest.mark.parametrize("name", FILES)
def test_every_schema_has_an_id_named_after_its_file_and_a_title(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["$id"].endswith("/" + name)
    assert schema["title"].strip()
    assert schema["description"].strip()


def test_every_field_has_a_description() -> None:
    missing = []
    for name, schema in SCHEMAS.items():
        for path, sub in subschemas(schema, name):
            for prop, prop_schema in sub.get("properties", {}).items():
                described = prop_schema.get("description") or resolve(prop_schema, name)[0].get("description")
                if not (isinstance(described, str) and described.strip()):
                    missing.append(f"{path}.{prop}")
    assert not missing, "fields without a description: " + ", ".join(missing)


@pytest.mark.parametrize("name", KIND_FILES)
def test_every_kind_const_matches_its_title(name: str) -> None:
    schema = SCHEMAS[name]
    assert schema["properties"]["kind"]["const"] == schema["title"]
    assert name == schema["title"].lower() + ".json"


def test_there_is_one_schema_per_kind_and_the_reference_covers_them_all() -> None:
    assert sorted(SCHEMAS[f]["title"] for f in KIND_FILES) == sorted(refdoc.KIND_ORDER)


def test_every_ref_points_to_an_existing_definition() -> None:
    for name, schema in SCHEMAS.items():
        for path, sub in subschemas(schema, name):
            if "$ref" in sub:
                try:
                    resolve(sub, name)
                except (KeyError, TypeError) as exc:
                    pytest.fail(f"{path}: $ref {sub['$ref']!r} does not resolve ({exc!r})")


# --- the schemas at work ----------------------------------------------------------------------------

META_DOC = {"apiVersion": "chargeops.io/v1", "metadata": {"name": "example"}}
MINIMAL_SPECS: dict[str, dict[str, Any]] = {
    "Owner": {
        "displayName": "Example Parking",
        "timezone": "Europe/Amsterdam",
        "country": "NL",
        "currency": "EUR",
        "ocpi": {"countryCode": "NL", "partyId": "EXA"},
        "plans": [{"name": "basic"}],
        "defaults": {"ocppConfiguration": {"HeartbeatInterval": 300}, "access": {"mode": "public"}},
    },
    "Station": {
        "identity": "CP-0001",
        "tariff": "standard",
        "evses": [
            {
                "id": 1,
                "plugs": [
                    {
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "powerType": "AC_3_PHASE",
                        "maxVoltage": 230,
                        "maxAmperage": 32,
                    }
                ],
            }
        ],
    },
    "StationProfile": {"selector": {"labels": {"fleet": "city"}}, "settings": {"tariff": "standard"}},
    "Tariff": {"price": {"perKwh": "0.35", "idle": {"perHour": 1, "graceMinutes": 30}}},
    "AccessGroup": {"cards": [{"idTag": "04A2B3C4", "driver": "drv-1"}]},
    "CardList": {"group": "employees", "cards": [{"idTag": "00412345", "driver": "drv-2"}]},
    "ReservationPolicy": {"reservable": True, "maxDurationMinutes": 30},
}


def document(kind: str, **spec_changes: Any) -> dict[str, Any]:
    return {**META_DOC, "kind": kind, "spec": {**MINIMAL_SPECS[kind], **spec_changes}}


@pytest.mark.parametrize("name", KIND_FILES)
def test_a_minimal_document_of_every_kind_is_valid(name: str) -> None:
    kind = SCHEMAS[name]["title"]
    errors = [e.message for e in validator(name).iter_errors(document(kind))]
    assert errors == []


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("Station", {"tarrif": "standard"}),
        ("Owner", {"defaults": {"tarrif": "standard"}}),
        ("StationProfile", {"settings": {"tarrif": "standard"}}),
    ],
)
def test_a_misspelt_inherited_setting_is_rejected(kind: str, change: dict[str, Any]) -> None:
    # StationSettings is shared through $ref/allOf, so only unevaluatedProperties catches these typos.
    assert not validator(kind.lower() + ".json").is_valid(document(kind, **change))


def test_an_unquoted_numeric_id_tag_is_rejected() -> None:
    doc = document("CardList", cards=[{"idTag": 412345, "driver": "drv-2"}])
    assert not validator("cardlist.json").is_valid(doc)


# --- the generated reference ------------------------------------------------------------------------


def test_the_reference_doc_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    status = refdoc.main(["--check"])
    assert status == 0, capsys.readouterr().err


def test_the_reference_doc_check_fails_when_the_file_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("# stale\n", encoding="utf-8")
    monkeypatch.setattr(refdoc, "reference_path", lambda: stale)
    assert refdoc.main(["--check"]) == 1
    assert refdoc.main([]) == 0
    assert refdoc.main(["--check"]) == 0


def test_the_reference_lists_every_kind_in_order_with_defaults_and_enum_values() -> None:
    text = refdoc.render_reference()
    positions = [text.index(f"\n## {kind}\n") for kind in refdoc.KIND_ORDER]
    assert positions == sorted(positions)
    assert "| `spec.maxDurationMinutes` | integer, 1..10080 |  | 60 |" in text
    assert "Values: `public`, `private`, `hidden`." in text
    assert "| `spec.evses[].plugs[].maxVoltage` |" in text


@pytest.mark.parametrize("name", KIND_FILES)
def test_the_any_kind_schema_dispatches_on_kind(name: str) -> None:
    kind = SCHEMAS[name]["title"]
    assert [e.message for e in validator("all.json").iter_errors(document(kind))] == []
    broken = {**document(kind), "unexpectedField": 1}
    assert list(validator("all.json").iter_errors(broken))
