"""One OCPP-J connection: receive loop, incoming-call dispatch, outgoing calls, limits.

Role: the asyncio layer over ``controller.hw.ocppj`` for one websocket, on either side (the central
system's ``ServerConnection`` or a simulated charger's ``ClientConnection``). Boundary: it knows frames,
actions and timing, never what a payload means: incoming calls go to a handler table
(action -> ``async def handler(call) -> payload``) and outgoing calls come from ``ChargerPort``.

Guarantees:

- One outstanding outgoing CALL per connection. ``call(..., priority=True)`` (driver-facing work) goes
  ahead of queued ordinary calls (reconcile work); within a class the order is FIFO.
- The receive loop never runs handlers: incoming CALLs are queued and handled one at a time, in order,
  by a dispatch task, so replies to our own calls are matched while a handler runs. A websocket that
  can deliver messages itself (``DirectDelivery``, the central system's) hands them over from its protocol
  callback; the iterator is then only waited on for the close. A handler may
  schedule work that calls the charger, but must not await ``call()`` itself (it raises RuntimeError).
- A handler raising ``OcppCallError`` is answered with that CALLERROR; an unknown action with
  NotImplemented; any other exception with InternalError (and logged); ``CloseWithoutReply`` sends
  nothing and closes the socket.
- A call that gets no answer within its timeout raises ``ChargerUnavailable(TIMEOUT)``; its late answer
  is logged and dropped. Closing the connection (peer gone, ``close()``, ``replace()``) fails the
  in-flight call and every queued call with ``ChargerUnavailable`` at once.
- Limits: the frame size is websockets' ``max_size`` (``websocket_options`` gives the server its
  arguments); incoming calls are paced by a token bucket, and a peer that keeps sending calls without
  waiting for answers overflows a small queue: overflowing calls get a GenericError CALLERROR (transaction
  messages get no answer and the socket is closed instead, so the charger re-sends them) and, past
  ``max_rate_strikes``, the socket is closed with 1008. So is it after ``max_bad_frames`` malformed
  frames (answers to calls we never made count as malformed; a second answer to a call already answered
  is dropped without counting, as firmware that answers twice is not hostile). Replies to our own calls
  are never rate limited.

Logs go to ``chargeops.hw.connection`` with the station id: connect/disconnect at INFO, frames at DEBUG
(redacted: idTags masked, AuthorizationKey values removed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from websockets.exceptions import ConnectionClosed

from controller.hw import ocppj
from controller.hw.errors import (
    ChargerRejected,
    ChargerUnavailable,
    CloseWithoutReply,
    OcppCallError,
    UnavailableReason,
)
from controller.hw.ocppj import Call, CallError, CallResult, ErrorCode

Handler = Callable[[Call], Awaitable[Mapping[str, Any]]]
Handlers = Mapping[str, Handler]

POLICY_VIOLATION = 1008
# messages a charger queues and retries; a CALLERROR makes it drop them, so they are never refused
TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues"})
DEFAULT_LOGGER = logging.getLogger("chargeops.hw.connection")



# Message ids of the calls we send: unique in this process (a counter) and across restarts (a random prefix
# per process), 13-20 characters of the 36 OCPP allows. A fresh uuid4 per call cost a getrandom() system call
# and ~2 us, a few per cent of a fleet-wide change.
_ID_PREFIX = uuid.uuid4().hex[:12]
_id_counter = itertools.count(1)


def _next_message_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):x}"

class WebSocket(Protocol):
    """What we need of a websockets connection (server or client side)."""

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...


@runtime_checkable
class DirectDelivery(Protocol):
    """A websocket that can hand each complete message to a callback as it arrives (see
    ``controller.hw.wsdirect``); its iterator then yields nothing more and ends when the connection closes."""

    def deliver_to(self, sink: Callable[[str | bytes], None]) -> None: ...

    def send_text_now(self, text: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_frame_bytes: int = 64 * 1024  # enforced by websockets (max_size), see websocket_options()
    rate_per_second: float = 20.0  # incoming calls handled per second, sustained
    burst: int = 100  # ... and in a burst
    max_queued_calls: int = 16  # calls received but not yet answered; more is a flood
    max_rate_strikes: int = 50  # overflowing calls tolerated before closing with 1008
    max_bad_frames: int = 10  # malformed frames tolerated per connection before closing with 1008
    late_reply_memory: int = 64  # ids of timed-out calls remembered to recognise late answers


def websocket_options(limits: ConnectionLimits) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.server.serve`` that match these limits."""
    return {"max_size": limits.max_frame_bytes, "compression": None, "max_queue": 32}


