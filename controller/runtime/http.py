"""A small HTTP/1.1 server on asyncio streams for the controller's own endpoints.

Role: one listener for the operator- and driver-facing HTTP endpoints — the read-only JSON status API,
Prometheus metrics, the git webhook, the reservations API and the dashboard's server-sent events — with
no dependency beyond the standard library. Boundary: bytes on a socket <-> `Request` / `Response` /
`EventStream`, routing, limits, token checks. What an endpoint means lives in its handler, never here;
this module knows nothing about stations, git or the store.

Protocol
- HTTP/1.0 and 1.1. Persistent connections (1.1 by default, 1.0 with ``Connection: keep-alive``), up to
  ``Limits.max_requests_per_connection`` requests each; ``Connection: close`` is honoured. Requests on
  one connection are answered in order (pipelined requests wait their turn).
- Request bodies: ``Content-Length``, or ``Transfer-Encoding: chunked`` (decoded, trailers discarded) —
  supported because ``curl -T -`` and some webhook relays send it. Any other transfer coding -> 501;
  ``Content-Length`` and ``Transfer-Encoding`` together -> 400 (request smuggling). ``Expect:
  100-continue`` is answered before the body is read (or with 413 without reading it).
- Responses carry ``Content-Length``; an `EventStream` (``text/event-stream``) is close-delimited and
  ends the connection. HEAD is served by the GET route with the body dropped.
- Routing by method and path pattern; ``{name}`` matches one non-empty, percent-decoded segment; literal
  segments win over parameters; one trailing slash is ignored. Unknown path -> 404; known path, other
  method -> 405 with ``Allow``.
- Errors are JSON: ``{"error": {"code": ..., "message": ...}}``. An unexpected handler exception is
  logged with its traceback and answered 500 with a generic message.
- Access log on the ``controller.runtime.http.access`` logger at DEBUG only, ``token`` query values
  redacted.

Limits (`Limits`); each closes only the offending connection
- request line longer than ``max_line`` -> 414; more than ``max_query_fields`` query fields -> 400; a
  header line longer than ``max_line``, more than ``max_headers`` fields or a head over
  ``max_head_bytes`` -> 431;
- head not complete ``header_timeout`` after the connect (first request) or after its first byte
  (later requests) -> 408 (slow loris); a keep-alive connection idle for ``keepalive_timeout`` and a new
  one that sends nothing are closed silently;
- body over ``max_body`` -> 413; body not complete within ``body_timeout`` -> 408;
- malformed request line, header field, ``Content-Length`` or chunk framing -> 400; HTTP/2+ -> 505;
- more than ``max_connections`` open connections -> 503; a client that does not read its answer within
  ``write_timeout`` is dropped. After an error answer the server half-closes and discards input for up
  to ``linger`` seconds, so that the client reads the answer rather than a reset.

Errors: handlers raise `HttpError` (status, message, code) for answers other than success; `require_token`
and `Request.json` raise it too. Nothing else is part of the contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import http
import json
import logging
import re
import ssl
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from email.utils import formatdate
from pathlib import PurePath
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".access")

SERVER_NAME = "chargeops"


# --------------------------------------------------------------------------------------------- values


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one client may cost the server (sizes in bytes, times in seconds)."""

    max_line: int = 8 * 1024
    max_headers: int = 100
    max_query_fields: int = 100
    max_head_bytes: int = 32 * 1024
    max_body: int = 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    write_timeout: float = 30.0
    max_requests_per_connection: int = 100
    max_connections: int = 256
    sse_keepalive: float = 15.0
    linger: float = 1.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"Limits.{field.name} must be positive")


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive request header fields; a repeated field reads as its values joined
    with ", " (`get_all` gives them one by one). Keys iterate in lower case."""

    __slots__ = ("_fields", "_joined")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = tuple(fields)
        joined: dict[str, str] = {}
        for name, value in self._fields:
            key = name.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        self._joined = joined

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def __iter__(self) -> Iterator[str]:
        return iter(self._joined)

    def __len__(self) -> int:
        return len(self._joined)

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [value for field, value in self._fields if field.lower() == key]

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. ``path`` is percent-decoded; ``params`` come from the route's ``{name}``
    segments; ``query`` keeps the first value of each name; ``remote`` is the peer's IP address."""

    method: str
    path: str
    query: Mapping[str, str] = dataclasses.field(default_factory=dict)
    headers: Headers = dataclasses.field(default_factory=Headers)
    body: bytes = b""
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    remote: str = ""
    version: str = "HTTP/1.1"
    target: str = ""

    def json(self) -> Any:
        """The body as JSON; a missing or invalid body (NaN and Infinity included) is a 400."""
        if not self.body:
            raise HttpError(400, "request body is empty; JSON expected", "bad_json")
        try:
            return json.loads(self.body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise HttpError(400, f"request body is not valid JSON: {exc}", "bad_json") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


@dataclasses.dataclass(slots=True)
class Response:
    """An answer with a complete body. The server sets Content-Length, Connection, Date and Server."""

    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes = b""


@dataclasses.dataclass(slots=True)
class EventStream:
    """A server-sent events answer: each ``(event, data)`` from ``events`` is sent as ``event: <event>``
    and one ``data:`` line of ``data`` encoded as JSON (like `json_response`; an empty event name sends
    a default ``message`` event). The stream ends when ``events`` ends, the client disconnects or the
    server stops; ``events`` is then closed (``aclose``) so that its ``finally`` blocks run."""

    events: AsyncIterable[tuple[str, Any]]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    retry_ms: int | None = None


Handler = Callable[[Request], Awaitable[Response | EventStream]]


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: str
    handler: Handler

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.method.encode()) or self.method != self.method.upper():
            raise ValueError(f"route method {self.method!r} is not an upper-case HTTP method")
        if not self.pattern.startswith("/"):
            raise ValueError(f"route pattern {self.pattern!r} must start with '/'")


_ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "request_timeout", 409: "conflict", 411: "length_required", 413: "body_too_large",
    414: "uri_too_long", 415: "unsupported_media_type", 417: "expectation_failed", 422: "unprocessable",
    429: "too_many_requests", 431: "headers_too_large", 500: "internal_error", 501: "not_implemented",
    503: "unavailable", 505: "http_version_not_supported",
}


class HttpError(Exception):
    """An answer other than success, rendered as ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, message: str, code: str | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _ERROR_CODES.get(status, "error")
        self.headers = dict(headers or {})

    def to_response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message}}
        return json_response(body, self.status, headers=self.headers)


# -------------------------------------------------------------------------------------------- helpers


def _json_default(obj: object) -> object:
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, uuid.UUID | PurePath):
        return str(obj)
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def to_json(obj: object) -> str:
    """Compact, strict JSON (no NaN); datetimes as ISO 8601, Decimal as its exact string, dataclasses
    as objects, enums as their value, sets sorted, timedeltas as seconds."""
    return json.dumps(obj, default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_response(obj: object, status: int = 200, *, headers: Mapping[str, str] | None = None) -> Response:
    merged = {"Content-Type": "application/json"}
    merged.update(headers or {})
    return Response(status, merged, to_json(obj).encode())


def text_response(text: str, status: int = 200, *, content_type: str = "text/plain; charset=utf-8",
                  headers: Mapping[str, str] | None = None) -> Response:
    merged = {"Content-Type": content_type}
    merged.update(headers or {})
    return Response(status, merged, text.encode())


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def require_token(req: Request, tokens: Collection[str]) -> str:
    """The token presented as ``Authorization: Bearer <token>`` or, for EventSource which cannot set
    headers, as ``?token=``; 401 with ``WWW-Authenticate: Bearer`` unless it is one of ``tokens``.
    Compared in constant time (over hashes, so neither value nor length leaks); no tokens = no access.
    Returns the matching token so that the caller can tell clients apart."""
    presented: str | None = None
    scheme, _, credentials = req.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        presented = credentials.strip()
    elif req.query.get("token"):
        presented = req.query["token"]
    matched: str | None = None
    if presented is not None:
        wanted = _digest(presented)
        for token in tokens:
            if token and hmac.compare_digest(wanted, _digest(token)):
                matched = token
    if matched is None:
        challenge = 'Bearer realm="chargeops"' + (', error="invalid_token"' if presented else "")
        message = "the token is not valid" if presented else "a bearer token is required"
        raise HttpError(401, message, "unauthorized", headers={"WWW-Authenticate": challenge})
    return matched


def encode_event(event: str, data: object) -> bytes:
    """One server-sent event; compact JSON never holds a newline, so ``data`` is one line."""
    if "\n" in event or "\r" in event:
        raise ValueError("an event name cannot hold a line break")
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {to_json(data)}\n\n".encode()


# -------------------------------------------------------------------------------------------- routing


class _Param(NamedTuple):
    name: str


_Segment = str | _Param


def _split(path: str) -> list[str]:
    return path.strip("/").split("/") if path != "/" else [""]


class _Router:
    def __init__(self, routes: Iterable[Route | tuple[str, str, Handler]]) -> None:
        compiled: list[tuple[tuple[_Segment, ...], Route]] = []
        seen: set[tuple[str, tuple[str | None, ...]]] = set()
        for item in routes:
            route = item if isinstance(item, Route) else Route(*item)
            segments = tuple(self._segment(raw, route.pattern) for raw in _split(route.pattern))
            shape = (route.method, tuple(None if isinstance(s, _Param) else s for s in segments))
            if shape in seen:
                raise ValueError(f"route {route.method} {route.pattern} is declared twice")
            seen.add(shape)
            compiled.append((segments, route))
        # Literal segments before parameters, position by position; stable otherwise.
        compiled.sort(key=lambda item: tuple(isinstance(s, _Param) for s in item[0]))
        self._routes = compiled

    @staticmethod
    def _segment(raw: str, pattern: str) -> _Segment:
        if raw.startswith("{") and raw.endswith("}"):
            name = raw[1:-1]
            if not name.isidentifier():
                raise ValueError(f"route pattern {pattern!r}: {raw} is not a valid parameter")
            return _Param(name)
        if "{" in raw or "}" in raw:
            raise ValueError(f"route pattern {pattern!r}: a parameter must be a whole segment")
        return raw

    def resolve(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]]:
        allowed: set[str] = set()
        head_fallback: tuple[Route, dict[str, str]] | None = None
        for pattern, route in self._routes:
            params = self._match(pattern, segments)
            if params is None:
                continue
            if route.method == method:
                return route, params
            if method == "HEAD" and route.method == "GET" and head_fallback is None:
                head_fallback = route, params
            allowed.add(route.method)
        if head_fallback is not None:
            return head_fallback
        if not allowed:
            raise HttpError(404, "no such resource", "not_found")
        if "GET" in allowed:
            allowed.add("HEAD")
        methods = ", ".join(sorted(allowed))
        raise HttpError(405, f"method {method} is not allowed here; use {methods}", "method_not_allowed",
                        headers={"Allow": methods})

    @staticmethod
    def _match(pattern: tuple[_Segment, ...], segments: list[str]) -> dict[str, str] | None:
        if len(pattern) != len(segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(pattern, segments):
            if isinstance(expected, _Param):
                if not actual:
                    return None
                params[expected.name] = actual
            elif expected != actual:
                return None
        return params


# -------------------------------------------------------------------------------------------- parsing

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) HTTP/([0-9])\.([0-9])\r?\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*\r?\n", re.DOTALL)
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_BAD_VALUE = re.compile(rb"[\r\n\0]")
_TOKEN_QUERY = re.compile(r"((?:^|&)token=)[^&]*")


class _ClientGone(Exception):
    """The client closed or stalled the connection: nothing more to say to it."""


def _is_blank(line: bytes) -> bool:
    return line in (b"\r\n", b"\n")


async def _read_line(reader: asyncio.StreamReader, overrun_status: int, what: str) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise HttpError(overrun_status, f"{what} is too long") from None
    except asyncio.IncompleteReadError:
        raise _ClientGone from None


def _parse_request_line(line: bytes) -> tuple[str, str, str]:
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise HttpError(400, "malformed request line")
    method, target, major, minor = match.groups()
    if major != b"1":
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    version = "HTTP/1.0" if minor == b"0" else "HTTP/1.1"
    return method.decode(), target.decode(), version


def _parse_header(line: bytes) -> tuple[str, str]:
    match = _HEADER_LINE.fullmatch(line)
    if match is None or b"\r" in match.group(2) or b"\0" in match.group(2) or b"\n" in match.group(2):
        raise HttpError(400, "malformed header field")
    return match.group(1).decode(), match.group(2).decode("latin-1")


def _split_target(target: str, max_fields: int) -> tuple[list[str], str, dict[str, str]]:
    """Percent-decoded path segments, the decoded path and the query (first value of each name)."""
    raw_path, _, query_string = target.partition("#")[0].partition("?")
    if not raw_path.startswith("/"):
        raise HttpError(400, "the request target must be an absolute path")
    try:
        segments = [unquote(segment, errors="strict") for segment in _split(raw_path)]
        path = unquote(raw_path, errors="strict")
        parsed = parse_qs(query_string, keep_blank_values=True, errors="strict", max_num_fields=max_fields)
    except ValueError:  # UnicodeDecodeError included
        raise HttpError(400, "malformed request target") from None
    return segments, path, {name: values[0] for name, values in parsed.items()}


def _connection_tokens(headers: Headers) -> set[str]:
    return {token.strip().lower() for token in headers.get("connection", "").split(",") if token.strip()}


def _redact(target: str) -> str:
    path, sep, query = target.partition("?")
    return path + sep + _TOKEN_QUERY.sub(r"\1***", query) if sep else target


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_MANAGED = frozenset({"content-length", "connection", "transfer-encoding", "date", "server", "keep-alive"})


def _check_response(result: object) -> Response | EventStream:
    if not isinstance(result, Response | EventStream):
        raise TypeError(f"handler returned {type(result).__name__}, not Response or EventStream")
    if isinstance(result, Response) and not 200 <= result.status <= 599:
        raise ValueError(f"handler returned status {result.status}")
    for name, value in result.headers.items():
        try:
            valid = bool(_TOKEN.fullmatch(name.encode("ascii"))) and not _BAD_VALUE.search(value.encode("latin-1"))
        except UnicodeEncodeError:
            valid = False
        if not valid:
            raise ValueError(f"handler returned an invalid header field {name!r}")
    return result


# --------------------------------------------------------------------------------------------- server


@dataclasses.dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    remote: str
    busy: bool = False


class HttpServer:
    """The listener. ``await start()``, then ``.port`` is the bound port; ``await stop()`` closes idle
    connections at once, lets answers in progress finish for ``grace`` seconds, ends event streams."""

    def __init__(self, routes: Iterable[Route | tuple[str, str, Handler]], *, host: str = "127.0.0.1",
                 port: int = 0, tls: ssl.SSLContext | None = None, limits: Limits | None = None) -> None:
        self._router = _Router(routes)
        self._host = host
        self._port = port
        self._tls = tls
        self._limits = limits or Limits()
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active: dict[asyncio.Task[Any], _Conn] = {}
        self._last_refusal_warning = float("-inf")

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the HTTP server is already running")
        self._stopping.clear()
        tls_options: dict[str, Any] = {}
        if self._tls is not None:
            tls_options = {"ssl": self._tls, "ssl_handshake_timeout": self._limits.header_timeout,
                           "ssl_shutdown_timeout": self._limits.linger}
        self._server = await asyncio.start_server(self._on_connect, self._host, self._port,
                                                  limit=self._limits.max_line, **tls_options)
        log.info("HTTP server listening on %s:%d%s", self._host, self.port, " (TLS)" if self._tls else "")

    async def stop(self, grace: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.close()
        for task in self._tasks:
            conn = self._active.get(task)
            if conn is None or not conn.busy:
                task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=self._limits.linger)
        await server.wait_closed()
        log.info("HTTP server on %s:%d stopped", self._host, self._port)

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------------------------- connections

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        conn = _Conn(reader, writer, str(peer[0]) if isinstance(peer, tuple) else "")
        self._tasks.add(task)
        try:
            if len(self._active) >= self._limits.max_connections or self._stopping.is_set():
                self._log_refusal(conn)
                error = HttpError(503, "too many connections; retry later", headers={"Retry-After": "1"})
                await self._send_error_and_linger(conn, error)
                return
            self._active[task] = conn
            await self._serve(conn)
        except (_ClientGone, ConnectionError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.debug("HTTP connection from %s ended: %r", conn.remote, exc)
        except Exception:
            log.exception("HTTP connection from %s failed", conn.remote)
        finally:
            self._active.pop(task, None)
            writer.close()
            try:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), self._limits.linger)
            finally:
                self._tasks.discard(task)

    async def _serve(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        idle_deadline = loop.time() + self._limits.header_timeout
        for count in range(1, self._limits.max_requests_per_connection + 1):
            if self._stopping.is_set():
                return
            try:
                parsed = await self._read_request(conn, idle_deadline, first=count == 1)
            except HttpError as exc:
                await self._send_error_and_linger(conn, exc)
                return
            if parsed is None:
                return
            request, segments = parsed
            conn.busy = True
            started = time.perf_counter()
            result = await self._dispatch(request, segments)
            keep_alive = count < self._limits.max_requests_per_connection and self._wants_keep_alive(request)
            if isinstance(result, EventStream):
                await self._stream(conn, request, result)
                self._log_access(request, conn, 200, started)
                return
            keep_alive = keep_alive and not self._stopping.is_set()
            await self._write(conn, request, result, keep_alive)
            self._log_access(request, conn, result.status, started)
            conn.busy = False
            if not keep_alive:
                return
            idle_deadline = loop.time() + self._limits.keepalive_timeout

    @staticmethod
    def _wants_keep_alive(request: Request) -> bool:
        tokens = _connection_tokens(request.headers)
        if request.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    async def _read_request(self, conn: _Conn, idle_deadline: float, *,
                            first: bool) -> tuple[Request, list[str]] | None:
        """The next request, or None when the client closed or stayed idle; HttpError when it is bad."""
        limits, reader = self._limits, conn.reader
        try:
            async with asyncio.timeout_at(idle_deadline):
                first_byte = await reader.read(1)
        except TimeoutError:
            return None
        if not first_byte:
            return None
        loop = asyncio.get_running_loop()
        head_deadline = idle_deadline if first else loop.time() + limits.header_timeout
        try:
            async with asyncio.timeout_at(head_deadline):
                line = first_byte if first_byte == b"\n" else first_byte + await _read_line(
                    reader, 414, "the request line")
                if _is_blank(line):  # RFC 9112 §2.2: ignore an empty line before the request line
                    line = await _read_line(reader, 414, "the request line")
                method, target, version = _parse_request_line(line)
                fields: list[tuple[str, str]] = []
                size = len(line)
                while True:
                    line = await _read_line(reader, 431, "a header field")
                    size += len(line)
                    if size > limits.max_head_bytes:
                        raise HttpError(431, "the request head is too large")
                    if _is_blank(line):
                        break
                    if len(fields) >= limits.max_headers:
                        raise HttpError(431, "too many header fields")
                    fields.append(_parse_header(line))
        except TimeoutError:
            raise HttpError(408, "the request head was not received in time", "request_timeout") from None
        headers = Headers(fields)
        segments, path, query = _split_target(target, limits.max_query_fields)
        try:
            async with asyncio.timeout(limits.body_timeout):
                body = await self._read_body(conn, headers, version)
        except TimeoutError:
            raise HttpError(408, "the request body was not received in time", "request_timeout") from None
        return Request(method, path, query, headers, body, {}, conn.remote, version, target), segments

    async def _read_body(self, conn: _Conn, headers: Headers, version: str) -> bytes:
        limits, reader = self._limits, conn.reader
        transfer_encoding = headers.get("transfer-encoding")
        lengths = {value.strip() for field in headers.get_all("content-length") for value in field.split(",")}
        if transfer_encoding is not None:
            if lengths:
                raise HttpError(400, "Content-Length and Transfer-Encoding cannot be combined")
            if version == "HTTP/1.0":
                raise HttpError(400, "Transfer-Encoding is not allowed in HTTP/1.0")
            if [coding.strip().lower() for coding in transfer_encoding.split(",")] != ["chunked"]:
                raise HttpError(501, "only the chunked transfer coding is supported", "not_implemented")
            await self._continue(conn, headers, version)
            return await self._read_chunked(reader)
        if not lengths:
            return b""
        if len(lengths) != 1 or not _CONTENT_LENGTH.fullmatch(next(iter(lengths))):
            raise HttpError(400, "malformed Content-Length", "bad_content_length")
        length = int(next(iter(lengths)))
        if length > limits.max_body:
            raise HttpError(413, f"the request body is larger than {limits.max_body} bytes", "body_too_large")
        if length == 0:
            return b""
        await self._continue(conn, headers, version)
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise _ClientGone from None

    async def _continue(self, conn: _Conn, headers: Headers, version: str) -> None:
        expect = headers.get("expect")
        if expect is None:
            return
        if expect.strip().lower() != "100-continue":
            raise HttpError(417, f"cannot meet the expectation {expect!r}", "expectation_failed")
        if version == "HTTP/1.1":
            conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await self._drain(conn)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        limits = self._limits
        body = bytearray()
        while True:
            line = await _read_line(reader, 400, "a chunk size line")
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise HttpError(400, "malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > limits.max_body:
                raise HttpError(413, f"the request body is larger than {limits.max_body} bytes", "body_too_large")
            try:
                body += await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                raise _ClientGone from None
            if not _is_blank(await _read_line(reader, 400, "a chunk")):
                raise HttpError(400, "malformed chunk: data longer than its size")
        for _ in range(limits.max_headers + 1):  # trailer fields, discarded
            if _is_blank(await _read_line(reader, 431, "a trailer field")):
                return bytes(body)
        raise HttpError(431, "too many trailer fields")

    # ------------------------------------------------------------------------------------- answering

    async def _dispatch(self, request: Request, segments: list[str]) -> Response | EventStream:
        try:
            route, params = self._router.resolve(request.method, segments)
            request = dataclasses.replace(request, params=params)
            return _check_response(await route.handler(request))
        except HttpError as exc:
            return exc.to_response()
        except Exception:
            log.exception("HTTP handler for %s %s failed", request.method, _redact(request.target))
            return HttpError(500, "internal server error", "internal_error").to_response()

    async def _drain(self, conn: _Conn) -> None:
        try:
            async with asyncio.timeout(self._limits.write_timeout):
                await conn.writer.drain()
        except TimeoutError:
            raise _ClientGone("the client does not read") from None

    async def _write(self, conn: _Conn, request: Request | None, response: Response, keep_alive: bool) -> None:
        headers = [(name, value) for name, value in response.headers.items() if name.lower() not in _MANAGED]
        if response.body and not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/octet-stream"))
        headers += [("Date", formatdate(usegmt=True)), ("Server", SERVER_NAME)]
        if response.status not in (204, 304):
            headers.append(("Content-Length", str(len(response.body))))
        if not keep_alive:
            headers.append(("Connection", "close"))
        elif request is not None and request.version == "HTTP/1.0":
            headers.append(("Connection", "keep-alive"))
        with_body = response.status not in (204, 304) and (request is None or request.method != "HEAD")
        conn.writer.write(_head(response.status, headers) + (response.body if with_body else b""))
        await self._drain(conn)

    async def _send_error_and_linger(self, conn: _Conn, error: HttpError) -> None:
        """Answer a request that cannot be served, half-close, and discard input for a moment so that the
        client reads the answer instead of a connection reset."""
        log.debug("HTTP request from %s refused: %d %s", conn.remote, error.status, error.message)
        await self._write(conn, None, error.to_response(), keep_alive=False)
        if conn.writer.can_write_eof():
            with contextlib.suppress(OSError):
                conn.writer.write_eof()
        with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
            async with asyncio.timeout(self._limits.linger):
                while await conn.reader.read(64 * 1024):
                    pass

    async def _stream(self, conn: _Conn, request: Request, stream: EventStream) -> None:
        headers = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache"),
                   ("X-Accel-Buffering", "no"), ("Date", formatdate(usegmt=True)), ("Server", SERVER_NAME),
                   ("Connection", "close")]
        headers += [(name, value) for name, value in stream.headers.items()
                    if name.lower() not in _MANAGED | {"content-type", "cache-control"}]
        events = aiter(stream.events)
        try:
            conn.writer.write(_head(200, headers))
            await self._drain(conn)
            if request.method == "HEAD":
                return
            if stream.retry_ms is not None:
                conn.writer.write(f"retry: {int(stream.retry_ms)}\n\n".encode())
            await self._pump(conn, events)
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    async def _pump(self, conn: _Conn, events: AsyncIterator[tuple[str, Any]]) -> None:
        gone = asyncio.create_task(_until_eof(conn.reader))
        stopping = asyncio.create_task(self._stopping.wait())
        upcoming: asyncio.Task[tuple[str, Any] | None] | None = None
        try:
            while True:
                if upcoming is None:
                    upcoming = asyncio.create_task(_next_event(events))
                done, _ = await asyncio.wait({upcoming, gone, stopping}, timeout=self._limits.sse_keepalive,
                                             return_when=asyncio.FIRST_COMPLETED)
                if upcoming in done:
                    task, upcoming = upcoming, None
                    try:
                        item = task.result()
                        if item is None:
                            return
                        chunk = encode_event(*item)
                    except Exception:
                        log.exception("HTTP event stream for %s failed", conn.remote)
                        return
                    conn.writer.write(chunk)
                elif done:  # the client went away or the server stops
                    return
                else:
                    conn.writer.write(b": keep-alive\n\n")
                await self._drain(conn)
        finally:
            pending: list[asyncio.Task[Any]] = [task for task in (upcoming, gone, stopping) if task is not None]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _log_refusal(self, conn: _Conn) -> None:
        now = time.monotonic()
        level = logging.WARNING if now - self._last_refusal_warning >= 60.0 else logging.DEBUG
        if level == logging.WARNING:
            self._last_refusal_warning = now
        log.log(level, "HTTP connection from %s refused: %d connections open (limit %d)", conn.remote,
                len(self._active), self._limits.max_connections)

    def _log_access(self, request: Request, conn: _Conn, status: int, started: float) -> None:
        if access_log.isEnabledFor(logging.DEBUG):
            access_log.debug('%s "%s %s %s" %d %.1fms', conn.remote, request.method, _redact(request.target),
                             request.version, status, (time.perf_counter() - started) * 1000)


async def _next_event(events: AsyncIterator[tuple[str, Any]]) -> tuple[str, Any] | None:
    try:
        return await anext(events)
    except StopAsyncIteration:
        return None


async def _until_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(4096):
            pass
