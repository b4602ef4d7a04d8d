"""The public map feed (controller/publish/geojson.py): public, activated stations only, with live status."""

from __future__ import annotations

import json

from controller.config import model as m
from controller.publish.geojson import feature_collection
from controller.publish.ocpi import LiveStation

from .kit import example, fleet, online, with_stations


def identities(collection: dict[str, object]) -> list[str]:
    return [f["id"] for f in collection["features"]]  # type: ignore[attr-defined]


def test_only_public_activated_stations_are_on_the_map() -> None:
    garage, town = example("workplace-garage"), example("town-curbside")
    assert identities(feature_collection(garage, {})) == ["PCG-UTR-L0-DC1", "PCG-UTR-L1-01", "PCG-UTR-L1-02",
                                                          "PCG-UTR-L1-03"]
    on_map = identities(feature_collection(town, {}))
    assert sorted(on_map) == ["DLF-AC-0001", "DLF-AC-0002", "DLF-AC-0003", "DLF-AC-0101", "DLF-AC-0102",
                              "DLF-DC-0001", "DLF-DC-0002"]
    text = json.dumps(feature_collection(town, fleet(town)))
    assert "DLF-DEPOT" not in text  # private (DEPOT-01) and hidden (DEPOT-TEST)
    assert "DLF-DC-0003" not in text  # hidden


def test_private_stations_never_reach_the_map() -> None:
    garage = example("workplace-garage")
    text = json.dumps(feature_collection(garage, fleet(garage)))
    assert "L2-0" not in text and "SERVICE" not in text and "employees" not in text


def test_a_deactivated_public_station_leaves_the_map() -> None:
    town = with_stations(example("town-curbside"), **{"markt-1": {"activation": m.Activation("public-ac", False)}})
    assert "DLF-AC-0001" not in identities(feature_collection(town, {}))


def test_a_feature_is_a_point_with_name_address_status_connectors_tariffs_and_operator() -> None:
    town = example("town-curbside")
    live = {"DLF-AC-0001": online({1: "Charging", 2: "Faulted"})}
    (markt,) = [f for f in feature_collection(town, live)["features"] if f["id"] == "DLF-AC-0001"]
    assert markt["type"] == "Feature"
    assert markt["geometry"] == {"type": "Point", "coordinates": [4.35874, 52.01148]}  # [lon, lat]
    props = markt["properties"]
    assert props["name"] == "Markt (city hall)" and props["identity"] == "DLF-AC-0001"
    assert props["operator"] == "Gemeente Delft" and props["site"] == "markt"
    assert props["address"] == {"street": "Markt 87", "postal_code": "2611 GW", "city": "Delft", "country": "NL"}
    assert props["status"] == "CHARGING"
    assert props["status_summary"] == {"CHARGING": 1, "OUTOFORDER": 1}
    assert props["evses"][0] == {"evse_id": "NL*DLF*EDLF*AC*0001*1", "connector_id": 1, "status": "CHARGING",
                                 "tariff": "curbside-ac", "connectors": [{"standard": "IEC_62196_T2",
                                                                          "format": "SOCKET",
                                                                          "power_type": "AC_3_PHASE",
                                                                          "power_kw": 22}]}
    assert props["tariff_ids"] == ["curbside-ac"] and props["max_power_kw"] == 22


def test_an_offline_station_shows_unknown_and_an_available_evse_wins_the_marker() -> None:
    town = example("town-curbside")
    live = {"DLF-AC-0002": LiveStation(online=False), "DLF-AC-0003": online({1: "Charging", 2: "Available"})}
    features = {f["id"]: f["properties"] for f in feature_collection(town, live)["features"]}
    assert features["DLF-AC-0002"]["status_summary"] == {"UNKNOWN": 2}
    assert features["DLF-AC-0002"]["status"] == "UNKNOWN"
    assert features["DLF-AC-0003"]["status"] == "AVAILABLE"
    assert features["DLF-DC-0001"]["max_power_kw"] == 50
