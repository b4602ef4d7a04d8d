"""SimulatedCharger: one OCPP 1.6J charge point in-process, connection and protocol side.

Role: connect like real hardware (``<url>/<identity>``, subprotocol ``ocpp1.6``, HTTP Basic when its
SecurityProfile is 1 or more), BootNotification after power-on only (a reconnect is not a boot; Pending
or Rejected -> silent for ``interval``, then again), heartbeats at the interval the central system gave,
StatusNotification on every status change (changes made while offline are reported after reconnect),
transaction messages delivered in order from a queue that survives disconnects and reboots, retried
TransactionMessageAttempts times TransactionMessageRetryInterval apart, then discarded (like real
chargers). Boundary: sessions (plug, card, meter) are in ``sim.sessions``; answers to the central
system's calls in ``sim.handlers``; this module owns sockets and timing.

Every protocol interval (heartbeat, meter sampling, retry, boot retry, connection timeout) is multiplied
by ``time_scale`` so tests can run a realistic configuration quickly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from controller.hw import ocppj
from controller.hw.connection import ConnectionLimits, OcppConnection, StationLog
from controller.hw.errors import ChargerRejected, ChargerUnavailable, UnavailableReason
from controller.hw.sim.auth import AuthCache, LocalAuthList
from controller.hw.sim.config import ConfigStore
from controller.hw.sim.connectors import (
    Connector,
    DisplayMessage,
    QueuedMessage,
    ReceivedCall,
    SentCall,
    Transaction,
)
from controller.hw.sim.model import MODELS, ChargerModel, Faults

LOGGER = logging.getLogger("chargeops.sim")
MAX_QUEUE = 2000
GARBAGE = ("not json", "[", "{}", "[2]", '[9,"x"]', '[2,"g1",42,{}]', '[2,"g2","Heartbeat",[]]', '"text"', "\x00")


class SimulatedCharger:
    """One simulated charge point. ``await start()`` then drive it; ``await stop()`` at the end."""

    def __init__(
        self,
        identity: str,
        url: str,
        password: str | None = None,
        model: ChargerModel | str = "basic",
        *,
        faults: Faults | None = None,
        time_scale: float = 1.0,
        call_timeout: float = 10.0,
        reconnect_delay: float = 1.0,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.identity = identity
        self.url = url
        self.model = MODELS[model] if isinstance(model, str) else model
        self.faults = faults or Faults()
        self.time_scale = time_scale
        self.call_timeout = call_timeout
        self.reconnect_delay = reconnect_delay
        self.limits = limits or ConnectionLimits(rate_per_second=1000, burst=1000)
        self.log = StationLog(LOGGER, identity)
        # persistent state (survives reboots unless settings are lost)
        self.config = ConfigStore(self.model, password)
        self.local_list = LocalAuthList(self.model.local_list_max_length, self.model.send_local_list_max_length)
        self.cache = AuthCache()
        self.connectors = {i: Connector(i) for i in range(self.model.connectors + 1)}
        self.tx_queue: deque[QueuedMessage] = deque()
        # observations for tests
        self.received: list[ReceivedCall] = []
        self.sent: list[SentCall] = []
        self.display: list[DisplayMessage] = []
        self.discarded: list[QueuedMessage] = []
        self.transactions: list[Transaction] = []
        self.registration: str | None = None
        self.boot_count = 0
        self.connect_count = 0
        self.last_error: BaseException | None = None
        # runtime
        self._conn: OcppConnection | None = None
        self._ws: ClientConnection | None = None
        self._zombies: list[ClientConnection] = []
        self._booted = False
        self._ready = asyncio.Event()  # booted (Accepted) and connected
        self._want_online = asyncio.Event()
        self._want_online.set()
        self._switch = asyncio.Event()
        self._tx_ready = asyncio.Event()
        self._heartbeat_changed = asyncio.Event()
        self._life: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_ref = 1
        self._tx_ids: dict[int, int] = {}
        self._scheduled_status: dict[int, str | None] = {}
        from controller.hw.sim.handlers import build_handlers
        from controller.hw.sim.sessions import Sessions

        self.sessions = Sessions(self)
        self._handlers = build_handlers(self)

    # ------------------------------------------------------------------------------------ basics

    @property
    def password(self) -> str | None:
        """The HTTP Basic password in use: the AuthorizationKey when SecurityProfile >= 1."""
        key = self.config.get("AuthorizationKey")
        return key if key and self.config.get_int("SecurityProfile") >= 1 else None

    @property
    def online(self) -> bool:
        return self._ready.is_set() and self._conn is not None and not self._conn.closed

    @property
    def connection(self) -> OcppConnection | None:
        return self._conn

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.faults.clock_skew)

    def timestamp(self) -> str:
        return ocppj.format_datetime(self.now().replace(microsecond=0))

    def scaled(self, seconds: float) -> float:
        return max(0.0, seconds * self.time_scale)

    def spawn(self, coro: Coroutine[Any, Any, Any], delay: float = 0.0) -> asyncio.Task[Any]:
        """Run background work owned by this charger (cancelled by ``stop()``)."""

        async def later() -> Any:
            if delay:
                await asyncio.sleep(delay)
            return await coro

        task = asyncio.create_task(later())
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._task_done(done, coro))
        return task

    def _task_done(self, task: asyncio.Task[Any], coro: Coroutine[Any, Any, Any]) -> None:
        coro.close()  # never started (cancelled early): no "never awaited" warning; otherwise a no-op
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, ChargerUnavailable | ChargerRejected):
                self.log.error("background task failed: %r", exc)

    def connector(self, connector_id: int) -> Connector:
        if connector_id not in self.connectors:
            raise ValueError(f"{self.identity} has no connector {connector_id}")
        return self.connectors[connector_id]

    def new_ref(self) -> int:
        ref, self._next_ref = self._next_ref, self._next_ref + 1
        return ref

    def transaction_id(self, ref: int) -> int | None:
        return self._tx_ids.get(ref)

    # -------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._life is None or self._life.done():
            self._life = asyncio.create_task(self._run(), name=f"sim-{self.identity}")

    async def stop(self) -> None:
        life, self._life = self._life, None
        if life is not None:
            life.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await life
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for ws in self._zombies:
            with contextlib.suppress(Exception):
                await ws.close()
        self._zombies.clear()

    async def __aenter__(self) -> SimulatedCharger:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_online(self, timeout: float = 10.0) -> None:
        """Wait until connected and (after a boot) Accepted."""
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        """Poll ``predicate`` every 10 ms; TimeoutError naming ``what`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise TimeoutError(f"{self.identity}: timed out waiting for {what or predicate}")
            await asyncio.sleep(0.01)

    async def drained(self, timeout: float = 5.0) -> None:
        await self.wait_for(lambda: not self.tx_queue, timeout, "the transaction queue to drain")

    def calls(self, action: str) -> list[ReceivedCall]:
        return [call for call in self.received if call.action == action]

    def sent_calls(self, action: str) -> list[SentCall]:
        return [call for call in self.sent if call.action == action]

    async def _run(self) -> None:
        while True:
            await self._want_online.wait()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # handshake refused, connection refused, timeout...
                self.last_error = exc
                self.log.debug("connection attempt failed: %r", exc)
            if self._switch.is_set():
                self._switch.clear()
                continue
            await asyncio.sleep(self.reconnect_delay)

    def _uri(self) -> str:
        base = self.url if self.url.endswith("/") else self.url + "/"
        return base + quote(self.identity, safe="") + ("/" if self.model.trailing_slash else "")

    def _headers(self) -> dict[str, str]:
        password = self.password
        if not password:
            return {}
        secret = password.encode()
        if self.model.basic_auth_raw_key and len(password) % 2 == 0:
            with contextlib.suppress(ValueError):
                secret = bytes.fromhex(password)  # firmware that sends the key's bytes, not its hex text
        token = base64.b64encode(self.identity.encode() + b":" + secret).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    async def _open(self) -> ClientConnection:
        ping = self.config.get_int("WebSocketPingInterval", 60)
        return await connect(
            self._uri(),
            subprotocols=None if self.faults.no_subprotocol else [Subprotocol("ocpp1.6")],
            additional_headers=self._headers(),
            compression=None,
            proxy=None,
            open_timeout=max(self.call_timeout, 1.0),
            ping_interval=ping if ping > 0 else None,
            close_timeout=2.0,
            max_size=self.limits.max_frame_bytes,
        )

    async def _session(self) -> None:
        ws = await self._open()
        self.connect_count += 1
        self.last_error = None
        conn = OcppConnection(
            ws, self.identity, self._handlers, limits=self.limits, logger=LOGGER, default_timeout=self.call_timeout
        )
        self._ws, self._conn = ws, conn
        runner = asyncio.create_task(conn.run())
        worker = asyncio.create_task(self._online(conn))
        switch = asyncio.create_task(self._switch.wait())
        try:
            await asyncio.wait({runner, switch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._ready.clear()
            self._scheduled_status.clear()
            for task in (worker, switch):
                task.cancel()
            if self._switch.is_set():
                runner.cancel()  # stop reading, leave the socket open: a half-open zombie
                self._zombies.append(ws)
            else:
                await ws.close()
            for task in (runner, worker, switch):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._conn is conn:
                self._conn, self._ws = None, None

    async def _online(self, conn: OcppConnection) -> None:
        try:
            if not self._booted:
                await self._boot(conn)
            else:
                self.report_statuses(changed_only=True)
            self._ready.set()
            self._tx_ready.set()
            await asyncio.gather(self._heartbeats(conn), self._deliver(conn))
        except ChargerUnavailable:
            return

    # ------------------------------------------------------------------------- outgoing messages

    async def send(self, action: str, payload: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Make a call over the current connection and record it."""
        conn = self._conn
        record = SentCall(action, payload)
        self.sent.append(record)
        if conn is None:
            record.error = "offline"
            raise ChargerUnavailable(self.identity, action, UnavailableReason.OFFLINE)
        try:
            record.reply = await conn.call(action, payload, timeout=timeout)
        except (ChargerUnavailable, ChargerRejected) as err:
            record.error = str(err)
            raise
        return record.reply

    def boot_payload(self) -> dict[str, Any]:
        return {
            "chargePointVendor": self.model.vendor[:20],
            "chargePointModel": self.model.model[:20],
            "chargePointSerialNumber": self.identity[:25],
            "chargeBoxSerialNumber": self.identity[:25],
            "firmwareVersion": self.model.firmware[:50],
            "meterType": "SimMeter",
        }

    async def _boot(self, conn: OcppConnection) -> None:
        while True:
            try:
                reply = await self.send("BootNotification", self.boot_payload())
            except ChargerRejected:  # a CALLERROR: try again later, as firmware does
                await asyncio.sleep(self.scaled(60))
                continue
            self.registration = str(reply.get("status"))
            interval = reply.get("interval")
            if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
                self.config.set_internal("HeartbeatInterval", str(interval))
            if self.registration == "Accepted":
                self._booted = True
                self.boot_count += 1
                self.report_statuses(changed_only=False)
                return
            self.log.info("registration %s; silent for %ss", self.registration, interval)
            await asyncio.sleep(self.scaled(interval if isinstance(interval, int) and interval > 0 else 60))

    async def _heartbeats(self, conn: OcppConnection) -> None:
        while not conn.closed:
            interval = self.config.get_int("HeartbeatInterval", 300) or 300
            self._heartbeat_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.scaled(interval)):
                    await self._heartbeat_changed.wait()
                continue  # the interval changed: start over with the new one
            try:
                await self.send("Heartbeat", {})
            except ChargerRejected:
                pass
            except ChargerUnavailable:
                if conn.closed:
                    return

    def heartbeat_interval_changed(self) -> None:
        self._heartbeat_changed.set()

    def report_statuses(self, *, changed_only: bool, connector_id: int | None = None) -> None:
        """Schedule StatusNotifications: all connectors, or those the central system has not seen."""
        for connector in self.connectors.values():
            if connector_id is not None and connector.connector_id != connector_id:
                continue
            if changed_only and connector.status().value == connector.reported:
                continue
            self._schedule_status(connector, force=True)

    def status_changed(self, connector: Connector) -> None:
        """Called after every state change; reports the new status when online."""
        if self.online:
            self._schedule_status(connector)

    def _schedule_status(self, connector: Connector, force: bool = False) -> None:
        status = connector.status().value
        if not force and status == self._scheduled_status.get(connector.connector_id, connector.reported):
            return
        self._scheduled_status[connector.connector_id] = status
        self.spawn(self._send_status(connector, status))

    async def _send_status(self, connector: Connector, status: str) -> None:
        payload = {
            "connectorId": connector.connector_id,
            "errorCode": "OtherError" if connector.faulted else "NoError",
            "status": status,
            "timestamp": self.timestamp(),
        }
        await self.send("StatusNotification", payload)
        connector.reported = status

    # ---------------------------------------------------------------------- transaction messages

    def enqueue(self, action: str, payload: dict[str, Any], tx_ref: int | None = None) -> None:
        if len(self.tx_queue) >= MAX_QUEUE:  # full: real chargers drop the oldest meter values first
            for item in self.tx_queue:
                if item.action == "MeterValues":
                    self.tx_queue.remove(item)
                    self.discarded.append(item)
                    break
        self.tx_queue.append(QueuedMessage(action, payload, tx_ref, 0, self.now()))
        self._tx_ready.set()

    async def _deliver(self, conn: OcppConnection) -> None:
        while not conn.closed:
            if not self.tx_queue:
                self._tx_ready.clear()
                await self._tx_ready.wait()
                continue
            item = self.tx_queue[0]
            payload = dict(item.payload)
            if item.tx_ref is not None and item.action != "StartTransaction":
                tx_id = self._tx_ids.get(item.tx_ref)
                if tx_id is None:  # its StartTransaction was discarded: nothing to attach it to
                    self._discard(item, "no transactionId")
                    continue
                payload["transactionId"] = tx_id
            try:
                reply = await self.send(item.action, payload)
            except ChargerUnavailable as err:
                if err.reason is not UnavailableReason.TIMEOUT or conn.closed:
                    return  # offline: the message stays queued
                failed = True
            except ChargerRejected:
                failed = True
            else:
                failed = False
            if failed:
                item.attempts += 1
                if item.attempts >= max(1, self.config.get_int("TransactionMessageAttempts", 3)):
                    self._discard(item, f"{item.attempts} attempts failed")
                else:
                    retry = self.config.get_int("TransactionMessageRetryInterval", 60) * item.attempts
                    await asyncio.sleep(self.scaled(retry))
                continue
            if self.tx_queue and self.tx_queue[0] is item:
                self.tx_queue.popleft()
            self.sessions.on_delivered(item, reply)

    def _discard(self, item: QueuedMessage, why: str) -> None:
        if self.tx_queue and self.tx_queue[0] is item:
            self.tx_queue.popleft()
        self.discarded.append(item)
        self.log.warning("%s discarded: %s", item.action, why)

    def assign_transaction_id(self, ref: int, transaction_id: int) -> None:
        self._tx_ids[ref] = transaction_id

    # ------------------------------------------------------------------------- driver actions

    async def plug_in(self, connector_id: int = 1) -> None:
        await self.sessions.plug_in(connector_id)

    async def unplug(self, connector_id: int = 1) -> None:
        await self.sessions.unplug(connector_id)

    async def present_card(self, id_tag: str, connector_id: int | None = None) -> str:
        """See ``Sessions.present_card``: the AuthorizationStatus applied, or Occupied / Reserved."""
        return await self.sessions.present_card(id_tag, connector_id)

    async def stop_transaction(self, connector_id: int = 1, reason: str = "Local") -> None:
        self.sessions.stop(self.connector(connector_id), reason)

    def set_faulted(self, connector_id: int, faulted: bool = True) -> None:
        self.sessions.set_faulted(connector_id, faulted)

    # ---------------------------------------------------------------------------------- faults

    async def drop_connection(self) -> None:
        """Lose the network abruptly (no close frame); reconnects after ``reconnect_delay``."""
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    async def go_offline(self) -> None:
        """Lose the network and stay offline until ``go_online()``."""
        self._want_online.clear()
        await self.drop_connection()
        await self.wait_for(lambda: self._conn is None, 5.0, "the connection to go")

    def go_online(self) -> None:
        self._want_online.set()

    async def open_second_connection(self, timeout: float = 5.0) -> None:
        """Connect again with the same identity, leaving the old socket open (half-open cellular link)."""
        before = self.connect_count
        self._switch.set()
        await self.wait_for(lambda: self.connect_count > before and self.online, timeout, "a second connection")

    async def send_raw(self, *frames: str) -> None:
        """Send text frames as they are, bypassing the framing layer."""
        ws = self._ws
        if ws is None:
            raise ChargerUnavailable(self.identity, "raw", UnavailableReason.OFFLINE)
        for frame in frames:
            await ws.send(frame)

    async def send_garbage(self, count: int = len(GARBAGE)) -> None:
        await self.send_raw(*(GARBAGE[i % len(GARBAGE)] for i in range(count)))

    async def flood(self, count: int = 200) -> None:
        """Send ``count`` Heartbeat calls without waiting for any answer."""
        await self.send_raw(*(ocppj.encode(ocppj.Call(f"flood-{i}", "Heartbeat", {})) for i in range(count)))

    async def reconnect(self) -> None:
        """Close the connection normally; the charger connects again (no boot)."""
        ws = self._ws
        if ws is not None:
            await ws.close(1000, "reconnecting")

    async def reboot(self, *, lose_settings: bool | None = None, delay: float = 0.0, reason: str = "Reboot") -> None:
        """Power-cycle: sessions end (``reason``), reservations are lost, then reconnect and boot."""
        lose = self.faults.lose_settings_on_reboot if lose_settings is None else lose_settings
        self.sessions.stop_all(reason)
        for connector in self.connectors.values():
            connector.reservation = None
            connector.authorization = None
            connector.reported = None
        self._booted = False
        self.config.apply_pending()
        if lose:
            self.config.factory_reset()
            self.local_list.clear()
            self.cache.clear()
            for connector in self.connectors.values():
                connector.operative = True
        ws = self._ws
        if ws is not None:
            self._ready.clear()
            with contextlib.suppress(Exception):
                await ws.close(1001, "rebooting")
        if delay:
            self._want_online.clear()
            await asyncio.sleep(delay)
            self._want_online.set()
