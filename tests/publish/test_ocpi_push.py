"""Push to a partner's Locations Receiver (controller/publish/ocpi_push.py): PUT / PATCH from two publications."""

from __future__ import annotations

import dataclasses

from controller.publish.ocpi import LiveStation, build_locations
from controller.publish.ocpi_push import push_requests

from .kit import T0, assert_valid, at, example, fleet, status, with_stations

RECEIVER = "https://emsp.example/ocpi/2.2.1/locations"


def test_a_first_push_puts_every_location() -> None:
    desired = example("town-curbside")
    current = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    requests = push_requests({}, current, receiver_url=RECEIVER)
    expected = [("PUT", f"{RECEIVER}/NL/DLF/{loc_id}") for loc_id in sorted(current)]
    assert [(r.method, r.url) for r in requests] == expected
    for r in requests:
        assert_valid("location", r.body)


def test_nothing_is_pushed_when_nothing_changed() -> None:
    desired = example("town-curbside")
    current = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    again = build_locations(desired, fleet(desired), current, config_time=at(60)).locations
    assert push_requests(current, again, receiver_url=RECEIVER) == []


def test_a_status_change_is_a_patch_of_the_evse_with_last_updated() -> None:
    desired = example("town-curbside")
    live = fleet(desired)
    before = build_locations(desired, live, {}, config_time=T0).locations
    live["DLF-AC-0001"] = LiveStation(online=True, connectors={1: status(1, "Charging", at(7)),
                                                               2: status(2, "Available")})
    after = build_locations(desired, live, before, config_time=T0).locations
    (request,) = push_requests(before, after, receiver_url=RECEIVER)
    assert (request.method, request.url) == ("PATCH", f"{RECEIVER}/NL/DLF/markt/DLF-AC-0001-1")
    assert request.body == {"status": "CHARGING", "last_updated": "2026-01-05T08:07:00Z"}


def test_a_removed_station_is_patched_to_removed() -> None:
    desired = example("town-curbside")
    before = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    without = with_stations(desired, drop=["phoenixstraat-1"])
    after = build_locations(without, fleet(without), before, config_time=at(1)).locations
    requests = push_requests(before, after, receiver_url=RECEIVER)
    assert [(r.method, r.url, r.body["status"]) for r in requests] == [
        ("PATCH", f"{RECEIVER}/NL/DLF/phoenixstraat/DLF-AC-0003-{n}", "REMOVED") for n in (1, 2)]


def test_a_changed_evse_is_put_whole_and_a_changed_location_too() -> None:
    desired = example("town-curbside")
    before = build_locations(desired, fleet(desired), {}, config_time=T0).locations
    st = desired.stations["markt-1"]
    retariffed = with_stations(desired, **{"markt-1": {"settings": dataclasses.replace(st.settings,
                                                                                        tariff="resident-ac")}})
    after = build_locations(retariffed, fleet(retariffed), before, config_time=at(1)).locations
    requests = push_requests(before, after, receiver_url=RECEIVER)
    expected = [("PUT", f"{RECEIVER}/NL/DLF/markt/DLF-AC-0001-{n}") for n in (1, 2)]
    assert [(r.method, r.url) for r in requests] == expected
    for r in requests:
        assert_valid("evse", r.body)
    renamed = with_stations(desired, **{"markt-1": {"display_name": "Markt"}})
    after = build_locations(renamed, fleet(renamed), before, config_time=at(1)).locations
    assert [(r.method, r.url) for r in push_requests(before, after, receiver_url=RECEIVER)] == [
        ("PUT", f"{RECEIVER}/NL/DLF/markt")]
