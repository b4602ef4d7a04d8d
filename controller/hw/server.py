"""The OCPP 1.6J central system's websocket server.

- URL ``ws[s]://host:port/<anything>/<identity>``: the identity is the last path segment. A never-declared
  identity gets HTTP 404 at the handshake; a station removed from the repository (declared before, known
  to the store) is still served, so its queued transaction messages drain.
- Subprotocol ``ocpp1.6``; a charger that offers none is served as 1.6 (old firmware); one that offers
  only other versions gets HTTP 400. No compression (deflate costs ~50 KiB per connection).
- Security profiles 1 and 2 (HTTP Basic, over TLS for 2), see ``controller.hw.auth``. The profile
  enforced is the one the station has confirmed by connecting with it; the declared one is a target.
- The same identity connecting twice: the newest connection wins; the old one is closed cleanly and its
  in-flight calls fail as temporary (``REPLACED``).
- A connect (with or without a boot: a reconnect is not a boot) schedules re-observation of the station.
- ``GET /healthz`` answers 200 without a websocket upgrade (for load balancers).

Boundary: sockets, handshake and connection registry; message meaning is in ``handlers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import http
import logging
import os
import ssl
import weakref
from asyncio import sslproto
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from controller.hw.auth import (
    AuthThrottle,
    identity_from_path,
    key_bytes,
    parse_basic_auth,
    password_matches,
    resolve_secret,
)
from controller.hw.connection import ConnectionLimits, OcppConnection, websocket_options
from controller.hw.handlers import Csms, SessionListener, StationHandlers
from controller.hw.listener import BatchListener, listening_sockets, websockets_protocol_factory
from controller.hw.port import ChargerPort
from controller.hw.wsdirect import DirectServerConnection
from controller.runtime import eventloop
from controller.runtime.state import DesiredHolder
from controller.store.api import Store
from controller.store.errors import StoreUnavailable
from controller.store.records import TransactionStatus

log = logging.getLogger("chargeops.hw.server")
SUBPROTOCOL = Subprotocol("ocpp1.6")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 9000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secrets_dir: Path | None = None
    limits: ConnectionLimits = dataclasses.field(default_factory=ConnectionLimits)
    call_timeout: float = 30.0
    # a ping goes to a charger only after an interval in which nothing came from it (controller.hw.wsdirect)
    ping_interval: float | None = 60.0
    ping_timeout: float | None = 60.0
    open_timeout: float = 10.0  # slow-loris handshakes are dropped after this
    # listen backlog: connections the kernel completes and queues while the event loop is busy. asyncio's
    # default of 100 overflows when a fleet reconnects at once: the kernel drops the SYNs and each charger
    # waits for TCP's retransmission (1, 3, 7, 15, 31, 63 s). 10,000 chargers: all Synced in 35-49 s
    # instead of 63-66 s. Larger is faster still (4,096: 32-47 s) but the bigger bursts of handshakes
    # leave more memory behind (on the standard loop's own server, 125 KiB per charger with TLS, over the
    # 120 KiB budget; 113 at 1,024).
    # The kernel caps it at net.core.somaxconn.
    backlog: int = 1024
    # accept connections with `controller.hw.listener.BatchListener` (up to `accept_batch` per wake-up, on
    # any event loop) rather than the loop's own server (uvloop's accepts one per loop iteration)
    batch_accept: bool = True
    # connections accepted per wake-up of the listening socket, at most. Measured with 10,000 chargers on
    # uvloop: 1,024 (as much as the backlog) took the storms to all Synced in 26-38 s but the bursts of
    # handshakes left 63.6 / 110.3 KiB per charger without / with TLS (budgets 64 / 120) and a loop
    # lateness p99 of 1.8-2.9 s; 64: 30-42 s, 60.5 / 91.2 KiB, 1.2-2.0 s (the standard loop's own server
    # with the same backlog: 35-49 s).
    accept_batch: int = 64

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


class ActiveSessions:
    """Active sessions per card (upper-case idTag), in memory; rebuilt from the store at start."""

    def __init__(self) -> None:
        self._by_tx: dict[int, str] = {}
        self._count: dict[str, int] = {}
        self._where: dict[int, str] = {}  # transaction -> STATION
        self._busy: dict[str, dict[int, int]] = {}  # STATION -> {transaction: connector}

    def count(self, id_tag_key: str) -> int:
        return self._count.get(id_tag_key, 0)

    def started(self, transaction_id: int, station: str, connector: int, id_tag_key: str) -> None:
        if transaction_id in self._by_tx:
            return
        self._by_tx[transaction_id] = id_tag_key
        self._where[transaction_id] = station.upper()
        self._busy.setdefault(station.upper(), {})[transaction_id] = connector
        self._count[id_tag_key] = self._count.get(id_tag_key, 0) + 1

    def connectors_busy(self, station: str) -> frozenset[int]:
        """Connectors of a station with a running session (from memory, no store read)."""
        return frozenset(self._busy.get(station.upper(), {}).values())

    def stopped(self, transaction_id: int) -> None:
        where = self._where.pop(transaction_id, None)
        if where is not None:
            busy = self._busy.get(where, {})
            busy.pop(transaction_id, None)
            if not busy:
                self._busy.pop(where, None)
        key = self._by_tx.pop(transaction_id, None)
        if key is not None:
            n = self._count.get(key, 1) - 1
            if n > 0:
                self._count[key] = n
            else:
                self._count.pop(key, None)

    def __len__(self) -> int:
        return len(self._by_tx)


@dataclasses.dataclass
class Connected:
    identity: str
    conn: OcppConnection
    port: ChargerPort
    handlers: StationHandlers
    security_profile: int
    since: dt.datetime


class CentralSystem:
    """Accepts charger connections and answers them from the desired state and the store."""

    def __init__(self, desired: DesiredHolder, store: Store, settings: ServerSettings | None = None, *,
                 clock: Callable[[], dt.datetime] = utc_now, env: Mapping[str, str] | None = None,
                 on_connect: Callable[[str, str], None] | None = None,
                 listeners: Sequence[SessionListener] = ()):
        self.desired = desired
        self.store = store
        self.settings = settings or ServerSettings()
        self.clock = clock
        self.env = os.environ if env is None else env
        self.sessions = ActiveSessions()
        self.throttle = AuthThrottle()
        self.connections: dict[str, Connected] = {}
        self.online_version = 0  # goes up whenever a connection is registered or removed
        # given to every connection: told of each incoming call answered (`OcppConnection.on_handled`)
        self.on_handled: Callable[[str, float, float], None] | None = None
        self._confirmed_profile: dict[str, int] = {}  # identity (upper) -> security profile known to be stored
        # connection -> (identity, security profile, matched the pending key), from handshake to handler
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, tuple[str, int, bool]] = (
            weakref.WeakKeyDictionary())
        self._server: Server | None = None
        self.listener: BatchListener | None = None  # when connections are accepted in batches
        self._on_connect = on_connect or (lambda identity, reason: None)
        self.csms = Csms(desired=desired, store=store, sessions=self.sessions, clock=clock,
                         schedule=self._schedule, known_station=self._known, listeners=list(listeners))

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for tx in await self.store.list_transactions(status=TransactionStatus.ACTIVE, limit=10_000_000):
            self.sessions.started(tx.id, tx.station, tx.connector_id or 0, (tx.id_tag or "").upper())
        ssl_ctx = None
        if self.settings.tls:
            small_tls_buffers()
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(str(self.settings.tls_cert), str(self.settings.tls_key))
        opts: dict[str, Any] = websocket_options(self.settings.limits)
        server = serve(
            self._handle, self.settings.host, self.settings.port,
            process_request=self._process_request, select_subprotocol=self._select_subprotocol,
            subprotocols=[SUBPROTOCOL], ssl=ssl_ctx, ping_interval=self.settings.ping_interval,
            ping_timeout=self.settings.ping_timeout, open_timeout=self.settings.open_timeout,
            server_header="chargeops", backlog=self.settings.backlog, create_connection=DirectServerConnection,
            **opts)
        factory = websockets_protocol_factory(server) if self.settings.batch_accept else None
        if factory is not None:  # accept in batches (uvloop's own server takes one per loop iteration)
            settings = self.settings

            async def create_server() -> asyncio.Server:
                socks = listening_sockets(settings.host, settings.port, settings.backlog)
                listener = BatchListener(asyncio.get_running_loop(), factory, socks, ssl_context=ssl_ctx,
                                         ssl_handshake_timeout=settings.open_timeout, batch=settings.accept_batch)
                await listener.start_serving()
                self.listener = listener
                return listener  # type: ignore[return-value]  # the part of asyncio.Server websockets uses

            server.create_server = create_server
        elif self.settings.batch_accept:
            log.warning("this version of websockets hides its protocol factory: connections are accepted by "
                        "the event loop's own server (on uvloop, one per loop iteration)")
        self._server = await server
        log.info("central system listening on %s://%s:%d (event loop: %s)", "wss" if ssl_ctx else "ws",
                 self.settings.host, self.port, eventloop.name())

    @property
    def port(self) -> int:
        assert self._server is not None
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 10)
            self._server = None

    def port_for(self, identity: str) -> ChargerPort | None:
        c = self.connections.get(identity.upper())
        return c.port if c is not None and not c.conn.closed else None

    def connected_since(self, identity: str) -> dt.datetime | None:
        c = self.connections.get(identity.upper())
        return c.since if c is not None and not c.conn.closed else None

    def online(self) -> list[str]:
        return sorted(c.identity for c in self.connections.values() if not c.conn.closed)

    def _schedule(self, identity: str, reason: str) -> None:
        self._on_connect(identity, reason)
        if reason in ("connect", "boot"):
            for listener in self.csms.listeners:
                listener.connected(identity, reason)

    async def _known(self, identity: str) -> bool:
        if self.desired.station(identity) is not None or self.desired.was_declared(identity):
            return True
        try:
            return await self.store.get_station(identity) is not None
        except StoreUnavailable:
            return False

    # ------------------------------------------------------------------------------------ handshake

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?")[0].rstrip("/") == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        identity = identity_from_path(request.path)
        peer = _peer(connection, port=False)  # the throttle's key: a new connection has a new source port
        if identity is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "no charge point identity in the URL\n")
        if not await self._known(identity):
            log.info("refused unknown identity %r from %s", identity[:48], peer)
            return connection.respond(http.HTTPStatus.NOT_FOUND, "unknown charge point\n")
        station = self.desired.station(identity)
        try:
            rec = await self.store.get_station(identity)
        except StoreUnavailable:
            rec = None
        keys: list[bytes] = []
        if station is not None and station.authorization_key is not None:
            secret = resolve_secret(station.authorization_key, self.settings.secrets_dir, self.env)
            if secret:
                keys.append(key_bytes(secret))
        confirmed = rec.security_profile if rec is not None and rec.security_profile is not None else 0
        creds = parse_basic_auth(request.headers.get("Authorization"))
        if creds is None:
            if confirmed >= 1:
                return await self._refuse(connection, identity, peer, "no credentials (station confirmed "
                                          f"security profile {confirmed})")
            self._handshakes[connection] = (identity, 0, False)
            return None
        user, password = creds
        if user.upper() != identity.upper():
            return await self._refuse(connection, identity, peer, f"user {user[:48]!r} is not the identity")
        ok = bool(keys) and password_matches(password, keys)
        pending = False
        if rec is not None:
            creds_ = rec.credentials
            if creds_.pending_key is not None and password_matches(password, [creds_.pending_key]):
                ok = pending = True  # the charger now uses the key we sent: confirm it
            elif not ok and creds_.accepts(password):
                ok = True  # the confirmed (older) key, during a rotation
        if not ok:
            return await self._refuse(connection, identity, peer, "wrong password" if keys or rec
                                      else "no key configured for the station")
        self.throttle.succeeded(identity, peer)
        self._handshakes[connection] = (identity, 2 if self.settings.tls else 1, pending)
        return None

    async def _refuse(self, connection: ServerConnection, identity: str, peer: str, why: str) -> Response:
        delay = self.throttle.delay_for(identity, peer)
        self.throttle.failed(identity, peer, why)
        if delay:
            await asyncio.sleep(delay)
        resp = connection.respond(http.HTTPStatus.UNAUTHORIZED, "authentication required\n")
        resp.headers["WWW-Authenticate"] = 'Basic realm="chargeops", charset="UTF-8"'
        return resp

    def _select_subprotocol(self, connection: ServerConnection,
                            subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        if SUBPROTOCOL in subprotocols:
            return SUBPROTOCOL
        if not subprotocols:
            return None  # old firmware: served as 1.6
        raise NegotiationError(f"unsupported subprotocols {list(subprotocols)}; this central system speaks "
                               "ocpp1.6")

    # ------------------------------------------------------------------------------------ connection

    def _handled(self, action: str, waited: float, handled: float) -> None:
        """Every connection's `on_handled`: to `self.on_handled` as it is now (set once the API is up)."""
        hook = self.on_handled
        if hook is not None:
            hook(action, waited, handled)

    async def _handle(self, ws: ServerConnection) -> None:
        hs = self._handshakes.pop(ws, None)
        if hs is None:
            await ws.close(1011, "handshake state lost")
            return
        identity, profile, pending = hs
        key = identity.upper()
        handlers = StationHandlers(identity, self.csms)
        conn = OcppConnection(ws, identity, handlers.table(), limits=self.settings.limits,
                              default_timeout=self.settings.call_timeout)
        conn.on_handled = self._handled
        port = ChargerPort(conn, timeout=self.settings.call_timeout)
        now = self.clock()
        old = self.connections.get(key)
        if old is not None and not old.conn.closed:
            log.info("station %s connected again from %s: the newest connection wins", identity, _peer(ws))
            old.conn.replace()
        self.connections[key] = Connected(identity, conn, port, handlers, profile, now)
        self.online_version += 1
        try:
            with contextlib.suppress(StoreUnavailable):
                await self.store.set_online(identity, True, now)
                if pending:
                    await self.store.confirm_pending_key(identity, now)
                if profile >= 1 and self._confirmed_profile.get(key, -1) < profile:
                    rec = await self.store.get_station(identity)  # once per station and profile, not per connect
                    if rec is None or (rec.security_profile or 0) < profile:
                        await self.store.record_security_profile(identity, profile)
                    self._confirmed_profile[key] = max(profile, (rec.security_profile or 0) if rec else 0)
            self._schedule(identity, "connect")
            await conn.run()
        finally:
            current = self.connections.get(key)
            if current is not None and current.conn is conn:
                del self.connections[key]
                self.online_version += 1
                with contextlib.suppress(StoreUnavailable):
                    await self.store.set_online(identity, False, self.clock())


TLS_READ_BUFFER = 16 * 1024  # one maximum-size TLS record (RFC 8446 §5.1)


def small_tls_buffers() -> None:
    """Give every asyncio TLS connection a 16 KiB receive buffer instead of 256 KiB.

    asyncio's SSLProtocol allocates (and zero-fills, so it is resident) a `max_size` buffer per connection
    for the ciphertext it receives: 256 KiB, ~85 % of what a TLS connection costs. Measured with 1,000
    idle connections: ~286 KiB -> ~45 KiB per connection. A smaller buffer only means that a burst larger
    than 16 KiB is read in more than one pass (reads loop until the socket is drained); OCPP frames are
    small. Process-wide (the class attribute), idempotent; outgoing HTTPS (OCPI pushes) runs in threads
    with urllib and is not affected."""
    sslproto.SSLProtocol.max_size = min(sslproto.SSLProtocol.max_size, TLS_READ_BUFFER)


def _peer(connection: ServerConnection, *, port: bool = True) -> str:
    addr = connection.remote_address
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}" if port else str(addr[0])
    return str(addr)


