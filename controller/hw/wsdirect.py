"""A websockets server connection that hands each complete message to a callback as it arrives.

Role: websockets queues every data frame for ``recv()``, which another task awaits; for an OCPP connection
that task only parses the message and wakes the task whose call it answers. Here the message goes to
``OcppConnection`` straight from the protocol callback (``process_event``), so an answer resolves its call
at once: one task wake-up and the queue's bookkeeping less per message, a large share of what a message
costs the controller beyond the frame itself (measured in ``bench/bench_fleet_change.py``).

Guarantees (what websockets' own assembler gives, kept):

- messages are delivered complete and in order: fragments are joined (at most ``MAX_FRAGMENTS``; websockets'
  protocol already bounds the whole message by ``max_size``), text decoded as UTF-8;
- invalid UTF-8 closes with 1007, too many fragments with 1009, as websockets does;
- messages that arrive before a callback is attached (between the handshake and ``OcppConnection.run``)
  are kept, in order, and delivered first when it is; more than ``MAX_EARLY`` of them closes with 1008;
- control frames (ping, pong, close) are websockets' business as before; once the connection closes, the
  iterator of the connection ends as usual (it never yields a message when a callback is attached).

Sending: ``send_text_now(text)`` writes a text message as one frame straight to the transport when nothing
stands in the way (open, no fragmented message being sent, no extension, writing not paused, nothing else
queued by the protocol, no frame logging); otherwise it returns False and the caller uses ``send``, which
handles every other case (closing, flow control) as websockets does. The frame is the one websockets
would write (FIN, text opcode, unmasked as a server's frames are, the shortest length encoding).

Receiving: ``data_received`` reads a complete, unfragmented, masked text frame that the transport delivers
whole (the common case: a charger's message in one segment) itself - unmasked with websockets' own C
``apply_mask``, decoded as UTF-8 - and hands it on, when websockets' parser is between frames with nothing
buffered, no message is being reassembled, no extension is negotiated, frame logging is off, the frame is
within ``max_size`` and its reserved bits are clear. Anything else (a partial frame, control frames, fragments,
binary, an unmasked or oversized frame, invalid UTF-8, a closing connection) goes to websockets' parser as
before, from the first byte not delivered, so order and every error reply are as websockets makes them. The
parser's generators were ~5 % of the controller's CPU in a 1,000-charger fleet-wide change (sampled), and the
change's instructions fell by 5 % without them (`bench/bench_instructions.py`).

Keepalive: websockets pings every ``ping_interval`` whatever the connection carries. Here a ping goes out only
after an interval in which nothing at all was heard from the charger (a frame of any kind: its messages,
its own pings, pongs), and each wait is drawn within +-10 % of the interval. A charger that talks needs no
probe - what it sent shows it is there - and a fleet that connected at once (a reconnect storm) would
otherwise be pinged in the same burst every interval, for ever: with 10,000 chargers, up to ~1,500 pings
landed in the few seconds of a fleet-wide change (measured in ``bench/bench_fleet_change.py``'s setting),
pure overhead on top of its calls. A silent charger is still pinged, and closed (1011) when its pong does
not come within ``ping_timeout``, as websockets does; a dead peer is found within 2.2 intervals plus the
timeout instead of one interval plus the timeout.

Flow control: websockets pauses reading when its queue of unread messages is full; here nothing is left
unread, and ``OcppConnection`` bounds what a charger may queue (calls beyond a small queue are refused,
floods closed). Boundary: frames in, messages out; no OCPP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import BINARY, CONT, TEXT, CloseCode, Frame, apply_mask
from websockets.protocol import OPEN, Event, Protocol
from websockets.streams import StreamReader

log = logging.getLogger("chargeops.hw.wsdirect")

MAX_FRAGMENTS = 1024
MAX_EARLY = 64  # messages held before a callback is attached; a charger sends one or two in that time

Sink = Callable[[str | bytes], None]

_FIN_TEXT = 0x81  # FIN bit + text opcode (RFC 6455 5.2)
_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")
_PROTOCOL_STATE = ("writes", "expect_continuation_frame", "extensions", "debug")
# What the receiving shortcut reads of websockets' parser state (websockets 17): without it, every frame goes
# to websockets' parser.
_PARSER_STATE = ("parser", "reader", "current_size", "max_message_size", "max_fragment_size")
_BETWEEN_FRAMES = StreamReader.at_eof.__code__  # where websockets' parser waits for the next frame's first byte
_FRAME_LOOP = Protocol.parse.__code__
_MASKED = 0x80


class DirectServerConnection(ServerConnection):
    """``ServerConnection`` with ``deliver_to(sink)``: complete messages go to ``sink`` as they arrive."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink: Sink | None = None
        self._early: list[str | bytes] | None = None  # (lists made only when needed: 10,000 connections)
        self._fragments: list[Frame] | None = None
        self._failing = False
        self._heard = 0  # frames received (any kind): the keepalive pings only after an interval with none
        self.read_directly = 0  # messages `data_received` read itself (not websockets' parser)
        # What `send_text_now` checks, as websockets 17 names it; a websockets without it sends through `send`.
        self._direct_send = (all(hasattr(self, name) for name in ("paused", "send_in_progress"))
                             and all(hasattr(self.protocol, name) for name in _PROTOCOL_STATE))
        self._direct_recv = all(hasattr(self.protocol, name) for name in _PARSER_STATE)

    def deliver_to(self, sink: Sink) -> None:
        """Attach the callback; messages that arrived before are delivered to it now, in order."""
        self._sink = sink
        early, self._early = self._early, None
        for message in early or ():
            sink(message)

    def send_text_now(self, text: str) -> bool:
        """Write `text` as one text frame now, without a task switch; False when `send` must do it."""
        protocol = self.protocol
        if (not self._direct_send or protocol.state is not OPEN or self.paused or self.send_in_progress is not None
                or protocol.writes or protocol.expect_continuation_frame or protocol.extensions or protocol.debug
                or self.transport.is_closing()):
            return False
        data = text.encode()
        size = len(data)
        if size < 126:
            frame = bytes((_FIN_TEXT, size)) + data
        elif size < 65536:
            frame = _LENGTH_16.pack(_FIN_TEXT, 126, size) + data
        else:
            frame = _LENGTH_64.pack(_FIN_TEXT, 127, size) + data
        self.transport.write(frame)
        return True

    def data_received(self, data: bytes) -> None:
        """Whole masked text frames handed on here (see the module's docstring); the rest to websockets."""
        sink = self._sink
        if sink is None or not self._direct_recv or self._failing or self._fragments:
            super().data_received(data)
            return
        protocol = self.protocol
        if (protocol.state is not OPEN or protocol.current_size is not None or protocol.extensions or protocol.debug
                or protocol.reader.buffer or not _between_frames(protocol)):
            super().data_received(data)
            return
        limit = protocol.max_message_size
        if limit is None or (protocol.max_fragment_size is not None and protocol.max_fragment_size < limit):
            limit = protocol.max_fragment_size
        view = memoryview(data)
        at, end = 0, len(data)
        while end - at >= 6 and data[at] == _FIN_TEXT:
            size = data[at + 1]
            if not size & _MASKED:
                break
            size &= 0x7F
            head = at + 2
            if size == 126:
                if end - at < 8:
                    break
                size = (data[head] << 8) | data[head + 1]
                head += 2
            elif size == 127:
                break  # 64 KiB and more: websockets' parser
            if (limit is not None and size > limit) or end - head - 4 < size:
                break
            body = head + 4 + size
            try:
                message = apply_mask(view[head + 4:body], data[head:head + 4]).decode()
            except UnicodeDecodeError:
                break  # websockets' parser and `process_event` close it with 1007
            at = body
            self._heard += 1
            self.read_directly += 1
            sink(message)
            if self._sink is not sink or self._failing or protocol.state is not OPEN:
                break  # the handler closed or detached it: what follows is websockets' business
        if at < end:
            super().data_received(data[at:] if at else data)

    def process_event(self, event: Event) -> None:
        self._heard += 1
        if not isinstance(event, Frame) or (event.opcode is not TEXT and event.opcode is not BINARY
                                            and event.opcode is not CONT):
            super().process_event(event)  # the handshake request; pongs (acknowledging pings)
            return
        if self._failing:
            return
        data: bytes | bytearray | memoryview
        if not event.fin or self._fragments:
            if self._fragments is None:
                self._fragments = []
            self._fragments.append(event)
            if len(self._fragments) > MAX_FRAGMENTS:
                self._fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
                return
            if not event.fin:
                return
            frames, self._fragments = self._fragments, None
            first = frames[0]
            data = b"".join(frame.data for frame in frames)
        else:
            first = event
            data = event.data  # bytes or bytearray
        message: str | bytes
        if first.opcode is TEXT:
            try:
                message = bytes(data).decode() if isinstance(data, memoryview) else data.decode()
            except UnicodeDecodeError as exc:
                self._fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                return
        else:
            message = bytes(data)
        sink = self._sink
        if sink is not None:
            sink(message)
        elif self._early is None:
            self._early = [message]
        elif len(self._early) < MAX_EARLY:
            self._early.append(message)
        else:
            self._fail(CloseCode.POLICY_VIOLATION, "too many messages before the connection was set up")

    async def keepalive(self) -> None:
        """websockets' keepalive, but a ping only after a wait in which no frame came (see the module's
        docstring); the pong is awaited as websockets does and its absence fails the connection (1011)."""
        interval = self.ping_interval
        assert interval is not None
        heard = self._heard
        try:
            while True:
                await asyncio.sleep(interval * random.uniform(0.9, 1.1))
                if self._heard != heard:  # the charger spoke: it is there
                    heard = self._heard
                    continue
                pong_received = await self.ping()
                if self.ping_timeout is not None:
                    try:
                        async with asyncio.timeout(self.ping_timeout):
                            await pong_received  # (connection_lost cancels this task: CancelledError)
                    except TimeoutError:
                        async with self.send_context():
                            self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                        raise AssertionError(
                            "send_context() waits for connection_lost(), which cancels keepalive()") from None
                heard = self._heard  # (the pong counted)
        except Exception:
            self.logger.error("keepalive ping failed", exc_info=True)

    def _fail(self, code: CloseCode, reason: str) -> None:
        self._failing = True
        self._fragments = self._early = None  # nothing of a connection being failed is delivered
        log.warning("closing a connection with %d: %s", int(code), reason)
        task = self.loop.create_task(self.close(code, reason))  # the closing handshake, as websockets does
        task.add_done_callback(lambda t: t.cancelled() or t.exception())


def _between_frames(protocol: Any) -> bool:
    """websockets' parser waits for the first byte of a frame (not midway through one, not closed)."""
    outer = protocol.parser
    inner = outer.gi_yieldfrom
    if inner is not None and inner.gi_code is _FRAME_LOOP:  # (a server's parser: the handshake's, then frames)
        outer, inner = inner, inner.gi_yieldfrom
    return outer.gi_code is _FRAME_LOOP and inner is not None and inner.gi_code is _BETWEEN_FRAMES