@dataclass(slots=True)
class ConnectionStats:
    frames_in: int = 0
    frames_out: int = 0
    bad_frames: int = 0
    overflowed_calls: int = 0
    late_replies: int = 0
    duplicate_replies: int = 0
    unknown_replies: int = 0


class StationLog(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter that prefixes messages with the station id (and puts it in ``extra``)."""

    def __init__(self, logger: logging.Logger, station: str) -> None:
        super().__init__(logger, {"station": station})

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs.setdefault("extra", {}).update(self.extra or {})
        return f"[{(self.extra or {}).get('station')}] {msg}", kwargs


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def delay(self) -> float:
        """Seconds until a token is available (0 if one is)."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    async def wait(self) -> None:
        while not self.take():
            await asyncio.sleep(self.delay())


class _ConnectionGone(Exception):
    """Internal: the connection closed while a call waited; turned into ChargerUnavailable."""


class _CallTimeout(Exception):
    """Internal: no answer within the call's timeout; turned into ChargerUnavailable(TIMEOUT)."""


# A timer may fire this much before its time (uvloop's timers count in milliseconds): a call then times out
# up to a millisecond early rather than being re-armed for a sliver.
_TIMER_SLACK_S = 0.001


class _PriorityGate:
    """A lock with two FIFO classes of waiters: priority ones are served first."""

    def __init__(self) -> None:
        self._busy = False
        self._closed = False
        self._queues: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    @property
    def waiting(self) -> int:
        return sum(1 for queue in self._queues for fut in queue if not fut.done())

    def try_acquire(self) -> bool:
        """Take the gate if it is free and nobody waits (no coroutine: most calls); raises when closed."""
        if self._closed:
            raise _ConnectionGone()
        queues = self._queues
        if not self._busy and (not (queues[0] or queues[1]) or not self.waiting):
            self._busy = True
            return True
        return False

    async def acquire(self, priority: bool) -> None:
        if self.try_acquire():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[0 if priority else 1].append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()  # we were handed the gate just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        for queue in self._queues:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # ownership passes on; the gate stays busy
                    return
        self._busy = False

    def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_exception(_ConnectionGone())


@dataclass(slots=True)
class _Pending:
    message_id: str
    action: str
    future: asyncio.Future[CallResult | CallError]
    deadline: float = math.inf  # loop time after which the call has timed out


class OcppConnection:
    """One OCPP-J websocket: ``await run()`` until it closes; ``call()`` from any other task."""

    def __init__(
        self,
        ws: WebSocket,
        station_id: str,
        handlers: Handlers,
        *,
        limits: ConnectionLimits | None = None,
        logger: logging.Logger | None = None,
        new_id: Callable[[], str] | None = None,
        default_timeout: float = 30.0,
    ) -> None:
        self._ws = ws
        # a frame written at once where the websocket can (else `send`, which may wait for flow control)
        self._send_now: Callable[[str], bool] | None = ws.send_text_now if isinstance(ws, DirectDelivery) else None
        self._station = station_id
        self._handlers = handlers
        self.limits = limits or ConnectionLimits()
        self._log = StationLog(logger or DEFAULT_LOGGER, station_id)
        self._new_id = new_id or _next_message_id
        self.default_timeout = default_timeout
        self._gate = _PriorityGate()
        self._pending: _Pending | None = None
        # One timer per connection for its calls' timeouts, armed lazily: calls are one at a time, so a timer
        # still armed for an earlier call fires no later than the next call's deadline and then re-arms itself
        # for what is left of it. A call in a burst costs no timer of its own (a call_later and a cancel per
        # call were ~2 us of CPU per round trip of a fleet-wide change).
        self._expiry: asyncio.TimerHandle | None = None
        self._late: OrderedDict[str, str] = OrderedDict()
        self._answered: OrderedDict[str, str] = OrderedDict()  # recently answered ids: their duplicates
        self._incoming: deque[tuple[Call, float]] = deque()  # incoming calls not handled yet, with their arrival
        self._incoming_ready = asyncio.Event()
        self._bucket = TokenBucket(self.limits.rate_per_second, self.limits.burst)
        self._strikes = 0
        self._dispatch_task: asyncio.Task[None] | None = None
        # the loop `run` runs on (calls ask it once, not per call: asyncio.get_running_loop is a getpid system call)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handling = False  # the dispatch task is running an incoming call's handler
        self._closer: asyncio.Task[None] | None = None
        self._closed = False
        self._close_reason = UnavailableReason.CONNECTION_LOST
        self._close_detail = ""
        self._finished = asyncio.Event()
        self._follow_ups: set[asyncio.Task[None]] = set()  # error answers to messages delivered directly
        self.stats = ConnectionStats()
        # Told of every incoming call answered: (action, seconds it waited behind the charger's earlier calls,
        # seconds from its handler's start to the answer written); metrics, benchmarks. Never raises into here.
        self.on_handled: Callable[[str, float, float], None] | None = None

    @property
    def station_id(self) -> str:
        return self._station

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> UnavailableReason | None:
        return self._close_reason if self._closed else None

    async def wait_closed(self) -> None:
        """Wait until ``run()`` has finished."""
        await self._finished.wait()

    # --------------------------------------------------------------------------------- receive side

    async def run(self) -> None:
        """Receive until the socket closes; then fail every outstanding call. Returns, never raises."""
        self._log.info("connected")
        self._loop = asyncio.get_running_loop()
        self._dispatch_task = asyncio.create_task(self._dispatch_loop(), name=f"ocpp-dispatch-{self._station}")
        if isinstance(self._ws, DirectDelivery):
            self._ws.deliver_to(self._on_direct)  # from now on the iterator below only waits for the close
        try:
            async for message in self._ws:
                if self._closed:
                    continue  # we are closing: drain until the peer's close frame
                await self._on_message(message)
        except ConnectionClosed:
            pass
        finally:
            self._shutdown(UnavailableReason.CONNECTION_LOST, "connection closed")
            await self._reap()
            code = getattr(self._ws, "close_code", None)
            reason = getattr(self._ws, "close_reason", None)
            self._log.info(
                "disconnected (%s, code=%s%s)", self._close_reason.value, code, f", {reason!r}" if reason else ""
            )
            self._finished.set()

    async def _reap(self) -> None:
        for task in (self._dispatch_task, self._closer, *self._follow_ups):
            if task is not None and task is not asyncio.current_task():
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _on_message(self, message: str | bytes) -> None:
        """A message read through the websocket's iterator (a websocket that cannot deliver directly)."""
        follow_up = self._receive(message)
        if follow_up is not None:
            await follow_up

    def _on_direct(self, message: str | bytes) -> None:
        """A message handed over by a `DirectDelivery` websocket in its protocol callback, as it arrives: an
        answer resolves its call at once and an incoming call is queued for the dispatch task, without a
        task of ours reading the socket in between (one wake-up of the event loop less per message)."""
        if self._closed:
            return  # we are closing: drop until the peer's close frame
        try:
            follow_up = self._receive(message)
        except Exception:  # never into the websocket's protocol callback
            self._log.exception("incoming message could not be processed: %.80r", message)
            return
        if follow_up is not None:
            task = asyncio.get_running_loop().create_task(follow_up)
            self._follow_ups.add(task)
            task.add_done_callback(self._follow_ups.discard)

    def _receive(self, message: str | bytes) -> Coroutine[Any, Any, None] | None:
        """Take one incoming message; returns what is left to do that must await (sending an error)."""
        self.stats.frames_in += 1
        try:
            frame = ocppj.parse(message)
        except ocppj.FrameError as err:
            return self._on_bad_frame(err, message)
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("<- %s", ocppj.describe(frame))
        if isinstance(frame, CallResult | CallError):
            self._resolve(frame)
            return None
        if not self._incoming:
            self._strikes = 0
        if len(self._incoming) >= self.limits.max_queued_calls:
            self.stats.overflowed_calls += 1
            self._strikes += 1
            if self._strikes > self.limits.max_rate_strikes:
                self._policy_close("flood: too many calls without waiting for answers")
                return None
            if frame.action in TRANSACTION_ACTIONS:
                # never a CALLERROR for a transaction message (the charger would drop it after its retries):
                # leave it unanswered and close, the charger keeps it and sends it again
                self._policy_close(f"flood: {frame.action} left unanswered, to be re-sent")
                return None
            return self._answer(ocppj.error_for(frame, ErrorCode.GENERIC_ERROR, "rate limit exceeded"), None)
        self._incoming.append((frame, time.monotonic()))
        self._incoming_ready.set()
        return None

    def _on_bad_frame(self, err: ocppj.FrameError, message: str | bytes) -> Coroutine[Any, Any, None] | None:
        self.stats.bad_frames += 1
        self._log.warning("malformed frame dropped (%s): %.80r", err.description, message)
        pending = self._pending
        reply: CallError | None = None
        if (
            err.message_type in (ocppj.MessageType.CALL_RESULT, ocppj.MessageType.CALL_ERROR)
            and pending is not None
            and err.message_id == pending.message_id
            and not pending.future.done()
        ):
            pending.future.set_result(CallError(pending.message_id, err.code.value, err.description))
        elif err.answerable:
            reply = err.to_call_error()
        close = "too many malformed frames" if self.stats.bad_frames >= self.limits.max_bad_frames else None
        if reply is None:
            if close is not None:
                self._policy_close(close)
            return None
        return self._answer(reply, close)

    async def _answer(self, reply: CallError, close: str | None) -> None:
        """Send an error answer, then close with 1008 if `close` says why (the answer goes first)."""
        await self._send_frame(reply)
        if close is not None:
            self._policy_close(close)

    def _resolve(self, frame: CallResult | CallError) -> None:
        pending = self._pending
        if pending is not None and pending.message_id == frame.message_id:
            if not pending.future.done():
                pending.future.set_result(frame)
                return
            # timed out a moment ago, and the caller has not woken up to clean up yet: a late answer
            self._remember(self._late, pending.message_id, pending.action)
        action = self._late.pop(frame.message_id, None)
        if action is not None:
            self.stats.late_replies += 1
            self._log.info("late answer to %s (%s) dropped", action, frame.message_id)
            self._remember(self._answered, frame.message_id, action)
        elif frame.message_id in self._answered:
            self.stats.duplicate_replies += 1
            self._log.debug("second answer to %s (%s) dropped", self._answered[frame.message_id], frame.message_id)
        else:  # not ours, never was: counts as a malformed frame (replies are not rate limited)
            self.stats.unknown_replies += 1
            self.stats.bad_frames += 1
            self._log.warning("answer with unknown message id %.40r dropped", frame.message_id)
            if self.stats.bad_frames >= self.limits.max_bad_frames:
                self._policy_close("too many malformed frames")

    async def _dispatch_loop(self) -> None:
        while True:
            while not self._incoming:
                self._incoming_ready.clear()
                await self._incoming_ready.wait()
            await self._bucket.wait()
            call, arrived = self._incoming.popleft()
            began = time.monotonic()
            self._handling = True
            try:
                reply = await self._handle(call)
            finally:
                self._handling = False
            if reply is None or self._closed:
                continue
            await self._send_frame(reply)
            if self.on_handled is not None:
                try:
                    self.on_handled(call.action, began - arrived, time.monotonic() - began)
                except Exception:  # an observer's trouble is not the charger's
                    self._log.exception("on_handled failed")

    async def _handle(self, call: Call) -> CallResult | CallError | None:
        handler = self._handlers.get(call.action)
        if handler is None:
            return ocppj.error_for(call, ErrorCode.NOT_IMPLEMENTED, f"{call.action} is not implemented")
        try:
            payload = await handler(call)
        except OcppCallError as err:
            return ocppj.error_for(call, err.code, err.description, err.details)
        except CloseWithoutReply as err:
            self._log.warning("closing without answering %s: %s", call.action, err.reason)
            self._shutdown(UnavailableReason.CLOSED, err.reason)
            self._closer = asyncio.create_task(self._close_socket(err.code, err.reason[:120]))
            return None
        except Exception:
            self._log.exception("handler for %s failed", call.action)
            return ocppj.error_for(call, ErrorCode.INTERNAL_ERROR, f"{call.action} could not be processed")
        if not isinstance(payload, Mapping):
            self._log.error("handler for %s returned %s, not a payload", call.action, type(payload).__name__)
            return ocppj.error_for(call, ErrorCode.INTERNAL_ERROR, f"{call.action} could not be processed")
        return ocppj.result_for(call, payload)

    async def _send_frame(self, frame: ocppj.Frame) -> bool:
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("-> %s", ocppj.describe(frame))
        try:
            await self._write(ocppj.encode(frame))
        except ConnectionClosed:
            return False
        self.stats.frames_out += 1
        return True

    async def _write(self, text: str) -> None:
        """One frame out: written at once where the websocket can, else through `send` (which raises
        ConnectionClosed and waits for flow control)."""
        send_now = self._send_now
        if send_now is None or not send_now(text):
            await self._ws.send(text)

    # -------------------------------------------------------------------------------- calling side

    async def call(
        self,
        action: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | None = None,
        priority: bool = False,
        sensitive: bool = False,
    ) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload.

        Raises ``ChargerUnavailable`` (closed, lost, timeout) or ``ChargerRejected`` (a CALLERROR).
        ``sensitive`` keeps the payload out of DEBUG logs entirely.
        """
        loop = self._loop or asyncio.get_running_loop()
        # (asyncio.current_task is Python code in 3.11: asked only while a handler runs, once per call)
        if self._handling and asyncio.current_task(loop) is self._dispatch_task:
            raise RuntimeError(
                f"{action}: an incoming-call handler must not await an outgoing call; schedule it as a task"
            )
        if self._closed:
            raise self._unavailable(action)
        gate = self._gate
        try:
            if not gate.try_acquire():
                await gate.acquire(priority)
        except _ConnectionGone:
            raise self._unavailable(action) from None
        pending: _Pending | None = None
        try:
            if self._closed:
                raise self._unavailable(action)
            message_id = self._new_id()
            sent = dict(payload)  # (a copy: the caller's payload may change once this call awaits)
            text = ocppj.call_text(message_id, action, sent)
            future: asyncio.Future[CallResult | CallError] = loop.create_future()
            pending = _Pending(message_id, action, future)
            self._pending = pending
            if self._log.isEnabledFor(logging.DEBUG):
                shown = (f"CALL {action} {message_id} <redacted>" if sensitive
                         else ocppj.describe(Call(message_id, action, sent)))
                self._log.debug("-> %s", shown)
            send_now = self._send_now  # `_write`, without a coroutine when the frame goes out at once
            if send_now is None or not send_now(text):
                try:
                    await self._ws.send(text)
                except ConnectionClosed:
                    raise self._unavailable(action) from None
            self.stats.frames_out += 1
            limit = self.default_timeout if timeout is None else timeout
            pending.deadline = loop.time() + limit
            self._arm_expiry(loop, pending.deadline)
            try:
                reply = await future
            except _CallTimeout:
                raise ChargerUnavailable(
                    self._station, action, UnavailableReason.TIMEOUT, f"no answer within {limit:g}s"
                ) from None
            except _ConnectionGone:
                raise self._unavailable(action) from None
        finally:
            if pending is not None:
                if self._pending is pending:
                    self._pending = None
                future = pending.future
                if not future.done() or future.cancelled() or isinstance(future.exception(), _CallTimeout):
                    future.cancel()  # timed out or the caller gave up: its answer will be late
                    if pending.message_id not in self._answered:  # (unless it came in the meantime)
                        self._remember(self._late, pending.message_id, pending.action)
                elif future.exception() is None:  # (retrieved: the connection may have failed it meanwhile)
                    self._remember(self._answered, pending.message_id, pending.action)
            self._gate.release()
        if isinstance(reply, CallError):
            raise ChargerRejected(
                self._station, action, code=reply.code, detail=reply.description or "(no description)"
            )
        return reply.payload

    def _arm_expiry(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        expiry = self._expiry
        if expiry is not None:
            if expiry.when() <= deadline:  # fires in time, and re-arms itself for the rest
                return
            expiry.cancel()
        self._expiry = loop.call_at(deadline, self._on_expiry, loop)

    def _on_expiry(self, loop: asyncio.AbstractEventLoop) -> None:
        self._expiry = None
        pending = self._pending
        if pending is None or pending.future.done() or pending.deadline == math.inf:
            return  # answered, given up, or still being written: the call arms the timer when it is sent
        if loop.time() + _TIMER_SLACK_S >= pending.deadline:
            pending.future.set_exception(_CallTimeout())
        else:  # armed for an earlier call: this one has time left
            self._expiry = loop.call_at(pending.deadline, self._on_expiry, loop)

    def _remember(self, ids: OrderedDict[str, str], message_id: str, action: str) -> None:
        ids[message_id] = action
        while len(ids) > self.limits.late_reply_memory:
            ids.popitem(last=False)

    def _unavailable(self, action: str) -> ChargerUnavailable:
        reason = self._close_reason if self._closed else UnavailableReason.OFFLINE
        return ChargerUnavailable(self._station, action, reason, self._close_detail)

    # ------------------------------------------------------------------------------------- closing

    def _shutdown(self, reason: UnavailableReason, detail: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        self._close_detail = detail
        pending = self._pending
        if pending is not None and not pending.future.done():
            pending.future.set_exception(_ConnectionGone())
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._gate.close()
        self._incoming.clear()
        task = self._dispatch_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def _policy_close(self, detail: str) -> None:
        self._log.warning("closing with 1008: %s", detail)
        self._shutdown(UnavailableReason.CLOSED, detail)
        self._closer = asyncio.create_task(self._close_socket(POLICY_VIOLATION, detail[:120]))

    async def _close_socket(self, code: int, reason: str) -> None:
        with contextlib.suppress(ConnectionClosed, OSError):
            await self._ws.close(code, reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Fail outstanding calls now (``CLOSED``), then perform the closing handshake."""
        self._shutdown(UnavailableReason.CLOSED, reason or "closed")
        await self._close_socket(code, reason)

    def replace(self) -> None:
        """A newer connection of this identity won: fail calls now (``REPLACED``), close in background."""
        if self._closed:
            return
        self._log.info("replaced by a newer connection")
        self._shutdown(UnavailableReason.REPLACED, "replaced by a newer connection")
        self._closer = asyncio.create_task(self._close_socket(1000, "replaced by a newer connection"))
