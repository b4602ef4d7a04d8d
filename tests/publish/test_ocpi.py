"""OCPI Location / EVSE / Connector objects built from the owner config (controller/publish/ocpi.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from controller.config import model as m
from controller.publish.ocpi import (
    LiveStation,
    build_locations,
    evse_id,
    evse_uid,
    geo,
    live_status,
    ocpi_status,
    opening_times,
)
from controller.store.records import Credentials, StationRecord

from .kit import (
    EXAMPLE_NAMES,
    OCPP_STATUSES,
    T0,
    assert_valid,
    at,
    evses,
    example,
    fleet,
    online,
    status,
    with_stations,
)

GARAGE, TOWN = EXAMPLE_NAMES


# --- every object is valid OCPI 2.2.1 ----------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
@pytest.mark.parametrize("live_status_value", [*OCPP_STATUSES, "offline", "never-seen"])
def test_every_location_evse_and_connector_of_the_examples_is_valid_ocpi(name: str, live_status_value: str) -> None:
    desired = example(name)
    if live_status_value == "offline":
        live = {st.identity: LiveStation(online=False, since=at(-30)) for st in desired.stations.values()}
    elif live_status_value == "never-seen":
        live = {}
    else:
        live = fleet(desired, live_status_value)
    pub = build_locations(desired, live, {}, config_time=T0)
    assert pub.locations and not pub.skipped
    for loc in pub.sorted():
        assert_valid("location", loc)
        for evse in loc["evses"]:
            assert_valid("evse", evse)
            for connector in evse["connectors"]:
                assert_valid("connector", connector)
    json.dumps(pub.sorted())  # plain JSON


def test_removed_and_inoperative_objects_are_valid_ocpi_too() -> None:
    desired = example(TOWN)
    first = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    changed = with_stations(desired, drop=["markt-1"], **{
        "oude-delft-1": {"visibility": "hidden"},
        "phoenixstraat-1": {"activation": m.Activation(plan="public-ac", activated=False)},
    })
    pub = build_locations(changed, fleet(changed), first, config_time=at(60))
    statuses = {e["status"] for e in evses(pub.locations).values()}
    assert {"REMOVED", "INOPERATIVE"} <= statuses
    for loc in pub.sorted():
        assert_valid("location", loc)


# --- visibility --------------------------------------------------------------------------------------------


def test_a_site_mixing_public_and_private_stations_is_published_as_separate_locations() -> None:
    locs = build_locations(example(GARAGE), {}, {}, config_time=T0).locations
    assert sorted(locs) == ["papendorp-garage", "papendorp-garage-private-employees", "papendorp-garage-private-staff"]
    public = locs["papendorp-garage"]
    assert public["publish"] is True and "publish_allowed_to" not in public
    assert {e["uid"].rsplit("-", 1)[0] for e in public["evses"]} == {
        "PCG-UTR-L0-DC1", "PCG-UTR-L1-01", "PCG-UTR-L1-02", "PCG-UTR-L1-03"}
    employees = locs["papendorp-garage-private-employees"]
    assert employees["publish"] is False
    assert employees["publish_allowed_to"] == [{"group_id": "employees"}]
    assert {e["uid"] for e in locs["papendorp-garage-private-staff"]["evses"]} == {"PCG-UTR-SERVICE-01-1"}


def test_private_stations_of_one_audience_share_the_site_private_location() -> None:
    locs = build_locations(example(TOWN), {}, {}, config_time=T0).locations
    depot = locs["depot-vulcanusweg-private"]
    assert depot["publish"] is False and depot["publish_allowed_to"] == [{"group_id": "municipal-fleet"}]
    assert [e["uid"] for e in depot["evses"]] == [f"DLF-DEPOT-01-{n}" for n in (1, 2, 3, 4)]


def test_hidden_stations_are_published_nowhere() -> None:
    locs = build_locations(example(TOWN), fleet(example(TOWN)), {}, config_time=T0).locations
    published = json.dumps(locs)
    assert "DLF-DEPOT-TEST" not in published and "DLF-DC-0003" not in published
    assert sorted(locs) == ["depot-vulcanusweg-private", "markt", "oude-delft", "phoenixstraat", "pr-kruithuisweg",
                            "tanthof-papsouwselaan", "voorhof-roland-holstlaan"]


def test_a_station_without_a_site_is_a_location_of_its_own() -> None:
    desired = with_stations(example(TOWN), **{"markt-1": {"site": None}})
    locs = build_locations(desired, {}, {}, config_time=T0).locations
    assert "markt-1" in locs and "markt" not in locs


def test_a_location_that_no_station_can_give_an_address_is_skipped_and_reported() -> None:
    desired = with_stations(example(GARAGE), **{"service-bay": {"site": None}})
    pub = build_locations(desired, {}, {}, config_time=T0)
    assert [loc_id for loc_id, _why in pub.skipped] == ["service-bay-private"]
    assert "address" in pub.skipped[0][1]


# --- Location fields ---------------------------------------------------------------------------------------


def test_location_fields_come_from_the_owner_and_the_stations() -> None:
    loc = build_locations(example(TOWN), {}, {}, config_time=T0).locations["markt"]
    assert loc["country_code"] == "NL" and loc["party_id"] == "DLF"
    assert loc["country"] == "NLD"  # alpha-3
    assert (loc["address"], loc["city"], loc["postal_code"]) == ("Markt 87", "Delft", "2611 GW")
    assert loc["coordinates"] == {"latitude": "52.01148", "longitude": "4.35874"}
    assert loc["time_zone"] == "Europe/Amsterdam"
    assert loc["operator"] == {"name": "Gemeente Delft"}
    assert loc["name"] == "Markt (city hall)"


def test_opening_hours_become_weekday_periods_and_24_00_becomes_23_59() -> None:
    locs = build_locations(example(TOWN), {}, {}, config_time=T0).locations
    hours = locs["markt"]["opening_times"]
    assert hours["twentyfourseven"] is False
    thursday = [(h["period_begin"], h["period_end"]) for h in hours["regular_hours"] if h["weekday"] == 4]
    assert thursday == [("00:00", "06:00"), ("17:00", "23:59")]
    assert {h["weekday"] for h in hours["regular_hours"]} == set(range(1, 8))
    assert locs["oude-delft"]["opening_times"] == {"twentyfourseven": True}
    assert "opening_times" not in locs["pr-kruithuisweg"]  # not declared


def test_opening_hours_of_a_location_are_the_union_of_its_stations() -> None:
    def hours(*periods: tuple[tuple[str, ...], str, str]) -> m.OpeningHours:
        return m.OpeningHours(always_open=False, regular=tuple(m.TimeRange(d, s, e) for d, s, e in periods))

    union = opening_times([hours((("mon",), "08:00", "12:00")), hours((("mon",), "11:00", "18:00"))])
    assert union == {"twentyfourseven": False,
                     "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "18:00"}]}
    overnight = opening_times([hours((("sun",), "22:00", "06:00"))])
    assert overnight is not None
    assert [(h["weekday"], h["period_begin"], h["period_end"]) for h in overnight["regular_hours"]] == [
        (1, "00:00", "06:00"), (7, "22:00", "23:59")]
    everyday = opening_times([hours((("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "00:00", "24:00"))])
    assert everyday == {"twentyfourseven": True}
    assert opening_times([None, hours((("mon",), "08:00", "12:00"))]) == {"twentyfourseven": True}
    assert opening_times([None, None]) is None


@pytest.mark.parametrize(("lat", "lon", "expected"), [
    (52.07791, 5.08862, ("52.07791", "5.08862")),
    (52.0, -4.5, ("52.00000", "-4.50000")),
    (-33.123456789, 151.987654321, ("-33.1234568", "151.9876543")),
    (0.0, -0.0, ("0.00000", "0.00000")),
])
def test_coordinates_are_strings_with_five_to_seven_decimals(lat: float, lon: float,
                                                              expected: tuple[str, str]) -> None:
    assert geo(lat, lon) == {"latitude": expected[0], "longitude": expected[1]}


# --- EVSEs and Connectors ----------------------------------------------------------------------------------


def test_evse_uid_and_emi3_evse_id_come_from_the_identity_and_connector_id() -> None:
    evse = evses(build_locations(example(GARAGE), {}, {}, config_time=T0).locations)["PCG-UTR-L0-DC1-1"]
    assert evse["evse_id"] == "NL*PCG*EPCG*UTR*L0*DC1*1"
    assert evse["coordinates"] == {"latitude": "52.07791", "longitude": "5.08862"}


def test_long_or_odd_identities_still_give_valid_uids_and_evse_ids() -> None:
    identity = "Vendor.Site_Garage:Level+2|Bay@12-" + "X" * 14  # 48 characters, every allowed symbol
    uid = evse_uid(identity, 12)
    assert len(uid) <= 36 and uid != evse_uid(identity, 13)
    eid = evse_id("nl", "dlf", identity, 12)
    assert eid.startswith("NL*DLF*E") and len(eid) <= 8 + 30
    assert_valid("evse", {"uid": uid, "evse_id": eid, "status": "UNKNOWN", "last_updated": "2026-01-01T00:00:00Z",
                          "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                          "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16,
                                          "last_updated": "2026-01-01T00:00:00Z"}]})


def test_connectors_carry_the_plug_the_power_in_watts_and_the_effective_tariff() -> None:
    published = evses(build_locations(example(GARAGE), {}, {}, config_time=T0).locations)
    (dc,) = published["PCG-UTR-L0-DC1-1"]["connectors"]
    assert dc == {"id": "1", "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC",
                  "max_voltage": 920, "max_amperage": 125, "max_electric_power": 50000, "tariff_ids": ["visitor-dc"],
                  "last_updated": "2026-01-05T08:00:00Z"}
    (ac,) = published["PCG-UTR-L1-01-1"]["connectors"]
    assert ac["tariff_ids"] == ["visitor-ac"]  # the owner default
    assert published["PCG-UTR-SERVICE-01-1"]["connectors"][0]["max_electric_power"] == 7400


def test_each_plug_of_an_ocpp_connector_is_an_ocpi_connector() -> None:
    desired = example(TOWN)
    st = desired.stations["markt-1"]
    two_plugs = dataclasses.replace(st.evses[0], plugs=(*st.evses[0].plugs, m.Plug("DOMESTIC_F", "SOCKET",
                                                                                     "AC_1_PHASE", 230, 16)))
    changed = with_stations(desired, **{"markt-1": {"evses": (two_plugs, *st.evses[1:])}})
    evse = evses(build_locations(changed, {}, {}, config_time=T0).locations)["DLF-AC-0001-1"]
    assert [(c["id"], c["standard"], c["max_electric_power"]) for c in evse["connectors"]] == [
        ("1", "IEC_62196_T2", 22000), ("2", "DOMESTIC_F", 3680)]


def test_evses_under_a_reservable_policy_are_reservable_and_all_read_rfid() -> None:
    published = evses(build_locations(example(GARAGE), {}, {}, config_time=T0).locations)
    caps = {uid: e["capabilities"] for uid, e in published.items()}
    assert caps["PCG-UTR-L1-01-1"] == ["RESERVABLE", "RFID_READER"]  # station policy
    assert caps["PCG-UTR-L1-02-1"] == ["RESERVABLE", "RFID_READER"]  # EVSE policy
    assert caps["PCG-UTR-L1-02-2"] == ["RFID_READER"]
    assert caps["PCG-UTR-L0-DC1-1"] == ["RFID_READER"]


# --- status ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ocpp", "ocpi"), [
    ("Available", "AVAILABLE"), ("Preparing", "CHARGING"), ("Charging", "CHARGING"), ("SuspendedEV", "CHARGING"),
    ("SuspendedEVSE", "CHARGING"), ("Finishing", "BLOCKED"), ("Reserved", "RESERVED"), ("Faulted", "OUTOFORDER"),
    ("Unavailable", "INOPERATIVE"), ("charging", "CHARGING"), ("Occupied", "UNKNOWN"), (None, "UNKNOWN"),
])
def test_an_ocpp_status_maps_to_the_ocpi_evse_status(ocpp: str | None, ocpi: str) -> None:
    assert ocpi_status(ocpp) == ocpi


def test_an_offline_or_never_seen_station_has_unknown_status_since_it_went_offline() -> None:
    offline = LiveStation(online=False, connectors={1: status(1, "Charging")}, since=at(-5))
    assert live_status(offline, 1, T0) == ("UNKNOWN", at(-5))
    assert live_status(None, 1, T0) == ("UNKNOWN", T0)
    assert live_status(online({2: "Available"}), 1, T0) == ("UNKNOWN", T0)  # no StatusNotification yet


def test_live_status_is_read_from_the_store_s_station_record() -> None:
    record = StationRecord(identity="DLF-AC-0001", boot=None, registration_status="Accepted", last_boot_at=None,
                           last_seen=at(-20), online=False, configuration=(), configuration_read_at=None,
                           local_list_version=None, local_list_hash=None, connectors=(status(1, "Charging"),),
                           credentials=Credentials(), security_profile=None)
    offline = LiveStation.from_record(record)
    assert offline.since == at(-20) and live_status(offline, 1, T0) == ("UNKNOWN", at(-20))
    back = LiveStation.from_record(dataclasses.replace(record, online=True))
    assert back.since is None and live_status(back, 1, at(9)) == ("CHARGING", T0)


def test_a_faulted_or_unavailable_charge_point_overrides_its_idle_connectors() -> None:
    live = LiveStation(online=True, connectors={0: status(0, "Faulted", at(3)), 1: status(1, "Available"),
                                                2: status(2, "Charging")})
    assert live_status(live, 1, T0) == ("OUTOFORDER", at(3))
    assert live_status(live, 2, T0) == ("CHARGING", T0)
    unavailable = LiveStation(online=True, connectors={0: status(0, "Unavailable"), 1: status(1, "Available")})
    assert live_status(unavailable, 1, T0)[0] == "INOPERATIVE"


def test_the_evse_status_comes_from_its_connector_s_last_status_notification() -> None:
    desired = example(TOWN)
    live = {"DLF-AC-0001": online({1: "Charging", 2: "Unavailable"}), "dlf-ac-0002": online({1: "Faulted"})}
    published = evses(build_locations(desired, live, {}, config_time=T0).locations)
    assert published["DLF-AC-0001-1"]["status"] == "CHARGING"
    assert published["DLF-AC-0001-2"]["status"] == "INOPERATIVE"
    assert published["DLF-AC-0002-1"]["status"] == "OUTOFORDER"  # identities match case-insensitively
    assert published["DLF-AC-0002-2"]["status"] == "UNKNOWN"


# --- never deleted: REMOVED --------------------------------------------------------------------------------


def test_a_station_removed_from_the_repository_keeps_its_evses_with_status_removed() -> None:
    desired = example(GARAGE)
    first = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    without = with_stations(desired, drop=["l0-dc-1"])
    second = build_locations(without, fleet(without), first, config_time=at(60)).locations
    garage = second["papendorp-garage"]
    removed = [e for e in garage["evses"] if e["status"] == "REMOVED"]
    assert [e["uid"] for e in removed] == ["PCG-UTR-L0-DC1-1", "PCG-UTR-L0-DC1-2"]
    assert all(e["last_updated"] == "2026-01-05T09:00:00Z" for e in removed)
    assert removed[0]["connectors"] == first["papendorp-garage"]["evses"][0]["connectors"]
    assert garage["last_updated"] == "2026-01-05T09:00:00Z"
    # and it stays so, unchanged, on the next builds
    third = build_locations(without, fleet(without), second, config_time=at(120)).locations
    assert third == second


def test_a_station_made_hidden_keeps_its_evses_with_status_removed_even_when_its_location_empties() -> None:
    desired = example(TOWN)
    first = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    hidden = with_stations(desired, **{"markt-1": {"visibility": "hidden"}})
    second = build_locations(hidden, fleet(hidden), first, config_time=at(10)).locations
    assert [(e["uid"], e["status"]) for e in second["markt"]["evses"]] == [
        ("DLF-AC-0001-1", "REMOVED"), ("DLF-AC-0001-2", "REMOVED")]
    assert second["markt"]["name"] == first["markt"]["name"]


def test_a_station_moving_between_locations_gets_new_uids_and_leaves_removed_ones_behind() -> None:
    desired = example(GARAGE)
    first = build_locations(desired, {}, {}, config_time=T0).locations
    public = with_stations(desired, **{"service-bay": {"visibility": "public",
                                                       "publish_allowed_to": (), "address": None}})
    second = build_locations(public, {}, first, config_time=at(5)).locations
    staff = second["papendorp-garage-private-staff"]
    assert [(e["uid"], e["status"]) for e in staff["evses"]] == [("PCG-UTR-SERVICE-01-1", "REMOVED")]
    moved = [e for e in second["papendorp-garage"]["evses"] if e["evse_id"] == "NL*PCG*EPCG*UTR*SERVICE*01*1"]
    assert len(moved) == 1 and moved[0]["uid"].startswith("PCG-UTR-SERVICE-01-1-")
    all_uids = [e["uid"].upper() for loc in second.values() for e in loc["evses"]]
    assert len(all_uids) == len(set(all_uids))
    # moving back revives the original uid; the one in between is REMOVED
    third = build_locations(desired, {}, second, config_time=at(10)).locations
    assert [(e["uid"], e["status"]) for e in third["papendorp-garage-private-staff"]["evses"]] == [
        ("PCG-UTR-SERVICE-01-1", "UNKNOWN")]
    assert {e["status"] for e in third["papendorp-garage"]["evses"] if e["uid"] == moved[0]["uid"]} == {"REMOVED"}


def test_a_deactivated_station_stays_published_as_inoperative_but_is_not_published_before_activation() -> None:
    desired = example(TOWN)
    first = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    paused = with_stations(desired, **{"oude-delft-1": {"activation": m.Activation("public-ac", activated=False)}})
    second = build_locations(paused, fleet(paused), first, config_time=at(1)).locations
    assert {e["status"] for e in second["oude-delft"]["evses"]} == {"INOPERATIVE"}
    fresh = build_locations(paused, fleet(paused), {}, config_time=at(1)).locations
    assert "oude-delft" not in fresh


# --- last_updated ------------------------------------------------------------------------------------------


def test_last_updated_is_stable_when_nothing_changed() -> None:
    desired = example(GARAGE)
    live = fleet(desired, "Available", at(-10))
    first = build_locations(desired, live, {}, config_time=T0).locations
    assert build_locations(desired, live, {}, config_time=T0).locations == first
    later = build_locations(desired, live, first, config_time=at(600)).locations  # a new, identical revision
    assert later == first


def test_a_status_change_updates_that_evse_and_its_location_only() -> None:
    desired = example(GARAGE)
    live = fleet(desired, "Available", at(-10))
    first = build_locations(desired, live, {}, config_time=T0).locations
    live["PCG-UTR-L1-01"] = LiveStation(online=True, connectors={
        1: status(1, "Charging", at(30)), 2: status(2, "Available", at(-10))})
    second = build_locations(desired, live, first, config_time=T0).locations
    before, after = evses(first), evses(second)
    assert after["PCG-UTR-L1-01-1"]["last_updated"] == "2026-01-05T08:30:00Z"
    assert after["PCG-UTR-L1-01-1"]["connectors"] == before["PCG-UTR-L1-01-1"]["connectors"]
    assert all(after[uid] == before[uid] for uid in before if uid != "PCG-UTR-L1-01-1")
    assert second["papendorp-garage"]["last_updated"] == "2026-01-05T08:30:00Z"
    assert second["papendorp-garage-private-employees"] == first["papendorp-garage-private-employees"]


def test_a_configuration_change_updates_the_connector_evse_and_location_with_the_revision_time() -> None:
    desired = example(GARAGE)
    first = build_locations(desired, {}, {}, config_time=T0).locations
    settings = dataclasses.replace(desired.stations["l0-dc-1"].settings, tariff="visitor-ac")
    changed = with_stations(desired, **{"l0-dc-1": {"settings": settings}})
    second = build_locations(changed, {}, first, config_time=at(90)).locations
    evse = evses(second)["PCG-UTR-L0-DC1-1"]
    assert evse["connectors"][0]["tariff_ids"] == ["visitor-ac"]
    assert evse["connectors"][0]["last_updated"] == evse["last_updated"] == "2026-01-05T09:30:00Z"
    assert second["papendorp-garage"]["last_updated"] == "2026-01-05T09:30:00Z"
    assert evses(second)["PCG-UTR-L1-01-1"] == evses(first)["PCG-UTR-L1-01-1"]


def test_a_parent_is_never_older_than_its_children() -> None:
    desired = example(TOWN)
    live: dict[str, Any] = fleet(desired, "Available", at(45))
    for loc in build_locations(desired, live, {}, config_time=T0).sorted():
        for evse in loc["evses"]:
            assert loc["last_updated"] >= evse["last_updated"]
            assert all(evse["last_updated"] >= c["last_updated"] for c in evse["connectors"])
