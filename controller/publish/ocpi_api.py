"""OCPI 2.2.1 CPO request handling: the response envelope, Versions, the Locations Sender interface, headers.

Role: handler-ready pure functions. Each takes the request's parts (already routed by the HTTP layer) and
`now`, and returns a `Response` (HTTP status, envelope body, headers) for the HTTP layer to write as JSON.
Credentials (token exchange and who may call what) live in `ocpi_credentials`; push in `ocpi_push`.

Conventions taken from the specification:

- Every answer is the envelope ``{data, status_code, status_message, timestamp}``; ``data`` is left out
  when there is nothing to return (errors, DELETE). Requests that reach the OCPI layer get HTTP 200 with
  an OCPI status code (2001 invalid parameters...); only transport problems use HTTP errors: 401 (missing
  or unknown credentials token), 404 + 2003 (unknown Location / EVSE / Connector on a GET), 405.
- ``Authorization: Token <token>``: 2.2.1 sends the credentials token Base64-encoded; many 2.1.1 / 2.2
  implementations send it raw. `token_candidates` returns both readings (a decoded value with a single
  trailing newline, as in the specification's own example, is accepted without it); a token matches if
  any candidate does.
- GET list: ``date_from`` inclusive, ``date_to`` exclusive, on ``last_updated``; ``offset`` / ``limit``
  pagination with ``X-Total-Count`` (matches before paging), ``X-Limit`` (the limit applied, at most
  `MAX_LIMIT`) and ``Link: <...>; rel="next"`` (keeping the filters) unless this is the last page. Objects
  are ordered by id, so repeated requests page over the same sequence.
- Ids are CiString: Location / EVSE / Connector lookups are case-insensitive.
- `reply_headers` echoes ``X-Request-ID`` / ``X-Correlation-ID`` and, for functional modules (Locations),
  answers the routing headers (``OCPI-to-*`` = the requester's ``OCPI-from-*``).

Boundary: pure; no HTTP server, no clock, no storage.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from .ocpi import OCPI_VERSION, Obj, format_datetime, parse_datetime

SUCCESS = 1000
CLIENT_ERROR = 2000
INVALID_PARAMETERS = 2001
NOT_ENOUGH_INFORMATION = 2002
UNKNOWN_LOCATION = 2003
SERVER_ERROR = 3000
UNABLE_TO_USE_CLIENT_API = 3001
UNSUPPORTED_VERSION = 3002
NO_MATCHING_ENDPOINTS = 3003

MAX_LIMIT = 100  # the most Locations one page returns


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """What the HTTP layer writes: status, JSON body (the OCPI envelope) and extra headers."""

    status: int
    body: Obj
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


def envelope(data: Any, now: dt.datetime, status_code: int = SUCCESS, message: str | None = None) -> Obj:
    """The OCPI response format; ``data`` is left out when None."""
    out: Obj = {}
    if data is not None:
        out["data"] = data
    out["status_code"] = status_code
    if message:
        out["status_message"] = message
    out["timestamp"] = format_datetime(now)
    return out


def ok(data: Any, now: dt.datetime, headers: Mapping[str, str] | None = None) -> Response:
    return Response(200, envelope(data, now), dict(headers or {}))


def error(status_code: int, message: str, now: dt.datetime, http_status: int = 200) -> Response:
    return Response(http_status, envelope(None, now, status_code, message))


def unauthorized(now: dt.datetime) -> Response:
    return error(CLIENT_ERROR, "missing or unknown credentials token in the Authorization header", now, 401)


# --- endpoints and versions ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Urls:
    """Our endpoint URLs under `base` (e.g. ``https://cs.example.com/ocpi``)."""

    base: str

    @property
    def versions(self) -> str:
        return f"{self.base.rstrip('/')}/versions"

    @property
    def details(self) -> str:
        return f"{self.base.rstrip('/')}/{OCPI_VERSION}"

    @property
    def credentials(self) -> str:
        return f"{self.details}/credentials"

    @property
    def locations(self) -> str:
        return f"{self.details}/locations"


def versions(base_url: str, now: dt.datetime) -> Response:
    """GET versions: the one version we implement."""
    return ok([{"version": OCPI_VERSION, "url": Urls(base_url).details}], now)


def version_details(base_url: str, now: dt.datetime) -> Response:
    """GET version details: credentials (SENDER, as the specification advises) and locations (SENDER)."""
    u = Urls(base_url)
    return ok({"version": OCPI_VERSION, "endpoints": [
        {"identifier": "credentials", "role": "SENDER", "url": u.credentials},
        {"identifier": "locations", "role": "SENDER", "url": u.locations},
    ]}, now)


# --- headers ---------------------------------------------------------------------------------------------


def _printable_ascii(text: str) -> bool:
    return bool(text) and all(" " <= ch <= "~" for ch in text)


def token_candidates(header: str | None) -> tuple[str, ...]:
    """The credentials tokens an ``Authorization: Token ...`` header may carry: Base64-decoded, then raw."""
    if not header:
        return ()
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return ()
    out = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    decoded = decoded[:-1] if decoded.endswith("\n") else decoded
    if _printable_ascii(decoded):
        out.append(decoded)
    out.append(value)
    return tuple(dict.fromkeys(out))


def authorization_header(token: str, *, encode: bool = True) -> str:
    """The Authorization header value for our requests (raw only for peers that need it)."""
    return "Token " + (base64.b64encode(token.encode()).decode() if encode else token)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def reply_headers(request_headers: Mapping[str, str], *, country_code: str, party_id: str,
                  functional: bool = True) -> dict[str, str]:
    """Headers every answer carries: the request / correlation ids, and routing headers for functional modules."""
    out: dict[str, str] = {}
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = _header(request_headers, name)
        if value:
            out[name] = value
    if functional:
        to_party = _header(request_headers, "OCPI-from-party-id")
        to_country = _header(request_headers, "OCPI-from-country-code")
        if to_party and to_country:
            out["OCPI-to-party-id"], out["OCPI-to-country-code"] = to_party, to_country
        out["OCPI-from-party-id"], out["OCPI-from-country-code"] = party_id, country_code
    return out


# --- Locations: Sender interface -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ListQuery:
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    offset: int = 0
    limit: int | None = None


def parse_list_query(query: Mapping[str, str], now: dt.datetime) -> ListQuery | Response:
    """The GET list parameters, or a 2001 answer naming the parameter that is wrong."""
    values: dict[str, Any] = {}
    for name in ("date_from", "date_to"):
        if query.get(name):
            try:
                values[name] = parse_datetime(query[name])
            except ValueError:
                return error(INVALID_PARAMETERS, f"{name} is not an OCPI DateTime: {query[name]!r}", now)
    for name in ("offset", "limit"):
        if query.get(name):
            text = query[name].strip()
            if not text.isdigit():
                return error(INVALID_PARAMETERS, f"{name} must be a whole number >= 0: {query[name]!r}", now)
            values[name] = int(text)
    return ListQuery(**values)


def _sorted(locations: Iterable[Obj]) -> list[Obj]:
    return sorted(locations, key=lambda loc: str(loc["id"]).upper())


def list_locations(locations: Iterable[Obj], query: ListQuery, *, url: str, now: dt.datetime,
                   max_limit: int = MAX_LIMIT) -> Response:
    """GET list: one page of Locations with ``last_updated`` in [date_from, date_to), with paging headers."""
    matched = [loc for loc in _sorted(locations)
               if (query.date_from is None or parse_datetime(loc["last_updated"]) >= query.date_from)
               and (query.date_to is None or parse_datetime(loc["last_updated"]) < query.date_to)]
    limit = max_limit if query.limit is None else min(query.limit, max_limit)
    page = matched[query.offset: query.offset + limit]
    headers = {"X-Total-Count": str(len(matched)), "X-Limit": str(limit)}
    following = query.offset + len(page)
    if following < len(matched) and limit > 0:
        params: dict[str, str] = {"offset": str(following), "limit": str(limit)}
        if query.date_from is not None:
            params["date_from"] = format_datetime(query.date_from)
        if query.date_to is not None:
            params["date_to"] = format_datetime(query.date_to)
        headers["Link"] = f'<{url}?{urlencode(params, safe=":")}>; rel="next"'
    return ok(page, now, headers)


def _find(items: Iterable[Obj], key: str, wanted: str) -> Obj | None:
    return next((i for i in items if str(i.get(key, "")).upper() == wanted.upper()), None)


def _not_found(what: str, now: dt.datetime) -> Response:
    return error(UNKNOWN_LOCATION, f"unknown {what}", now, 404)


def get_location(locations: Iterable[Obj], location_id: str, now: dt.datetime) -> Response:
    loc = _find(locations, "id", location_id)
    return ok(loc, now) if loc is not None else _not_found(f"Location {location_id!r}", now)


def get_evse(locations: Iterable[Obj], location_id: str, evse_uid: str, now: dt.datetime) -> Response:
    loc = _find(locations, "id", location_id)
    evse = _find(loc.get("evses", ()), "uid", evse_uid) if loc is not None else None
    return ok(evse, now) if evse is not None else _not_found(f"EVSE {location_id!r}/{evse_uid!r}", now)


def get_connector(locations: Iterable[Obj], location_id: str, evse_uid: str, connector_id: str,
                  now: dt.datetime) -> Response:
    loc = _find(locations, "id", location_id)
    evse = _find(loc.get("evses", ()), "uid", evse_uid) if loc is not None else None
    conn = _find(evse.get("connectors", ()), "id", connector_id) if evse is not None else None
    if conn is None:
        return _not_found(f"Connector {location_id!r}/{evse_uid!r}/{connector_id!r}", now)
    return ok(conn, now)
