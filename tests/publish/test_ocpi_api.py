"""OCPI request handling (controller/publish/ocpi_api.py): envelope, Versions, Locations Sender, headers."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from controller.publish.ocpi import Obj, build_locations
from controller.publish.ocpi_api import (
    ListQuery,
    Response,
    authorization_header,
    envelope,
    get_connector,
    get_evse,
    get_location,
    list_locations,
    parse_list_query,
    reply_headers,
    token_candidates,
    version_details,
    versions,
)

from .kit import EXAMPLE_NAMES, T0, assert_valid, at, example, fleet

BASE = "https://cs.example.com/ocpi"
URL = f"{BASE}/2.2.1/locations"


def town() -> list[Obj]:
    desired = example(EXAMPLE_NAMES[1])
    return build_locations(desired, fleet(desired), {}, config_time=T0).sorted()


def stamped(*times: str) -> list[Obj]:
    """Minimal Location stand-ins with the given last_updated values (ids loc-0, loc-1, ...)."""
    return [{"id": f"loc-{i}", "last_updated": t} for i, t in enumerate(times)]


def assert_envelope(resp: Response) -> Any:
    assert_valid("response", resp.body)
    return resp.body.get("data")


def test_versions_and_version_details_are_valid_and_point_at_our_endpoints() -> None:
    data = assert_envelope(versions(BASE, T0))
    assert data == [{"version": "2.2.1", "url": f"{BASE}/2.2.1"}]
    for v in data:
        assert_valid("version", v)
    details = assert_envelope(version_details(BASE, T0))
    assert_valid("version_details", details)
    assert {(e["identifier"], e["role"], e["url"]) for e in details["endpoints"]} == {
        ("credentials", "SENDER", f"{BASE}/2.2.1/credentials"), ("locations", "SENDER", URL)}


def test_the_envelope_leaves_data_out_of_errors() -> None:
    body = envelope(None, T0, 2001, "offset must be a number")
    assert body == {"status_code": 2001, "status_message": "offset must be a number",
                    "timestamp": "2026-01-05T08:00:00Z"}
    assert_valid("response", body)


# --- GET list ----------------------------------------------------------------------------------------------


def test_paging_returns_pages_with_total_count_limit_and_a_next_link_until_the_last_page() -> None:
    locations = town()
    seen: list[str] = []
    query: ListQuery | Response = ListQuery(limit=3)
    pages = 0
    while True:
        assert isinstance(query, ListQuery)
        resp = list_locations(locations, query, url=URL, now=T0)
        page = assert_envelope(resp)
        pages += 1
        assert resp.headers["X-Total-Count"] == str(len(locations))
        assert resp.headers["X-Limit"] == "3"
        seen += [loc["id"] for loc in page]
        if "Link" not in resp.headers:
            break
        link = resp.headers["Link"]
        assert link.startswith(f"<{URL}?") and link.endswith('>; rel="next"')
        query = parse_list_query({k: v[0] for k, v in parse_qs(urlsplit(link[1:link.index(">")]).query).items()}, T0)
    assert seen == [loc["id"] for loc in locations] and pages == 3


def test_a_limit_above_the_server_maximum_is_capped_and_reported_in_x_limit() -> None:
    resp = list_locations(stamped(*["2026-01-01T00:00:00Z"] * 5), ListQuery(limit=1000), url=URL, now=T0, max_limit=2)
    assert resp.headers["X-Limit"] == "2" and len(resp.body["data"]) == 2
    assert resp.headers["Link"] == f'<{URL}?offset=2&limit=2>; rel="next"'
    default = list_locations(stamped("2026-01-01T00:00:00Z"), ListQuery(), url=URL, now=T0)
    assert default.headers["X-Limit"] == "100" and "Link" not in default.headers


def test_date_from_is_inclusive_date_to_exclusive_and_the_link_keeps_the_filters() -> None:
    locs = stamped("2026-01-05T07:59:59Z", "2026-01-05T08:00:00Z", "2026-01-05T08:30:00Z", "2026-01-05T09:00:00Z")
    query = ListQuery(date_from=T0, date_to=at(60), limit=1)
    resp = list_locations(locs, query, url=URL, now=T0)
    assert [loc["id"] for loc in resp.body["data"]] == ["loc-1"]
    assert resp.headers["X-Total-Count"] == "2"
    assert resp.headers["Link"] == (f"<{URL}?offset=1&limit=1&date_from=2026-01-05T08:00:00Z"
                                    f"&date_to=2026-01-05T09:00:00Z>; rel=\"next\"")
    last = list_locations(locs, ListQuery(date_from=T0, date_to=at(60), offset=1, limit=1), url=URL, now=T0)
    assert [loc["id"] for loc in last.body["data"]] == ["loc-2"] and "Link" not in last.headers


def test_an_offset_past_the_end_gives_an_empty_page() -> None:
    resp = list_locations(stamped("2026-01-01T00:00:00Z"), ListQuery(offset=5), url=URL, now=T0)
    assert resp.body["data"] == [] and resp.headers["X-Total-Count"] == "1" and "Link" not in resp.headers


def test_list_query_parameters_are_parsed_and_wrong_ones_answered_with_2001() -> None:
    q = parse_list_query({"date_from": "2019-01-28T12:00:00", "date_to": "2019-01-29T12:00:00Z", "offset": "50",
                          "limit": "100"}, T0)
    assert isinstance(q, ListQuery) and q.offset == 50 and q.limit == 100
    assert q.date_from is not None and q.date_from.tzinfo is not None  # no designator means UTC
    for bad in ({"offset": "-1"}, {"limit": "ten"}, {"date_from": "yesterday"}):
        resp = parse_list_query(bad, T0)
        assert isinstance(resp, Response) and resp.body["status_code"] == 2001 and resp.status == 200


# --- GET object --------------------------------------------------------------------------------------------


def test_one_location_evse_or_connector_is_found_case_insensitively() -> None:
    locations = town()
    loc = assert_envelope(get_location(locations, "MARKT", T0))
    assert_valid("location", loc)
    evse = assert_envelope(get_evse(locations, "markt", "dlf-ac-0001-2", T0))
    assert_valid("evse", evse)
    assert evse["uid"] == "DLF-AC-0001-2"
    connector = assert_envelope(get_connector(locations, "markt", "DLF-AC-0001-2", "1", T0))
    assert_valid("connector", connector)


@pytest.mark.parametrize("path", [("nowhere",), ("markt", "DLF-AC-0009-1"), ("markt", "DLF-AC-0001-1", "2")])
def test_an_unknown_location_evse_or_connector_is_a_404_with_status_2003(path: tuple[str, ...]) -> None:
    locations = town()
    if len(path) == 1:
        resp = get_location(locations, path[0], T0)
    elif len(path) == 2:
        resp = get_evse(locations, path[0], path[1], T0)
    else:
        resp = get_connector(locations, path[0], path[1], path[2], T0)
    assert resp.status == 404 and resp.body["status_code"] == 2003 and "data" not in resp.body
    assert_valid("response", resp.body)


# --- headers -----------------------------------------------------------------------------------------------


def test_the_authorization_header_is_read_base64_encoded_or_raw() -> None:
    token = "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2"
    encoded = base64.b64encode(token.encode()).decode()
    assert token_candidates(f"Token {encoded}")[0] == token
    assert token in token_candidates(f"Token {token}")  # a 2.1.1 / 2.2 peer sending it raw
    assert token_candidates("Token ZXhhbXBsZS10b2tlbgo=")[0] == "example-token"  # the spec example (with "\n")
    assert token_candidates("token   abc") == ("abc",)
    assert token_candidates("Bearer abc") == () and token_candidates(None) == () and token_candidates("Token ") == ()


def test_our_authorization_header_is_base64_unless_the_peer_needs_it_raw() -> None:
    assert authorization_header("example-token") == "Token ZXhhbXBsZS10b2tlbg=="
    assert authorization_header("example-token", encode=False) == "Token example-token"


def test_answers_echo_request_ids_and_answer_the_routing_headers() -> None:
    request = {"x-request-id": "r-1", "X-Correlation-ID": "c-1", "OCPI-from-party-id": "EMS",
               "OCPI-from-country-code": "DE", "OCPI-to-party-id": "DLF", "OCPI-to-country-code": "NL"}
    assert reply_headers(request, country_code="NL", party_id="DLF") == {
        "X-Request-ID": "r-1", "X-Correlation-ID": "c-1", "OCPI-to-party-id": "EMS", "OCPI-to-country-code": "DE",
        "OCPI-from-party-id": "DLF", "OCPI-from-country-code": "NL"}
    assert reply_headers(request, country_code="NL", party_id="DLF", functional=False) == {
        "X-Request-ID": "r-1", "X-Correlation-ID": "c-1"}
