"""Direct delivery of websocket messages (``controller.hw.wsdirect``): complete, in order, decoded, early
messages kept, bad input closed the way websockets closes it; and an OcppConnection on it answers and
is answered without a task reading the socket. Real websockets on localhost."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode, apply_mask
from websockets.protocol import OPEN

from controller.hw.connection import OcppConnection
from controller.hw.errors import ChargerRejected
from controller.hw.ocppj import Call
from controller.hw.wsdirect import MAX_EARLY, MAX_FRAGMENTS, DirectServerConnection

Handler = Callable[[ServerConnection], Awaitable[None]]


async def with_server(handler: Handler, client: Callable[[ClientConnection], Awaitable[None]],
                      **options: Any) -> None:
    async with serve(handler, "127.0.0.1", 0, create_connection=DirectServerConnection, **options) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await client(ws)


def collecting(received: list[str | bytes], attach_after: float = 0.0,
               done: asyncio.Event | None = None) -> Handler:
    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, DirectServerConnection)
        await asyncio.sleep(attach_after)
        ws.deliver_to(received.append)
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:  # ends at the close; yields nothing once delivering directly
                raise AssertionError("a message reached the iterator")
        if done is not None:
            done.set()
    return handler


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_messages_arrive_whole_in_order_fragments_joined_and_text_decoded() -> None:
    received: list[str | bytes] = []

    async def client(ws: ClientConnection) -> None:
        await ws.send("première")
        await ws.send(["[2,", '"id-1",', '"Heartbeat",{}]'])  # one message in three fragments
        await ws.send(b"\x00\x01")
        await ws.send("last")
        await until(lambda: len(received) == 4)

    asyncio.run(with_server(collecting(received), client))
    assert received == ["première", '[2,"id-1","Heartbeat",{}]', b"\x00\x01", "last"]


def test_messages_before_the_callback_is_attached_are_delivered_first_in_order() -> None:
    received: list[str | bytes] = []

    async def client(ws: ClientConnection) -> None:
        for i in range(5):
            await ws.send(f"early {i}")
        await asyncio.sleep(0.3)  # the server attaches after 0.2 s
        await ws.send("late")
        await until(lambda: len(received) == 6)

    asyncio.run(with_server(collecting(received, attach_after=0.2), client))
    assert received == [f"early {i}" for i in range(5)] + ["late"]


def test_too_many_messages_before_the_callback_is_attached_closes_with_1008() -> None:
    received: list[str | bytes] = []

    async def client(ws: ClientConnection) -> None:
        with pytest.raises(ConnectionClosed):
            for i in range(MAX_EARLY + 10):
                await ws.send(f"early {i}")
            await ws.recv()
        assert ws.close_code == 1008

    asyncio.run(with_server(collecting(received, attach_after=2.0), client))
    assert received == []


def test_invalid_utf8_in_a_text_frame_closes_with_1007() -> None:
    received: list[str | bytes] = []

    async def client(ws: ClientConnection) -> None:
        raw = Frame(Opcode.TEXT, b"\xff\xfe not utf-8").serialize(mask=True, extensions=[])
        ws.transport.write(raw)
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1007

    asyncio.run(with_server(collecting(received), client))
    assert received == []


def test_a_message_in_too_many_fragments_closes_with_1009() -> None:
    received: list[str | bytes] = []

    async def client(ws: ClientConnection) -> None:
        with pytest.raises(ConnectionClosed):
            await ws.send(["x"] * (MAX_FRAGMENTS + 1))
            await ws.recv()
        assert ws.close_code == 1009

    asyncio.run(with_server(collecting(received), client))
    assert received == []


def test_an_ocpp_connection_on_direct_delivery_calls_and_is_called() -> None:
    """The central system's side: its call is answered and the charger's call handled; a reply that is not
    an object fails the call at once (a malformed answer to the call in flight) and is counted."""

    async def scenario() -> None:
        seen: list[str] = []
        result: dict[str, object] = {}

        async def heartbeat(call: Call) -> dict[str, object]:
            seen.append(call.action)
            return {"currentTime": "2026-01-01T00:00:00Z"}

        async def handler(ws: ServerConnection) -> None:
            conn = OcppConnection(ws, "CP-1", {"Heartbeat": heartbeat}, default_timeout=2.0)
            runner = asyncio.create_task(conn.run())
            result["answer"] = await conn.call("GetLocalListVersion", {})
            try:
                await conn.call("GetLocalListVersion", {})
            except Exception as exc:  # the test records what the caller saw
                result["second"] = exc
            result["bad_frames"] = conn.stats.bad_frames
            await conn.close()
            await runner

        async def client(ws: ClientConnection) -> None:
            await ws.send(json.dumps([2, "hb-1", "Heartbeat", {}]))
            answered = 0
            async for message in ws:
                frame = json.loads(message)
                if frame[0] == 3:
                    assert frame[1] == "hb-1"
                    continue
                answered += 1
                if answered == 1:
                    await ws.send(json.dumps([3, frame[1], {"listVersion": 7}]))
                else:
                    await ws.send(json.dumps([3, frame[1], "not an object"]))  # a malformed answer

        await with_server(handler, client)
        assert seen == ["Heartbeat"]
        assert result["answer"] == {"listVersion": 7}
        assert isinstance(result["second"], ChargerRejected)  # answered (a malformed answer), not timed out
        assert result["bad_frames"] == 1

    asyncio.run(scenario())


def test_frames_written_at_once_reach_a_websockets_client_whole_at_every_length_encoding() -> None:
    """`send_text_now` writes what websockets would: 7-bit, 16-bit and 64-bit lengths, multi-byte text."""
    texts = ["", "x" * 125, "é" * 63, "y" * 126, "z" * 65535, "w" * 65536, "ü" * 40000]
    written: list[bool] = []

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, DirectServerConnection)
        ws.deliver_to(lambda _message: None)
        for text in texts:
            written.append(ws.send_text_now(text))
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    async def client(ws: ClientConnection) -> None:
        received = [await ws.recv() for _ in texts]
        assert received == texts

    asyncio.run(with_server(handler, client, compression=None))  # the controller's option
    assert written == [True] * len(texts)


def test_with_compression_negotiated_frames_go_through_websockets() -> None:
    """An extension (permessage-deflate) transforms frames: `send_text_now` leaves them to `send`."""
    outcome: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, DirectServerConnection)
        ws.deliver_to(lambda _message: None)
        outcome.append(ws.send_text_now("plain"))
        await ws.send("compressed")
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    async def client(ws: ClientConnection) -> None:
        outcome.append(await ws.recv())

    asyncio.run(with_server(handler, client))  # websockets' default: compression negotiated
    assert outcome == [False, "compressed"]


def test_no_frame_is_written_at_once_once_the_connection_is_closing() -> None:
    """After the server started closing, `send_text_now` declines (the caller's `send` then raises
    ConnectionClosed, as websockets does); the client sees the close and no data after it."""
    outcome: dict[str, object] = {}

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, DirectServerConnection)
        ws.deliver_to(lambda _message: None)
        assert ws.send_text_now("before")
        closing = asyncio.create_task(ws.close(1000, "bye"))
        await asyncio.sleep(0)
        outcome["after_close"] = ws.send_text_now("after")
        try:
            await ws.send("after")
        except ConnectionClosed:
            outcome["send_raised"] = True
        await closing

    async def client(ws: ClientConnection) -> None:
        outcome["first"] = await ws.recv()
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        outcome["code"] = ws.close_code

    asyncio.run(with_server(handler, client, compression=None))
    assert outcome == {"first": "before", "after_close": False, "send_raised": True, "code": 1000}


class _PingCounter(ClientConnection):
    """A client that counts the pings it receives (and answers them, as websockets does)."""

    pings = 0

    def process_event(self, event: object) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings += 1
        super().process_event(event)  # type: ignore[arg-type]


def test_keepalive_pings_only_a_charger_that_went_quiet_and_keeps_it_open() -> None:
    """A charger that talks within every interval is never pinged; once it goes quiet it is pinged, answers,
    and stays connected."""
    seen: dict[str, int] = {}

    async def scenario() -> None:
        async def handler(ws: ServerConnection) -> None:
            ws.deliver_to(lambda _message: None)
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass

        async with serve(handler, "127.0.0.1", 0, create_connection=DirectServerConnection, ping_interval=0.2,
                         ping_timeout=1.0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", create_connection=_PingCounter,
                               ping_interval=None) as ws:
                assert isinstance(ws, _PingCounter)
                for _ in range(15):  # 1.5 s, a message every 0.1 s: 7 intervals
                    await ws.send("[2,\"1\",\"Heartbeat\",{}]")
                    await asyncio.sleep(0.1)
                seen["talking"] = ws.pings
                await asyncio.sleep(1.2)  # quiet: pinged after an interval or two, answered
                seen["quiet"] = ws.pings
                await ws.send("still here")  # the connection is open
                seen["open"] = int(ws.protocol.state is OPEN)

    asyncio.run(scenario())
    assert seen["talking"] == 0
    assert seen["quiet"] >= 2
    assert seen["open"] == 1


def test_keepalive_closes_a_charger_that_does_not_answer_its_ping() -> None:
    """A quiet charger that does not answer the ping (it stopped reading) is closed with 1011 once
    `ping_timeout` passes, as websockets does."""
    outcome: dict[str, object] = {}

    async def scenario() -> None:
        done = asyncio.Event()

        async def handler(ws: ServerConnection) -> None:
            ws.deliver_to(lambda _message: None)
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass
            sent = ws.protocol.close_sent
            outcome["code"] = None if sent is None else int(sent.code)
            done.set()

        async with serve(handler, "127.0.0.1", 0, create_connection=DirectServerConnection, ping_interval=0.2,
                         ping_timeout=0.3, close_timeout=0.2) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", ping_interval=None) as ws:
                ws.transport.pause_reading()  # reads nothing more: no pong
                loop = asyncio.get_running_loop()
                started = loop.time()
                await asyncio.wait_for(done.wait(), 5.0)
                outcome["after"] = loop.time() - started

    asyncio.run(scenario())
    assert outcome["code"] == 1011
    assert 0.2 * 0.9 + 0.3 <= outcome["after"] < 3.0  # type: ignore[operator]


def _masked(opcode: Opcode, data: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    raw = Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])
    return bytes((raw[0] | 0x40,)) + raw[1:] if rsv1 else raw  # (websockets will not serialise a reserved bit)


def _unmasked_text(data: bytes) -> bytes:
    return Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])


def _read_whole_frames(chunks: list[bytes], *, max_size: int = 2**20) -> tuple[list[str | bytes], int, int | None]:
    """What the server's sink received from a client writing `chunks`, how many it read itself, and the close
    code the client saw (None when still open)."""
    received: list[str | bytes] = []
    server_conn: list[DirectServerConnection] = []
    outcome: dict[str, int | None] = {}

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, DirectServerConnection)
        server_conn.append(ws)
        ws.deliver_to(received.append)
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                raise AssertionError("a message reached the iterator")

    async def scenario() -> None:
        async with serve(handler, "127.0.0.1", 0, create_connection=DirectServerConnection, compression=None,
                         max_size=max_size) as server:
            port = server.sockets[0].getsockname()[1]
            ws = await connect(f"ws://127.0.0.1:{port}/", compression=None)
            await until(lambda: bool(server_conn))
            for chunk in chunks:  # written as they are: a TCP segment each, on loopback read in one piece
                ws.transport.write(chunk)
                await asyncio.sleep(0.05)
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)  # the server sends nothing unless it closes
            outcome["code"] = ws.close_code
            await ws.close()

    asyncio.run(scenario())
    return received, server_conn[0].read_directly, outcome["code"]


def test_whole_text_frames_in_one_segment_are_read_directly_in_order() -> None:
    texts = ['[2,"a","Heartbeat",{}]', "é" * 100, "x" * 300, ""]  # 7-bit, 16-bit lengths, multi-byte, empty
    received, direct, code = _read_whole_frames([b"".join(_masked(Opcode.TEXT, t.encode()) for t in texts)])
    assert received == texts
    assert direct == 4
    assert code is None


def test_a_frame_split_across_segments_goes_through_websockets_and_the_next_is_read_directly() -> None:
    # The first frame's mask looks like a frame header of its own (0x81, masked, length 5, and what follows
    # unmasks to valid UTF-8): after its first two bytes websockets' parser is midway through it with nothing
    # buffered, and must be the one to read on.
    mask = b"\x81\x85\x00\x00"
    body = b"one" * 40
    first = bytes((0x81, 0x80 | len(body))) + mask + apply_mask(body, mask)
    second, third = _masked(Opcode.TEXT, b"two"), _masked(Opcode.TEXT, b"3")
    chunks = [first[:2], first[2:], first[:3], first[3:] + second[:5], second[5:], third]
    received, direct, code = _read_whole_frames(chunks)
    assert received == ["one" * 40, "one" * 40, "two", "3"]
    assert direct == 1  # only the last came whole, with the parser between frames
    assert code is None


def test_control_frames_binary_and_fragments_between_whole_frames_keep_their_order() -> None:
    chunk = b"".join([
        _masked(Opcode.TEXT, b"a"), _masked(Opcode.PING, b"p"), _masked(Opcode.TEXT, b"b"),
        _masked(Opcode.BINARY, b"\x00"), _masked(Opcode.TEXT, b"c1", fin=False), _masked(Opcode.CONT, b"c2"),
        _masked(Opcode.TEXT, b"d"),
    ])
    received, direct, code = _read_whole_frames([chunk, _masked(Opcode.TEXT, b"e")])
    assert received == ["a", "b", b"\x00", "c1c2", "d", "e"]
    assert direct == 2  # "a" and "e": after the ping, the rest of that segment is websockets' to parse
    assert code is None


def test_an_oversized_frame_read_whole_is_refused_as_websockets_refuses_it() -> None:
    received, direct, code = _read_whole_frames([_masked(Opcode.TEXT, b"ok"), _masked(Opcode.TEXT, b"y" * 2000)],
                                                max_size=1000)
    assert received == ["ok"]
    assert direct == 1
    assert code == 1009


def test_an_unmasked_or_reserved_bit_frame_from_a_client_is_a_protocol_error() -> None:
    for bad in (_unmasked_text(b"no mask"), _masked(Opcode.TEXT, b"rsv", rsv1=True)):
        received, direct, code = _read_whole_frames([_masked(Opcode.TEXT, b"ok") + bad + _masked(Opcode.TEXT, b"no")])
        assert received == ["ok"]
        assert direct == 1
        assert code == 1002


def test_invalid_utf8_after_a_whole_frame_in_the_same_segment_closes_with_1007() -> None:
    chunk = _masked(Opcode.TEXT, b"fine") + _masked(Opcode.TEXT, b"\xc3\x28 bad") + _masked(Opcode.TEXT, b"never")
    received, direct, code = _read_whole_frames([chunk])
    assert received == ["fine"]
    assert direct == 1
    assert code == 1007
