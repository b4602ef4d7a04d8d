"""OcppConnection over real websockets on localhost: dispatch, one outstanding call with priority,
timeouts and late answers, connection loss, replacement, and the limits that protect the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from controller.hw.connection import ConnectionLimits, Handlers, OcppConnection, websocket_options
from controller.hw.errors import (
    ChargerRejected,
    ChargerUnavailable,
    CloseWithoutReply,
    OcppCallError,
    UnavailableReason,
)
from controller.hw.ocppj import Call

from .kit import run


@contextlib.asynccontextmanager
async def central(handlers: Handlers | None = None, limits: ConnectionLimits | None = None) -> AsyncIterator[
    tuple[str, list[OcppConnection]]
]:
    """A server that wraps every connection in an OcppConnection; yields (url, connections)."""
    conns: list[OcppConnection] = []
    options = limits or ConnectionLimits()

    async def handle(ws: ServerConnection) -> None:
        conn = OcppConnection(ws, f"CP{len(conns) + 1}", handlers or {}, limits=options, default_timeout=2.0)
        conns.append(conn)
        await conn.run()

    async with serve(handle, "127.0.0.1", 0, **websocket_options(options)) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ocpp/CP", conns


async def first(conns: list[OcppConnection]) -> OcppConnection:
    while not conns:
        await asyncio.sleep(0.005)
    return conns[-1]


async def recv_json(ws: ClientConnection, timeout: float = 2.0) -> list[Any]:
    async with asyncio.timeout(timeout):
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def charger_side(ws: ClientConnection, handlers: Handlers) -> tuple[OcppConnection, asyncio.Task[None]]:
    conn = OcppConnection(ws, "charger", handlers, default_timeout=2.0)
    return conn, asyncio.create_task(conn.run())


def test_a_call_returns_the_result_payload() -> None:
    async def echo(call: Call) -> Mapping[str, Any]:
        return {"echo": call.payload["n"]}

    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            _, task = await charger_side(ws, {"Echo": echo})
            server = await first(conns)
            assert await server.call("Echo", {"n": 3}) == {"echo": 3}
            await ws.close()
            await task

    run(scenario())


def test_the_ids_of_our_calls_are_unique_across_connections_and_fit_ocpp() -> None:
    """Message ids come from a per-process prefix and a counter (no uuid4 per call): unique over many calls on
    several connections, at most 36 characters (OCPP-J's limit)."""
    seen: list[str] = []

    async def record(call: Call) -> Mapping[str, Any]:
        seen.append(call.message_id)
        return {}

    async def scenario() -> None:
        async with central() as (url, conns):
            for _ in range(3):
                async with connect(url) as ws:
                    _, task = await charger_side(ws, {"Ping": record})
                    server = await first(conns)
                    for _ in range(50):
                        await server.call("Ping", {})
                    await ws.close()
                    await task
                conns.clear()

    run(scenario())
    assert len(seen) == 150 and len(set(seen)) == 150
    assert all(0 < len(i) <= 36 for i in seen)


def test_unknown_actions_and_failing_handlers_become_call_errors() -> None:
    async def bad_payload(call: Call) -> Mapping[str, Any]:
        raise OcppCallError("FormationViolation", "idTag missing")

    async def crashes(call: Call) -> Mapping[str, Any]:
        raise KeyError("boom")

    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            _, task = await charger_side(ws, {"Bad": bad_payload, "Crash": crashes})
            server = await first(conns)
            for action, code in (("Nope", "NotImplemented"), ("Bad", "FormationViolation"), ("Crash", "InternalError")):
                with pytest.raises(ChargerRejected) as caught:
                    await server.call(action, {})
                assert caught.value.code == code and caught.value.action == action
            await ws.close()
            await task

    run(scenario())


def test_only_one_call_is_outstanding_and_priority_calls_go_first() -> None:
    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            server = await first(conns)
            calls = [
                asyncio.create_task(server.call("A", {})),
            ]
            await asyncio.sleep(0.02)
            calls += [
                asyncio.create_task(server.call("B", {})),
                asyncio.create_task(server.call("C", {})),
                asyncio.create_task(server.call("D", {}, priority=True)),
            ]
            order = []
            for _ in range(4):
                frame = await recv_json(ws)
                order.append(frame[2])
                with pytest.raises(TimeoutError):  # nothing else is sent until this one is answered
                    await recv_json(ws, timeout=0.05)
                await ws.send(json.dumps([3, frame[1], {"seen": frame[2]}]))
            assert order == ["A", "D", "B", "C"]
            results = await asyncio.gather(*calls)
            assert [r["seen"] for r in results] == ["A", "B", "C", "D"]

    run(scenario())


def test_a_timeout_is_temporary_and_the_late_answer_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            server = await first(conns)
            slow = asyncio.create_task(server.call("Slow", {}, timeout=0.1))
            frame = await recv_json(ws)
            with pytest.raises(ChargerUnavailable) as caught:
                await slow
            assert caught.value.reason is UnavailableReason.TIMEOUT
            nxt = asyncio.create_task(server.call("Next", {}))
            frame2 = await recv_json(ws)
            await ws.send(json.dumps([3, frame[1], {"late": True}]))  # the late answer to Slow
            await ws.send(json.dumps([3, frame2[1], {"ok": True}]))
            assert await nxt == {"ok": True}
            assert server.stats.late_replies == 1

    with caplog.at_level(logging.INFO, logger="chargeops.hw.connection"):
        run(scenario())
    assert any("late answer to Slow" in r.getMessage() for r in caplog.records)


def test_each_call_times_out_at_its_own_deadline_whatever_the_calls_before_it_armed() -> None:
    """The connection's one call timer is armed lazily: a call after an answered longer one (the timer still
    armed for later) and a call after an answered shorter one (the timer fires early for it) both time out at
    their own deadline, and an answered call leaves nothing that fails the next one."""

    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            server = await first(conns)
            loop = asyncio.get_running_loop()

            async def answered(timeout: float) -> None:
                call = asyncio.create_task(server.call("Quick", {}, timeout=timeout))
                frame = await recv_json(ws)
                await ws.send(json.dumps([3, frame[1], {}]))
                assert await call == {}

            async def times_out_after(timeout: float) -> float:
                started = loop.time()
                call = asyncio.create_task(server.call("Unanswered", {}, timeout=timeout))
                await recv_json(ws)
                with pytest.raises(ChargerUnavailable) as caught:
                    await call
                assert caught.value.reason is UnavailableReason.TIMEOUT
                return loop.time() - started

            await answered(timeout=5.0)  # leaves the timer armed ~5 s out
            took = await times_out_after(0.2)  # shorter: the timer must be brought forward
            assert 0.19 <= took < 0.6, took
            await answered(timeout=0.1)  # leaves the timer armed 0.1 s out, then answered at once
            took = await times_out_after(0.4)  # longer: the early timer must re-arm, not fail it
            assert 0.39 <= took < 0.9, took
            await answered(timeout=0.15)
            await asyncio.sleep(0.3)  # the timer of an answered call fires with nothing pending
            await answered(timeout=2.0)  # and the next call is not failed by anything left over
            assert server.stats.late_replies == 0

    run(scenario())


def test_losing_the_connection_fails_the_call_in_flight_and_the_queued_ones_at_once() -> None:
    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            server = await first(conns)
            in_flight = asyncio.create_task(server.call("A", {}, timeout=5))
            queued = asyncio.create_task(server.call("B", {}, timeout=5))
            await recv_json(ws)
            loop = asyncio.get_running_loop()
            started = loop.time()
            ws.transport.abort()
            for task in (in_flight, queued):
                with pytest.raises(ChargerUnavailable) as caught:
                    await task
                assert caught.value.reason is UnavailableReason.CONNECTION_LOST
            assert loop.time() - started < 1.0
            await server.wait_closed()
            with pytest.raises(ChargerUnavailable):
                await server.call("C", {})

    run(scenario())


def test_a_replaced_connection_fails_its_calls_as_replaced_and_closes() -> None:
    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            server = await first(conns)
            in_flight = asyncio.create_task(server.call("A", {}, timeout=5))
            await recv_json(ws)
            server.replace()
            with pytest.raises(ChargerUnavailable) as caught:
                await in_flight
            assert caught.value.reason is UnavailableReason.REPLACED
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(2):
                    await ws.recv()
            await server.wait_closed()

    run(scenario())


def test_a_handler_may_schedule_a_call_but_not_await_one() -> None:
    async def scenario() -> None:
        async with central() as (url, conns), connect(url) as ws:
            scheduled: list[asyncio.Task[Any]] = []
            holder: dict[str, OcppConnection] = {}

            async def awaits(call: Call) -> Mapping[str, Any]:
                await holder["conn"].call("Back", {})
                return {}

            async def schedules(call: Call) -> Mapping[str, Any]:
                scheduled.append(asyncio.create_task(holder["conn"].call("Back", {})))
                return {"status": "Accepted"}

            charger, task = await charger_side(ws, {"Awaits": awaits, "Schedules": schedules})
            holder["conn"] = charger
            server = await first(conns)
            server._handlers = {"Back": _ok}  # type: ignore[assignment]
            with pytest.raises(ChargerRejected) as caught:
                await server.call("Awaits", {})
            assert caught.value.code == "InternalError"
            assert await server.call("Schedules", {}) == {"status": "Accepted"}
            assert await scheduled[0] == {"back": True}
            await ws.close()
            await task

    run(scenario())


async def _ok(call: Call) -> Mapping[str, Any]:
    return {"back": True}


def test_a_malformed_call_with_an_id_is_answered_with_formation_violation_and_numeric_ids_are_echoed() -> None:
    async def heartbeat(call: Call) -> Mapping[str, Any]:
        return {"currentTime": "2024-01-01T00:00:00Z"}

    async def scenario() -> None:
        async with central({"Heartbeat": heartbeat}) as (url, _), connect(url) as ws:
            await ws.send('[2,"abc","Heartbeat",{')
            assert (await recv_json(ws))[:3] == [4, "abc", "FormationViolation"]
            await ws.send('[2,42,"Heartbeat",{},"extra"]')
            assert await recv_json(ws) == [3, 42, {"currentTime": "2024-01-01T00:00:00Z"}]

    run(scenario())


def test_close_without_reply_sends_nothing_and_closes() -> None:
    async def refuse(call: Call) -> Mapping[str, Any]:
        raise CloseWithoutReply("store unavailable")

    async def scenario() -> None:
        async with central({"StartTransaction": refuse}) as (url, conns), connect(url) as ws:
            await ws.send('[2,"1","StartTransaction",{}]')
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(2):
                    await ws.recv()
            assert ws.close_code == 1011
            await (await first(conns)).wait_closed()

    run(scenario())


def test_garbage_and_floods_close_the_bad_charger_with_1008_and_leave_another_alone() -> None:
    limits = ConnectionLimits(max_bad_frames=5, rate_per_second=50, burst=10, max_queued_calls=4, max_rate_strikes=10)

    async def heartbeat(call: Call) -> Mapping[str, Any]:
        return {"currentTime": "2024-01-01T00:00:00Z"}

    async def drain(ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(3):
                async for _ in ws:
                    pass

    async def scenario() -> None:
        async with (
            central({"Heartbeat": heartbeat}, limits) as (url, conns),
            connect(url) as good,
            connect(url) as garbage,
            connect(url) as flood,
        ):
            for _ in range(10):
                await garbage.send("this is not OCPP")
            for i in range(300):
                await flood.send(json.dumps([2, f"f{i}", "Heartbeat", {}]))
            await asyncio.gather(drain(garbage), drain(flood))
            assert garbage.close_code == 1008
            assert flood.close_code == 1008
            await good.send('[2,"ok","Heartbeat",{}]')
            assert (await recv_json(good))[:2] == [3, "ok"]
            stats = [c.stats for c in conns]
            assert stats[1].bad_frames >= 5 and stats[2].overflowed_calls > 0

    run(scenario())


def test_answers_to_calls_never_made_count_as_malformed_frames() -> None:
    async def scenario() -> None:
        async with central(limits=ConnectionLimits(max_bad_frames=3)) as (url, conns), connect(url) as ws:
            for i in range(5):
                await ws.send(json.dumps([3, f"never-{i}", {}]))
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(2):
                    await ws.recv()
            assert ws.close_code == 1008
            assert (await first(conns)).stats.unknown_replies == 3

    run(scenario())


def test_each_answered_call_is_reported_with_its_wait_behind_earlier_calls_and_its_handling_time() -> None:
    """`on_handled`: a slow handler's own time is `handled`; a call the charger sent right behind it waited for it
    (`waited`), then was handled at once. A failing observer does not stop the answers."""
    reports: list[tuple[str, float, float]] = []

    async def slow(call: Call) -> Mapping[str, Any]:
        await asyncio.sleep(0.3)
        return {}

    async def quick(call: Call) -> Mapping[str, Any]:
        return {}

    def observe(action: str, waited: float, handled: float) -> None:
        reports.append((action, waited, handled))
        if action == "Quick":
            raise RuntimeError("an observer's bug")

    async def scenario() -> None:
        async with central({"Slow": slow, "Quick": quick}) as (url, conns), connect(url) as ws:
            await ws.send(json.dumps([2, "s1", "Slow", {}]))
            server = await first(conns)
            server.on_handled = observe
            await ws.send(json.dumps([2, "q1", "Quick", {}]))  # queued behind the slow one
            answers = [await recv_json(ws), await recv_json(ws)]
            await ws.send(json.dumps([2, "q2", "Quick", {}]))
            answers.append(await recv_json(ws))
            assert [a[1] for a in answers] == ["s1", "q1", "q2"]

    run(scenario())
    assert [r[0] for r in reports] == ["Slow", "Quick", "Quick"]
    (_, slow_waited, slow_handled), (_, queued_waited, queued_handled), (_, alone_waited, _) = reports
    assert slow_handled >= 0.29 and slow_waited < 0.1
    assert queued_waited >= 0.2 and queued_handled < 0.1
    assert alone_waited < 0.1
