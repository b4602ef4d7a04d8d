"""OCPI Credentials module (controller/publish/ocpi_credentials.py): the token exchange as state transitions."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from controller.publish.ocpi_api import Response, authorization_header
from controller.publish.ocpi_credentials import (
    CredentialsRequest,
    CredentialsState,
    Endpoint,
    FetchError,
    OurParty,
    PeerVersion,
    authenticate,
    check_credentials_request,
    delete_credentials,
    get_credentials,
    may_call,
    new_token,
    our_credentials,
    parse_version_details,
    peer_from_registration,
    receivers,
    register_credentials,
    select_version,
)

from .kit import T0, assert_valid, at, example

BASE = "https://cs.example.com/ocpi"
TOKEN_A = "token-a-for-the-emsp"
TOKEN_B = "emsp-token-b-9e80aca8"
PARTY = OurParty.from_owner(example("town-curbside").owner)
EMSP_VERSION = PeerVersion("2.2.1", (Endpoint("credentials", "SENDER", "https://emsp.example/2.2.1/credentials"),
                                     Endpoint("locations", "RECEIVER", "https://emsp.example/2.2.1/locations")))


def creds(token: str = TOKEN_B, **changes: Any) -> dict[str, Any]:
    body = {"token": token, "url": "https://emsp.example/versions", "roles": [
        {"role": "EMSP", "party_id": "EMS", "country_code": "DE", "business_details": {"name": "Example eMSP"}}]}
    body.update(changes)
    return body


def auth(token: str) -> str:
    return authorization_header(token)


def registered(token_c: str = "token-c") -> CredentialsState:
    state = CredentialsState().offer(TOKEN_A)
    request = check_credentials_request(state, "POST", auth(TOKEN_A), creds(), T0)
    assert isinstance(request, CredentialsRequest)
    state, _resp = register_credentials(state, request, EMSP_VERSION, new_token=token_c, party=PARTY,
                                        base_url=BASE, now=T0)
    return state


def test_a_peer_registers_with_token_a_and_gets_token_c_in_our_credentials() -> None:
    state = CredentialsState().offer(TOKEN_A)
    request = check_credentials_request(state, "POST", auth(TOKEN_A), creds(), T0)
    assert isinstance(request, CredentialsRequest) and request.token == TOKEN_B
    versions_url = select_version([{"version": "2.1.1", "url": "https://emsp.example/2.1.1"},
                                   {"version": "2.2.1", "url": "https://emsp.example/2.2.1"}])
    assert versions_url == "https://emsp.example/2.2.1"
    fetched = parse_version_details({"version": "2.2.1", "endpoints": [
        {"identifier": e.identifier, "role": e.role, "url": e.url} for e in EMSP_VERSION.endpoints]})
    assert fetched == EMSP_VERSION
    token_c = new_token()
    state, resp = register_credentials(state, request, fetched, new_token=token_c, party=PARTY, base_url=BASE, now=T0)
    assert resp.status == 200 and resp.body["status_code"] == 1000
    assert_valid("response", resp.body)
    assert_valid("credentials", resp.body["data"])
    assert resp.body["data"] == our_credentials(token_c, PARTY, BASE)
    assert resp.body["data"]["roles"][0] == {"role": "CPO", "business_details": {"name": "Gemeente Delft"},
                                             "party_id": "DLF", "country_code": "NL"}
    (peer,) = state.peers
    assert (peer.inbound_token, peer.outbound_token, peer.versions_url) == (token_c, TOKEN_B,
                                                                            "https://emsp.example/versions")
    assert peer.parties == (("DE", "EMS"),)
    assert state.pending == frozenset()  # token A is used up
    assert authenticate(auth(TOKEN_A), state) is None
    caller = authenticate(auth(token_c), state)
    assert caller is not None and caller.peer == peer and may_call(caller, "locations")
    assert receivers(state) == [(peer, "https://emsp.example/2.2.1/locations")]


def test_token_a_opens_only_the_versions_and_credentials_modules() -> None:
    caller = authenticate(auth(TOKEN_A), CredentialsState().offer(TOKEN_A))
    assert caller is not None and caller.kind == "registration"
    assert may_call(caller, "versions") and may_call(caller, "credentials")
    assert not may_call(caller, "locations") and not may_call(None, "versions")


def test_a_raw_token_from_an_older_implementation_is_accepted() -> None:
    assert authenticate(f"Token {TOKEN_A}", CredentialsState().offer(TOKEN_A)) is not None


def test_an_unknown_token_is_401() -> None:
    resp = check_credentials_request(CredentialsState().offer(TOKEN_A), "POST", auth("guess"), creds(), T0)
    assert isinstance(resp, Response) and resp.status == 401
    assert_valid("response", resp.body)


def test_post_from_a_registered_peer_and_put_or_delete_before_registering_are_405() -> None:
    state = registered()
    post_again = check_credentials_request(state, "POST", auth("token-c"), creds(), T0)
    assert isinstance(post_again, Response) and post_again.status == 405
    fresh = CredentialsState().offer(TOKEN_A)
    put_first = check_credentials_request(fresh, "PUT", auth(TOKEN_A), creds(), T0)
    assert isinstance(put_first, Response) and put_first.status == 405
    unchanged, delete_first = delete_credentials(fresh, auth(TOKEN_A), T0)
    assert delete_first.status == 405 and unchanged == fresh


@pytest.mark.parametrize(("body", "complaint"), [
    (creds(token=""), "token"),
    (creds(token="x" * 65), "token"),
    (creds(token="tab\there"), "token"),
    (creds(url="emsp.example/versions"), "url"),
    (creds(roles=[]), "roles"),
    (creds(roles=[{"role": "MSP", "party_id": "EMS", "country_code": "DE", "business_details": {"name": "X"}}]),
     "role"),
    (creds(roles=[{"role": "EMSP", "party_id": "EMSP", "country_code": "DE", "business_details": {"name": "X"}}]),
     "party_id"),
    (creds(roles=[{"role": "EMSP", "party_id": "EMS", "country_code": "DEU", "business_details": {"name": "X"}}]),
     "country_code"),
    (creds(roles=[{"role": "EMSP", "party_id": "EMS", "country_code": "DE", "business_details": {}}]),
     "business_details"),
    (creds(roles=[creds()["roles"][0], creds()["roles"][0]]), "repeats"),
    ("not an object", "Credentials"),
])
def test_an_invalid_credentials_object_is_answered_with_2001(body: Any, complaint: str) -> None:
    resp = check_credentials_request(CredentialsState().offer(TOKEN_A), "POST", auth(TOKEN_A), body, T0)
    assert isinstance(resp, Response) and resp.body["status_code"] == 2001
    assert complaint in resp.body["status_message"]


def test_when_the_peer_cannot_be_used_the_registration_fails_with_3001_or_3002_and_nothing_changes() -> None:
    state = CredentialsState().offer(TOKEN_A)
    request = check_credentials_request(state, "POST", auth(TOKEN_A), creds(), T0)
    assert isinstance(request, CredentialsRequest)
    no_221 = select_version([{"version": "2.1.1", "url": "https://emsp.example/2.1.1"}])
    assert isinstance(no_221, FetchError) and no_221.status_code == 3002 and "2.1.1" in no_221.message
    unreachable = FetchError(3001, "GET https://emsp.example/versions: connection refused")
    for failure in (no_221, unreachable, parse_version_details({"version": "2.2.1"})):
        assert isinstance(failure, FetchError)
        after, resp = register_credentials(state, request, failure, new_token="c", party=PARTY, base_url=BASE, now=T0)
        assert after == state and resp.body["status_code"] in (3001, 3002) and "data" not in resp.body
    assert isinstance(select_version({"oops": 1}), FetchError)


def test_put_updates_the_peer_and_rotates_the_token_it_uses() -> None:
    state = registered("token-c")
    request = check_credentials_request(state, "PUT", auth("token-c"), creds(token="emsp-token-b2"), T0)
    assert isinstance(request, CredentialsRequest) and request.method == "PUT"
    state, resp = register_credentials(state, request, EMSP_VERSION, new_token="token-c2", party=PARTY,
                                       base_url=BASE, now=at(5))
    assert resp.body["data"]["token"] == "token-c2"
    (peer,) = state.peers
    assert (peer.inbound_token, peer.outbound_token, peer.registered_at) == ("token-c2", "emsp-token-b2", T0)
    assert authenticate(auth("token-c"), state) is None


def test_a_new_token_must_not_reuse_one_in_use() -> None:
    state = registered("token-c").offer(TOKEN_A)
    request = check_credentials_request(state, "POST", auth(TOKEN_A), creds(), T0)
    assert isinstance(request, CredentialsRequest)
    with pytest.raises(ValueError):
        register_credentials(state, request, EMSP_VERSION, new_token="token-c", party=PARTY, base_url=BASE, now=T0)


def test_get_answers_our_credentials_with_the_caller_s_token_and_delete_unregisters() -> None:
    state = registered("token-c")
    resp = get_credentials(state, auth("token-c"), PARTY, BASE, T0)
    assert resp.body["data"]["token"] == "token-c" and resp.body["data"]["url"] == f"{BASE}/versions"
    assert get_credentials(state, auth("nope"), PARTY, BASE, T0).status == 401
    state, deleted = delete_credentials(state, auth("token-c"), T0)
    assert deleted.status == 200 and deleted.body["status_code"] == 1000 and state.peers == ()
    assert_valid("response", deleted.body)


def test_the_state_round_trips_through_json_for_the_store() -> None:
    state = registered().offer("another-token-a")
    assert CredentialsState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_registering_with_a_partner_keeps_the_token_it_answers() -> None:
    our_token = new_token()
    body = our_credentials(our_token, PARTY, BASE)
    assert_valid("credentials", body)
    answer = {"data": creds(token="partner-token-c"), "status_code": 1000, "timestamp": "2026-01-05T08:00:00Z"}
    peer = peer_from_registration(answer, our_token=our_token, versions_url="https://emsp.example/versions",
                                  version=EMSP_VERSION, now=T0)
    assert not isinstance(peer, str)
    assert (peer.inbound_token, peer.outbound_token) == (our_token, "partner-token-c")
    refused = peer_from_registration({"status_code": 3001, "timestamp": "x"}, our_token=our_token,
                                     versions_url="u", version=EMSP_VERSION, now=T0)
    assert isinstance(refused, str) and "3001" in refused


def test_new_tokens_are_fresh_printable_ascii_within_64_characters() -> None:
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(0 < len(t) <= 64 and t.isascii() and t.isprintable() for t in tokens)
    assert base64.b64decode(authorization_header(next(iter(tokens)))[6:]).decode() in tokens


def test_a_registration_token_used_by_a_concurrent_post_cannot_register_twice() -> None:
    state = CredentialsState().offer(TOKEN_A)
    request = check_credentials_request(state, "POST", auth(TOKEN_A), creds(), T0)
    assert isinstance(request, CredentialsRequest)
    first, _ = register_credentials(state, request, EMSP_VERSION, new_token="c1", party=PARTY, base_url=BASE, now=T0)
    second, resp = register_credentials(first, request, EMSP_VERSION, new_token="c2", party=PARTY, base_url=BASE,
                                        now=T0)
    assert resp.status == 405 and second == first and len(second.peers) == 1
