"""OCPI 2.2.1 Credentials module: who may call us, and the credentials token exchange, as pure state transitions.

Role: the registration rules of the specification, without I/O. `CredentialsState` holds the registration
tokens we handed out offline (CREDENTIALS_TOKEN_A, each usable once) and the registered peers; every
function returns a new state (the caller persists it through a `CredentialsStore`) and a `Response`.

A peer registering with us (we are the Receiver of the POST), handled in two steps so the HTTP layer can
fetch in between:

1. `check_credentials_request(state, method, auth_header, body, now)` -> a `CredentialsRequest`, or the
   answer: 401 unknown token; 405 a POST from a peer already registered, or a PUT / DELETE from one that
   is not; 2001 a credentials object with a missing or wrong field.
2. The HTTP layer GETs the peer's versions (with the peer's token), picks 2.2.1 (`select_version`) and GETs
   its details (`parse_version_details`), giving a `PeerVersion` or a `FetchError` (3001 unable to use
   the client's API, 3002 no 2.2.1).
3. `register_credentials(state, request, fetched, new_token=..., party=..., base_url=..., now=...)`: POST
   stores the peer and retires the CREDENTIALS_TOKEN_A it used; PUT updates it; both answer our
   credentials carrying `new_token` (generate it with `new_token()`), which from then on is the only token
   the peer may use. GET answers our credentials with the caller's current token; DELETE unregisters.

Token A authorizes the Versions and Credentials modules only (`may_call`); other modules need a peer token.

Registering with a partner (we are the Sender): GET their versions with their token A, POST
`our_credentials(<our new token>, ...)`, then `peer_from_registration(...)` keeps the token they returned.

Boundary: pure except `new_token()` (the one place randomness is drawn); no HTTP, no storage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from controller.config.model import Owner

from .ocpi import OCPI_VERSION, Obj, format_datetime, parse_datetime
from .ocpi_api import (
    CLIENT_ERROR,
    INVALID_PARAMETERS,
    UNABLE_TO_USE_CLIENT_API,
    UNSUPPORTED_VERSION,
    Response,
    Urls,
    envelope,
    error,
    ok,
    token_candidates,
    unauthorized,
)

ROLES = ("CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP")
TOKEN_MAX = 64  # Credentials.token: string(64)


def _same(a: str, b: str) -> bool:
    """Token comparison in constant time."""
    return secrets.compare_digest(a.encode(), b.encode())


def new_token() -> str:
    """A fresh credentials token (43 URL-safe ASCII characters)."""
    return secrets.token_urlsafe(32)


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    identifier: str
    role: str  # SENDER | RECEIVER
    url: str


@dataclasses.dataclass(frozen=True, slots=True)
class PeerVersion:
    """The version agreed with a peer and its endpoints for it."""

    version: str
    endpoints: tuple[Endpoint, ...]

    def url(self, identifier: str, role: str = "RECEIVER") -> str | None:
        return next((e.url for e in self.endpoints if e.identifier == identifier and e.role == role), None)


@dataclasses.dataclass(frozen=True, slots=True)
class FetchError:
    """Why the peer's versions could not be used: 3001 (unreachable / invalid) or 3002 (no 2.2.1)."""

    status_code: int
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Peer:
    """A registered platform. `inbound_token` is what it sends us; `outbound_token` what we send it."""

    inbound_token: str
    outbound_token: str
    versions_url: str
    roles: tuple[Obj, ...]
    version: PeerVersion
    registered_at: dt.datetime
    encode_token: bool = True  # False for a peer that expects the raw token in our Authorization header

    @property
    def parties(self) -> tuple[tuple[str, str], ...]:
        return tuple((str(r["country_code"]).upper(), str(r["party_id"]).upper()) for r in self.roles)


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialsState:
    pending: frozenset[str] = frozenset()  # CREDENTIALS_TOKEN_A handed out, not used yet
    peers: tuple[Peer, ...] = ()

    def offer(self, token_a: str) -> CredentialsState:
        """Hand out a registration token (given to the partner offline, with our versions URL)."""
        return dataclasses.replace(self, pending=self.pending | {token_a})

    def peer(self, inbound_token: str) -> Peer | None:
        return next((p for p in self.peers if _same(p.inbound_token, inbound_token)), None)

    def is_pending(self, token: str) -> bool:
        return any(_same(t, token) for t in self.pending)

    def to_dict(self) -> Obj:
        return {"pending": sorted(self.pending), "peers": [{
            "inbound_token": p.inbound_token, "outbound_token": p.outbound_token, "versions_url": p.versions_url,
            "roles": list(p.roles), "version": p.version.version,
            "endpoints": [dataclasses.asdict(e) for e in p.version.endpoints],
            "registered_at": format_datetime(p.registered_at), "encode_token": p.encode_token,
        } for p in self.peers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CredentialsState:
        return cls(pending=frozenset(data.get("pending", ())), peers=tuple(Peer(
            inbound_token=p["inbound_token"], outbound_token=p["outbound_token"], versions_url=p["versions_url"],
            roles=tuple(p["roles"]),
            version=PeerVersion(p["version"], tuple(Endpoint(**e) for e in p["endpoints"])),
            registered_at=parse_datetime(p["registered_at"]), encode_token=p.get("encode_token", True),
        ) for p in data.get("peers", ())))


class CredentialsStore(Protocol):
    """Where the shell keeps the state (a file, the database); injected, never imported here."""

    def load(self) -> CredentialsState: ...

    def save(self, state: CredentialsState) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    kind: Literal["registration", "peer"]
    token: str
    peer: Peer | None = None


def authenticate(auth_header: str | None, state: CredentialsState) -> Caller | None:
    """Who is calling: a registered peer, a holder of a registration token, or nobody (None -> 401)."""
    for token in token_candidates(auth_header):
        peer = state.peer(token)
        if peer is not None:
            return Caller("peer", token, peer)
        if state.is_pending(token):
            return Caller("registration", token)
    return None


def may_call(caller: Caller | None, module: str) -> bool:
    """Token A opens only the Versions and Credentials modules; everything else needs a registered peer."""
    if caller is None:
        return False
    return caller.kind == "peer" or module in ("versions", "credentials")


@dataclasses.dataclass(frozen=True, slots=True)
class OurParty:
    country_code: str
    party_id: str
    name: str
    website: str | None = None

    @classmethod
    def from_owner(cls, owner: Owner) -> OurParty:
        return cls(owner.ocpi_country_code, owner.ocpi_party_id, owner.display_name[:100])


def our_credentials(token: str, party: OurParty, base_url: str) -> Obj:
    """Our Credentials object: `token` for the peer to call us, our versions URL, our CPO role."""
    details: Obj = {"name": party.name}
    if party.website:
        details["website"] = party.website
    return {"token": token, "url": Urls(base_url).versions, "roles": [{
        "role": "CPO", "business_details": details, "party_id": party.party_id, "country_code": party.country_code,
    }]}


def validate_credentials(body: Any) -> str | None:
    """What is wrong with a Credentials object from a peer (None when it is valid)."""
    if not isinstance(body, Mapping):
        return "the body must be a Credentials object"
    token, url, roles = body.get("token"), body.get("url"), body.get("roles")
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX or \
            not all(" " <= ch <= "~" for ch in token):
        return f"token must be 1 to {TOKEN_MAX} printable ASCII characters"
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 255:
        return "url must be the absolute URL (at most 255 characters) of the versions endpoint"
    if not isinstance(roles, list) or not roles:
        return "roles must list at least one CredentialsRole"
    seen = set()
    for i, r in enumerate(roles):
        if not isinstance(r, Mapping):
            return f"roles[{i}] must be an object"
        if r.get("role") not in ROLES:
            return f"roles[{i}].role must be one of {', '.join(ROLES)}"
        cc, pid, bd = r.get("country_code"), r.get("party_id"), r.get("business_details")
        if not isinstance(cc, str) or len(cc) != 2 or not cc.isalpha():
            return f"roles[{i}].country_code must be an ISO 3166-1 alpha-2 code"
        if not isinstance(pid, str) or len(pid) != 3 or not pid.isalnum():
            return f"roles[{i}].party_id must be 3 letters or digits"
        if not isinstance(bd, Mapping) or not isinstance(bd.get("name"), str) or not bd["name"] \
                or len(bd["name"]) > 100:
            return f"roles[{i}].business_details.name is required (at most 100 characters)"
        key = (r["role"], cc.upper(), pid.upper())
        if key in seen:
            return f"roles[{i}] repeats role {r['role']} for {cc}/{pid}"
        seen.add(key)
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialsRequest:
    """A POST / PUT that passed the checks: the peer's token for us to call it, its versions URL and roles."""

    method: Literal["POST", "PUT"]
    caller: Caller
    token: str
    url: str
    roles: tuple[Obj, ...]


def check_credentials_request(state: CredentialsState, method: str, auth_header: str | None, body: Any,
                              now: dt.datetime) -> CredentialsRequest | Response:
    """Step 1 of a POST / PUT: authorization, registration state and the Credentials object."""
    caller = authenticate(auth_header, state)
    if caller is None:
        return unauthorized(now)
    if method == "POST" and caller.kind == "peer":
        return error(CLIENT_ERROR, "already registered: use PUT to update the credentials", now, 405)
    if method == "PUT" and caller.kind != "peer":
        return error(CLIENT_ERROR, "not registered yet: use POST to register", now, 405)
    if method not in ("POST", "PUT"):
        return error(CLIENT_ERROR, f"{method} is not a credentials update", now, 405)
    problem = validate_credentials(body)
    if problem is not None:
        return error(INVALID_PARAMETERS, problem, now)
    return CredentialsRequest("POST" if method == "POST" else "PUT", caller, body["token"], body["url"],
                              tuple(dict(r) for r in body["roles"]))


def select_version(versions_data: Any) -> str | FetchError:
    """The URL of version 2.2.1 in a peer's versions list (the envelope's ``data``)."""
    if not isinstance(versions_data, list):
        return FetchError(UNABLE_TO_USE_CLIENT_API, "the peer's versions endpoint did not return a list")
    url = next((v.get("url") for v in versions_data if isinstance(v, Mapping) and v.get("version") == OCPI_VERSION),
               None)
    if not isinstance(url, str):
        offered = ", ".join(str(v.get("version")) for v in versions_data if isinstance(v, Mapping))
        return FetchError(UNSUPPORTED_VERSION, f"the peer offers no OCPI {OCPI_VERSION} (offers: {offered or 'none'})")
    return url


def parse_version_details(details_data: Any) -> PeerVersion | FetchError:
    """The peer's endpoints from its version details (the envelope's ``data``)."""
    if not isinstance(details_data, Mapping) or not isinstance(details_data.get("endpoints"), list):
        return FetchError(UNABLE_TO_USE_CLIENT_API, "the peer's version details have no endpoints list")
    endpoints = tuple(Endpoint(str(e.get("identifier")), str(e.get("role", "")), str(e.get("url")))
                      for e in details_data["endpoints"] if isinstance(e, Mapping) and e.get("url"))
    return PeerVersion(str(details_data.get("version", OCPI_VERSION)), endpoints)


def register_credentials(state: CredentialsState, request: CredentialsRequest, fetched: PeerVersion | FetchError,
                         *, new_token: str, party: OurParty, base_url: str,
                         now: dt.datetime) -> tuple[CredentialsState, Response]:
    """Step 3 of a POST / PUT: store the peer (or its update) and answer our credentials with `new_token`."""
    if isinstance(fetched, FetchError):
        return state, error(fetched.status_code, fetched.message, now)
    taken = state.pending | {p.inbound_token for p in state.peers}
    if new_token in taken or not 0 < len(new_token) <= TOKEN_MAX:
        raise ValueError("new_token must be a fresh token of 1 to 64 characters")
    peer = Peer(inbound_token=new_token, outbound_token=request.token, versions_url=request.url,
                roles=request.roles, version=fetched, registered_at=now)
    if request.method == "POST":
        if not state.is_pending(request.caller.token):  # used by a concurrent registration meanwhile
            return state, error(CLIENT_ERROR, "this registration token has been used already", now, 405)
        state = CredentialsState(state.pending - {request.caller.token}, (*state.peers, peer))
    else:
        old = state.peer(request.caller.token)
        if old is None:  # unregistered meanwhile
            return state, error(CLIENT_ERROR, "not registered", now, 405)
        peer = dataclasses.replace(peer, registered_at=old.registered_at, encode_token=old.encode_token)
        state = dataclasses.replace(state, peers=tuple(peer if p is old else p for p in state.peers))
    return state, ok(our_credentials(new_token, party, base_url), now)


def get_credentials(state: CredentialsState, auth_header: str | None, party: OurParty, base_url: str,
                    now: dt.datetime) -> Response:
    """GET: our credentials object, with the token the caller uses."""
    caller = authenticate(auth_header, state)
    if caller is None:
        return unauthorized(now)
    return ok(our_credentials(caller.token, party, base_url), now)


def delete_credentials(state: CredentialsState, auth_header: str | None,
                       now: dt.datetime) -> tuple[CredentialsState, Response]:
    """DELETE: unregister the calling peer (405 when it is not registered)."""
    caller = authenticate(auth_header, state)
    if caller is None:
        return state, unauthorized(now)
    if caller.peer is None:
        return state, error(CLIENT_ERROR, "not registered", now, 405)
    gone = caller.peer.inbound_token
    return dataclasses.replace(state, peers=tuple(p for p in state.peers if p.inbound_token != gone)), \
        Response(200, envelope(None, now))


def peer_from_registration(response_body: Any, *, our_token: str, versions_url: str, version: PeerVersion,
                           now: dt.datetime) -> Peer | str:
    """We registered with a partner: the Peer from its answer to our POST, or why the answer is unusable."""
    if not isinstance(response_body, Mapping) or response_body.get("status_code") != 1000:
        code = response_body.get("status_code") if isinstance(response_body, Mapping) else None
        return f"the partner refused the registration (status_code {code})"
    data = response_body.get("data")
    problem = validate_credentials(data)
    if problem is not None:
        return f"the partner's credentials are invalid: {problem}"
    assert isinstance(data, Mapping)
    return Peer(inbound_token=our_token, outbound_token=data["token"], versions_url=data["url"],
                roles=tuple(dict(r) for r in data["roles"]), version=version, registered_at=now)


def register_peer(state: CredentialsState, peer: Peer) -> CredentialsState:
    """Add a peer registered from our side (replacing one with the same versions URL)."""
    return dataclasses.replace(state, peers=(*(p for p in state.peers if p.versions_url != peer.versions_url), peer))


def receivers(state: CredentialsState, identifier: str = "locations") -> Sequence[tuple[Peer, str]]:
    """Peers with a RECEIVER endpoint for `identifier`, and its URL (the push targets)."""
    out = []
    for p in state.peers:
        url = p.version.url(identifier, "RECEIVER")
        if url:
            out.append((p, url))
    return out
