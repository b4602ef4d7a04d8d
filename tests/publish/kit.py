"""Shared fixtures for the publication tests: the example repositories, fake live status, the OCPI schemas.

Live status is plain `LiveStation` data (a fake of what the store records); times come from a fixed clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from controller.config import DesiredState, validate_paths
from controller.config.model import Station
from controller.publish.ocpi import LiveStation, Obj
from controller.store.records import ConnectorStatus

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "owner-configs"
EXAMPLE_NAMES = ("workplace-garage", "town-curbside")
OCPI_SCHEMAS = ROOT / "schemas" / "ocpi"
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
OCPP_STATUSES = ("Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved",
                 "Unavailable", "Faulted")


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@cache
def example(name: str) -> DesiredState:
    result = validate_paths([EXAMPLES / name])
    assert result.desired is not None, [d.message for d in result.diagnostics]
    return result.desired


def with_stations(desired: DesiredState, *, drop: Iterable[str] = (), **changes: Any) -> DesiredState:
    """A copy of `desired` without the stations named in `drop` and with fields of others replaced."""
    stations: dict[str, Station] = {}
    for name, st in desired.stations.items():
        if name in drop:
            continue
        stations[name] = dataclasses.replace(st, **changes[name]) if name in changes else st
    return dataclasses.replace(desired, stations=stations)


def status(connector_id: int, value: str, when: dt.datetime = T0) -> ConnectorStatus:
    return ConnectorStatus(connector_id=connector_id, status=value, error_code=None, info=None, timestamp=None,
                           received_at=when)


def online(statuses: Mapping[int, str], when: dt.datetime = T0) -> LiveStation:
    return LiveStation(online=True, connectors={n: status(n, s, when) for n, s in statuses.items()})


def fleet(desired: DesiredState, value: str = "Available", when: dt.datetime = T0) -> dict[str, LiveStation]:
    """Every station online, every connector reporting `value`."""
    return {st.identity: online({e.id: value for e in st.evses}, when) for st in desired.stations.values()}


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(OCPI_SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OCPI_SCHEMAS / f"{name}.json").read_text())
    return loaded


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), registry=_registry())


def errors(name: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(instance)]


def assert_valid(name: str, instance: Any) -> None:
    found = errors(name, instance)
    assert not found, f"not a valid OCPI {name}: {found}"


def evses(locations: Mapping[str, Obj]) -> dict[str, Obj]:
    """Every EVSE of a publication by uid."""
    return {e["uid"]: e for loc in locations.values() for e in loc["evses"]}
