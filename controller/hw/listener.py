"""Accepting charger connections in batches, whatever the event loop.

asyncio's own server accepts up to the listen backlog each time the listening socket is readable. uvloop's
does not: since libuv 1.45 (libuv PR #3696) a listening socket accepts ONE connection per loop iteration.
When 10,000 chargers reconnect at once (a power cut, a controller restart) and every iteration of the
loop also answers boots and reads configurations, that is a few hundred connections a second: the accept
queue overflows, the kernel drops SYNs, and the chargers wait for TCP's retransmission timers (1, 3, 7,
15, 31, 63 s). Measured with 3,000 simultaneous connects and a loop kept busy 2 ms per iteration: uvloop's
server 6.1 s to accept them all, asyncio's 1.1 s, this listener 0.08 s on uvloop.

`BatchListener` owns the listening sockets, watches them with `loop.add_reader`, accepts until the kernel's
queue is empty (at most `batch` per wake-up, so one burst cannot hold the loop), and hands each socket to
`loop.connect_accepted_socket` with the same protocol factory (and TLS context) the loop's server would
have used. It has the part of `asyncio.Server`'s interface that websockets' `Server` uses (`sockets`,
`close`, `wait_closed`, `is_serving`, `start_serving`, `serve_forever`, `get_loop`), so websockets keeps
doing everything else: handshakes, connection tracking, closing.

Out of file descriptors (EMFILE/ENFILE) or kernel memory (ENOBUFS/ENOMEM), accepting pauses for a second
(as asyncio does) instead of spinning on a socket that stays readable.

Boundary: sockets and the event loop; knows nothing of OCPP.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("chargeops.hw.listener")

_PAUSE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
PAUSE_SECONDS = 1.0


def listening_sockets(host: str | Sequence[str] | None, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for `host` (every address it resolves to; None or "" = every
    interface) and `port`, as `loop.create_server` makes them: SO_REUSEADDR, IPv6 sockets IPv6-only."""
    hosts: Sequence[str | None] = [host] if host is None or isinstance(host, str) else list(host)
    infos: list[tuple[Any, ...]] = []
    for h in hosts:
        infos.extend(socket.getaddrinfo(h or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                        socket.AI_PASSIVE))
    socks: list[socket.socket] = []
    seen: set[tuple[Any, ...]] = set()
    try:
        for family, type_, proto, _canon, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            sock = socket.socket(family, type_, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                raise OSError(exc.errno, f"error while attempting to bind on address {addr!r}: "
                                         f"{(exc.strerror or str(exc)).lower()}") from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    if not socks:
        raise OSError(errno.EADDRNOTAVAIL, f"no address to listen on for host {host!r}")
    return socks


class BatchListener:
    """Listens on `socks` and connects every accepted socket to a protocol from `factory` (see the module)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol],
                 socks: Sequence[socket.socket], *, ssl_context: ssl.SSLContext | None = None,
                 ssl_handshake_timeout: float | None = None, batch: int = 1024):
        self._loop = loop
        self._factory = factory
        self._socks = list(socks)
        self._ssl = ssl_context
        self._ssl_timeout = ssl_handshake_timeout
        self._batch = max(1, batch)
        self._serving = False
        self._closed = False
        self._paused: asyncio.TimerHandle | None = None
        self._connecting: set[asyncio.Task[Any]] = set()
        self._closed_event = asyncio.Event()
        self.accepted = 0  # connections accepted (for tests and metrics)
        self.pauses = 0  # times accepting paused for lack of descriptors or memory

    # -------------------------------------------------------------------- asyncio.Server's interface

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed else tuple(self._socks)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        self._start()

    async def serve_forever(self) -> None:
        self._start()
        await self._closed_event.wait()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_reading()
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        for sock in self._socks:
            sock.close()
        self._closed_event.set()

    async def wait_closed(self) -> None:
        await self._closed_event.wait()
        if self._connecting:  # handshakes begun before the close end (or fail) before we say closed
            await asyncio.gather(*self._connecting, return_exceptions=True)

    # -------------------------------------------------------------------- accepting

    def _start(self) -> None:
        if self._serving or self._closed:
            return
        self._serving = True
        for sock in self._socks:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _stop_reading(self) -> None:
        if not self._serving:
            return
        self._serving = False
        for sock in self._socks:
            with contextlib.suppress(ValueError, OSError):  # already closed
                self._loop.remove_reader(sock.fileno())

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(self._batch):
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # the queue is empty
            except ConnectionAbortedError:
                continue  # the peer gave up while queued
            except OSError as exc:
                if exc.errno in _PAUSE_ERRNOS:
                    self.pauses += 1
                    log.warning("cannot accept connections (%s); pausing for %.0f s", exc, PAUSE_SECONDS)
                    self._stop_reading()
                    self._paused = self._loop.call_later(PAUSE_SECONDS, self._resume)
                    return
                log.warning("accept failed on %s: %s", _name(sock), exc)
                return
            self.accepted += 1
            conn.setblocking(False)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self._start()

    async def _connect(self, conn: socket.socket) -> None:
        try:
            if self._ssl is not None:
                await self._loop.connect_accepted_socket(self._factory, conn, ssl=self._ssl,
                                                         ssl_handshake_timeout=self._ssl_timeout)
            else:
                await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:  # a failed or timed-out TLS handshake (ssl.SSLError, TimeoutError), a reset peer
            log.debug("connection from %s not established: %s", _peer(conn), exc)
            conn.close()


def _name(sock: socket.socket) -> str:
    try:
        return str(sock.getsockname())
    except OSError:
        return "?"


def _peer(conn: socket.socket) -> str:
    try:
        return str(conn.getpeername())
    except OSError:
        return "?"


def websockets_protocol_factory(server: object) -> Callable[[], asyncio.Protocol] | None:
    """The protocol factory inside a websockets `Server` made by `serve()` (before it is awaited), or None
    if this version of websockets does not keep one where we look (then the loop's own server is used)."""
    create = getattr(server, "create_server", None)
    code = getattr(create, "__code__", None)
    closure = getattr(create, "__closure__", None)
    if code is None or closure is None:
        return None
    cells = dict(zip(code.co_freevars, closure, strict=False))
    cell = cells.get("protocol_factory")
    if cell is None:
        return None
    with contextlib.suppress(ValueError):  # an empty cell
        factory = cell.cell_contents
        return factory if callable(factory) else None
    return None
