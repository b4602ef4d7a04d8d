"""Small in-memory owner repositories for the config tests.

Documents are plain dicts (camelCase, as an owner writes them) dumped to YAML text, one file per document
unless grouped; `load` runs them through the real loader (`validate_sources`). Tests that care about exact
lines and columns write their YAML text by hand instead.
"""

from __future__ import annotations

from typing import Any

import yaml

from controller.config import DesiredState, Diagnostic, LoadResult, validate_sources

API = "chargeops.io/v1"
Doc = dict[str, Any]


def doc(kind: str, name: str, spec: Doc, labels: dict[str, str] | None = None) -> Doc:
    metadata: Doc = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": API, "kind": kind, "metadata": metadata, "spec": spec}


def owner(name: str = "test-owner", *, billing: bool = True, defaults: Doc | None = None, **spec: Any) -> Doc:
    body: Doc = {
        "displayName": "Test Owner B.V.",
        "timezone": "Europe/Amsterdam",
        "country": "NL",
        "currency": "EUR",
        "ocpi": {"countryCode": "NL", "partyId": "TST"},
        "plans": [{"name": "standard"}],
        "billing": {"enabled": billing},
    }
    if defaults is not None:
        body["defaults"] = defaults
    body.update(spec)
    return doc("Owner", name, body)


def plug() -> Doc:
    return {"standard": "IEC_62196_T2", "format": "SOCKET", "powerType": "AC_3_PHASE", "maxVoltage": 230,
            "maxAmperage": 16}


def evse(evse_id: int = 1, **settings: Any) -> Doc:
    return {"id": evse_id, "plugs": [plug()], **settings}


def station(name: str = "st-1", identity: str | None = None, *, evses: list[Doc] | None = None,
            labels: dict[str, str] | None = None, **spec: Any) -> Doc:
    body: Doc = {"identity": identity or name.upper(), "activation": {"plan": "standard"}}
    body.update(spec)
    body["evses"] = evses if evses is not None else [evse(1)]
    return doc("Station", name, body, labels)


def tariff(name: str = "standard", **spec: Any) -> Doc:
    body: Doc = {"price": {"perKwh": "0.35"}}
    body.update(spec)
    return doc("Tariff", name, body)


class Quoted(str):
    """A string always written double-quoted (idTags must be quoted in owner files)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Quoted, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"'))


def card(id_tag: str, driver: str = "drv-0001", **extra: Any) -> Doc:
    return {"idTag": Quoted(id_tag), "driver": driver, **extra}


def group(name: str, *cards: Doc, includes: list[str] | None = None, **spec: Any) -> Doc:
    body: Doc = dict(spec)
    if cards:
        body["cards"] = list(cards)
    if includes is not None:
        body["includes"] = includes
    return doc("AccessGroup", name, body)


def card_list(name: str, group_name: str, *cards: Doc) -> Doc:
    return doc("CardList", name, {"group": group_name, "cards": list(cards)})


def profile(name: str, settings: Doc, *, priority: int | None = None, selector: Doc | None = None) -> Doc:
    body: Doc = {"settings": settings}
    if priority is not None:
        body["priority"] = priority
    if selector is not None:
        body["selector"] = selector
    return doc("StationProfile", name, body)


def policy(name: str, *, reservable: bool = True, **spec: Any) -> Doc:
    return doc("ReservationPolicy", name, {"reservable": reservable, **spec})


def dump(*docs: Doc) -> str:
    return "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, allow_unicode=True) for d in docs)


def sources(*docs: Doc) -> list[tuple[str, bytes]]:
    """One file per document, named after its kind and name (e.g. station-st-1.yaml)."""
    out = []
    for d in docs:
        fname = f"{d['kind'].lower()}-{d['metadata']['name']}.yaml"
        out.append((fname, dump(d).encode()))
    return out


def load(*docs: Doc) -> LoadResult:
    return validate_sources(sources(*docs))


def desired(*docs: Doc) -> DesiredState:
    """The desired state of a repository that must be valid (fails the test with every diagnostic)."""
    result = load(*docs)
    assert result.desired is not None, [f"{d.location()} {d.code}: {d.message}" for d in result.diagnostics]
    return result.desired


def codes(result: LoadResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def only(result: LoadResult, code: str) -> list[Diagnostic]:
    return [d for d in result.diagnostics if d.code == code]
