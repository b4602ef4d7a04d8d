"""OCPI 2.2.1 HTTP client: a peer's versions and endpoints (credentials exchange) and push to a Locations Receiver.

Role: the few outgoing OCPI requests, with the standard library's urllib. Every call blocks and has a
timeout: callers run it in a thread (``asyncio.to_thread``), never on the event loop. A failed push is
reported, never retried (OCPI: the partner catches up with a GET on our Sender interface).

Requests carry ``Authorization: Token <base64 token>`` (raw for a peer registered with ``encode_token``
false), ``X-Request-ID`` / ``X-Correlation-ID`` and, on push, the routing headers ``OCPI-from-*`` (us) and
``OCPI-to-*`` (the partner, when known).

Boundary: bytes over HTTP <-> JSON values and `PushResult`s; what to send is decided in `ocpi_push`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .ocpi_api import UNABLE_TO_USE_CLIENT_API, authorization_header
from .ocpi_credentials import FetchError, PeerVersion, parse_version_details, select_version
from .ocpi_push import PushRequest

log = logging.getLogger("chargeops.publish.client")

MAX_ANSWER = 1024 * 1024  # the most we read of a peer's answer


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A partner's Locations Receiver: its base URL (``.../locations``), the token we send, its party."""

    name: str
    url: str
    token: str
    encode_token: bool = True
    to_party: tuple[str, str] | None = None  # (country_code, party_id)


@dataclasses.dataclass(frozen=True, slots=True)
class PushResult:
    target: str
    method: str
    url: str
    http_status: int | None  # None: no answer (refused, timeout)
    ocpi_status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.http_status == 200 and self.ocpi_status == 1000


def request_json(method: str, url: str, token: str, *, body: Any = None, timeout: float, encode_token: bool = True,
                 headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
    """One OCPI request: (HTTP status, decoded JSON answer or None). Raises OSError / ValueError when the
    peer cannot be reached or does not answer JSON."""
    request_id = str(uuid.uuid4())
    sent = {"Authorization": authorization_header(token, encode=encode_token), "Accept": "application/json",
            "X-Request-ID": request_id, "X-Correlation-ID": request_id, **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body, separators=(",", ":")).encode()
        sent["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read(MAX_ANSWER)
    return status, json.loads(raw) if raw.strip() else None


def _data(url: str, token: str, timeout: float) -> Any:
    status, answer = request_json("GET", url, token, timeout=timeout)
    if status != 200 or not isinstance(answer, Mapping) or answer.get("status_code") != 1000:
        code = answer.get("status_code") if isinstance(answer, Mapping) else None
        raise ValueError(f"GET {url} answered HTTP {status}, OCPI status {code}")
    return answer.get("data")


def fetch_peer_version(versions_url: str, token: str, *, timeout: float) -> PeerVersion | FetchError:
    """A peer's 2.2.1 endpoints: GET its versions, then the 2.2.1 details (with the peer's own token)."""
    try:
        url = select_version(_data(versions_url, token, timeout))
        if isinstance(url, FetchError):
            return url
        return parse_version_details(_data(url, token, timeout))
    except (OSError, ValueError) as exc:
        log.warning("OCPI: the peer's versions at %s cannot be used: %s", versions_url, exc)
        return FetchError(UNABLE_TO_USE_CLIENT_API, f"cannot use the versions endpoint {versions_url}: {exc}")


def push(target: Target, requests: Sequence[PushRequest], *, from_party: tuple[str, str],
         timeout: float) -> list[PushResult]:
    """Send `requests` to `target` in order; each one answered or failed on its own."""
    headers = {"OCPI-from-country-code": from_party[0], "OCPI-from-party-id": from_party[1]}
    if target.to_party is not None:
        headers["OCPI-to-country-code"], headers["OCPI-to-party-id"] = target.to_party
    out = []
    for r in requests:
        try:
            status, answer = request_json(r.method, r.url, target.token, body=r.body, timeout=timeout,
                                          encode_token=target.encode_token, headers=headers)
            code = answer.get("status_code") if isinstance(answer, Mapping) else None
            result = PushResult(target.name, r.method, r.url, status, code if isinstance(code, int) else None)
        except (OSError, ValueError) as exc:
            result = PushResult(target.name, r.method, r.url, None, None, str(exc) or type(exc).__name__)
        if not result.ok:
            log.warning("OCPI push to %s: %s %s failed (HTTP %s, OCPI %s%s)", target.name, r.method, r.url,
                        result.http_status, result.ocpi_status, f", {result.error}" if result.error else "")
        out.append(result)
    if out:
        log.info("OCPI push to %s: %d of %d requests accepted", target.name, sum(r.ok for r in out), len(out))
    return out
