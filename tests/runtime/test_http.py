"""The controller's HTTP server, against a real listener on 127.0.0.1 port 0 and real sockets: urllib and
http.client for well-behaved clients, raw asyncio streams for malformed and slow ones."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import decimal
import enum
import http.client
import json
import logging
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controller.runtime.http import (
    EventStream,
    Headers,
    HttpError,
    HttpServer,
    Limits,
    Request,
    Response,
    Route,
    encode_event,
    json_response,
    require_token,
    text_response,
    to_json,
)

T = TypeVar("T")

FAST = Limits(header_timeout=0.3, body_timeout=0.3, keepalive_timeout=0.5, write_timeout=1.0, linger=0.2,
              sse_keepalive=0.1, max_body=1024, max_line=256, max_headers=10, max_head_bytes=1024,
              max_requests_per_connection=3, max_connections=4)
TOKENS = {"s3cret-token", "other-token"}


def run(coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """asyncio.run with an overall timeout and a check that the test left no task running."""

    async def main() -> T:
        async with asyncio.timeout(timeout):
            result = await coro
        await asyncio.sleep(0)
        leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert not leaked, f"tasks left running: {leaked}"
        return result

    return asyncio.run(main())


# ------------------------------------------------------------------------------------------- the app


class Health(enum.Enum):
    HEALTHY = "Healthy"


@dataclasses.dataclass(frozen=True)
class StationView:
    id: str
    health: Health
    price: decimal.Decimal


class App:
    """The routes under test, with what they observed."""

    def __init__(self) -> None:
        self.stream_closed = asyncio.Event()
        self.release_stream = asyncio.Event()

    def routes(self) -> list[Route | tuple[str, str, Any]]:
        return [
            Route("GET", "/stations/{station_id}", self.station),
            Route("GET", "/stations/export", self.export),
            ("POST", "/echo", self.echo),
            ("GET", "/private", self.private),
            ("GET", "/boom", self.boom),
            ("GET", "/events", self.events),
            ("DELETE", "/stations/{station_id}", self.station),
        ]

    async def station(self, req: Request) -> Response:
        return json_response({"station": StationView(req.params["station_id"], Health.HEALTHY,
                                                     decimal.Decimal("0.30")),
                              "query": dict(req.query), "path": req.path, "remote": req.remote,
                              "at": dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.UTC)})

    async def export(self, req: Request) -> Response:
        return text_response("export\n")

    async def echo(self, req: Request) -> Response:
        return json_response({"got": req.json()}, 201)

    async def private(self, req: Request) -> Response:
        return json_response({"token": require_token(req, TOKENS)})

    async def boom(self, req: Request) -> Response:
        raise RuntimeError("secret internal detail")

    async def events(self, req: Request) -> EventStream:
        async def source() -> AsyncIterator[tuple[str, Any]]:
            try:
                yield "status", {"station": "st-1", "health": "Healthy"}
                yield "status", {"station": "st-2", "at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
                await self.release_stream.wait()
                yield "", {"last": True}
                await asyncio.Event().wait()  # forever: only a disconnect or a stop ends the stream
            finally:
                self.stream_closed.set()

        return EventStream(source(), retry_ms=2000)


@contextlib.asynccontextmanager
async def serving(app: App | None = None, limits: Limits = FAST,
                  tls: ssl.SSLContext | None = None) -> AsyncIterator[HttpServer]:
    server = HttpServer((app or App()).routes(), host="127.0.0.1", port=0, tls=tls, limits=limits)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


# ---------------------------------------------------------------------------------------- clients


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
          context: ssl.SSLContext | None = None) -> Answer:
    """A blocking urllib request (run it in a thread); HTTP errors are answers too."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=3, context=context) as response:
            return Answer(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


async def get(server: HttpServer, path: str, **options: Any) -> Answer:
    return await asyncio.to_thread(fetch, server.url + path, **options)


async def read_answer(reader: asyncio.StreamReader, *, head_request: bool = False) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    body = b"" if head_request else await asyncio.wait_for(reader.readexactly(length), 2)
    return Answer(int(status_line.split()[1]), headers, body)


async def raw(server: HttpServer, data: bytes) -> tuple[Answer, bytes]:
    """Send ``data`` on a fresh connection; the answer and whatever follows it until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        answer = await read_answer(reader)
        rest = await asyncio.wait_for(reader.read(), 2)
        return answer, rest
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def error_of(answer: Answer) -> tuple[str, str]:
    error = answer.json()["error"]
    assert set(error) == {"code", "message"}
    return error["code"], error["message"]


# ------------------------------------------------------------------------------------------ routing


def test_a_route_gets_its_decoded_path_parameters_and_the_first_value_of_each_query_name() -> None:
    async def scenario() -> None:
        async with serving() as server:
            answer = await get(server, "/stations/CP%2001?limit=5&limit=9&empty=")
            assert answer.status == 200
            assert answer.headers["content-type"] == "application/json"
            assert answer.json() == {
                "station": {"id": "CP 01", "health": "Healthy", "price": "0.30"},
                "query": {"limit": "5", "empty": ""}, "path": "/stations/CP 01", "remote": "127.0.0.1",
                "at": "2024-03-31T01:30:00+00:00"}

    run(scenario())


def test_a_literal_segment_wins_over_a_parameter_and_a_trailing_slash_is_ignored() -> None:
    async def scenario() -> None:
        async with serving() as server:
            export = await get(server, "/stations/export/")
            assert (export.status, export.body) == (200, b"export\n")
            assert export.headers["content-type"] == "text/plain; charset=utf-8"
            assert (await get(server, "/stations/st-1/")).json()["station"]["id"] == "st-1"

    run(scenario())


def test_an_unknown_path_is_a_json_404_and_a_known_path_with_another_method_a_405_with_allow() -> None:
    async def scenario() -> None:
        async with serving() as server:
            missing = await get(server, "/nowhere")
            assert missing.status == 404
            assert error_of(missing)[0] == "not_found"
            assert (await get(server, "/stations")).status == 404
            wrong = await get(server, "/stations/st-1", method="PUT", body=b"{}")
            assert wrong.status == 405
            assert wrong.headers["allow"] == "DELETE, GET, HEAD"
            assert error_of(wrong)[0] == "method_not_allowed"

    run(scenario())


def test_a_json_body_is_parsed_and_an_invalid_one_is_a_400() -> None:
    async def scenario() -> None:
        async with serving() as server:
            ok = await get(server, "/echo", method="POST", body=b'{"idTag": "AB12", "minutes": 30}',
                           headers={"Content-Type": "application/json"})
            assert (ok.status, ok.json()) == (201, {"got": {"idTag": "AB12", "minutes": 30}})
            for bad in (b"{not json", b"", b'{"a": NaN}', b"\xff\xfe\xfa"):
                answer = await get(server, "/echo", method="POST", body=bad)
                assert answer.status == 400, bad
                assert error_of(answer)[0] == "bad_json"

    run(scenario())


# --------------------------------------------------------------------------------------------- auth


def test_a_token_in_the_authorization_header_or_the_query_is_accepted() -> None:
    async def scenario() -> None:
        async with serving() as server:
            by_header = await get(server, "/private", headers={"Authorization": "Bearer s3cret-token"})
            assert (by_header.status, by_header.json()) == (200, {"token": "s3cret-token"})
            by_query = await get(server, "/private?token=other-token")
            assert (by_query.status, by_query.json()) == (200, {"token": "other-token"})

    run(scenario())


def test_a_missing_or_wrong_token_is_a_401_with_a_bearer_challenge() -> None:
    async def scenario() -> None:
        async with serving() as server:
            missing = await get(server, "/private")
            assert missing.status == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="chargeops"'
            assert error_of(missing)[0] == "unauthorized"
            for headers, path in (({"Authorization": "Bearer s3cret-tokeN"}, "/private"),
                                  ({"Authorization": "Basic czNjcmV0LXRva2Vu"}, "/private?token=nope"),
                                  ({}, "/private?token=")):
                answer = await get(server, path, headers=headers)
                assert answer.status == 401, (headers, path)
                assert answer.headers["www-authenticate"].startswith("Bearer")

    run(scenario())


def test_no_configured_token_means_no_access() -> None:
    req = Request("GET", "/private", {"token": ""}, Headers([("Authorization", "Bearer ")]))
    with pytest.raises(HttpError) as raised:
        require_token(req, set())
    assert raised.value.status == 401
    with pytest.raises(HttpError):
        require_token(Request("GET", "/", {"token": "x"}), {"", "y"})


# ------------------------------------------------------------------------------------ body handling


def test_a_body_over_the_limit_is_a_413_whether_announced_sent_or_chunked() -> None:
    async def scenario() -> None:
        async with serving() as server:
            announced, rest = await raw(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n")
            assert announced.status == 413 and error_of(announced)[0] == "body_too_large"
            assert announced.headers["connection"] == "close" and rest == b""
            sent = await get(server, "/echo", method="POST", body=b"x" * 64 * 1024)
            assert sent.status == 413
            chunked, _ = await raw(server, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           b"200\r\n" + b"x" * 512 + b"\r\n201\r\n" + b"x" * 513 + b"\r\n0\r\n\r\n")
            assert chunked.status == 413

    run(scenario())


def test_a_chunked_body_is_decoded_and_expect_100_continue_is_answered() -> None:
    async def scenario() -> None:
        async with serving() as server:
            answer, _ = await raw(server, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                          b"Connection: close\r\n\r\n"
                                          b"4;ext=1\r\n{\"a\"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n")
            assert (answer.status, answer.json()) == (201, {"got": {"a": 1}})

            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2) == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"[]")
            assert (await read_answer(reader)).json() == {"got": []}
            writer.close()
            await writer.wait_closed()

            other, _ = await raw(server, b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
            assert other.status == 501

    run(scenario())


# ------------------------------------------------------------------------------------ robustness


def test_a_slow_loris_gets_a_408_and_is_closed_while_another_client_is_served() -> None:
    async def scenario() -> None:
        async with serving() as server:
            loop = asyncio.get_running_loop()
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            started = loop.time()
            writer.write(b"GET /stations/st")  # half a request line, then nothing
            assert (await get(server, "/stations/st-2")).status == 200  # served meanwhile
            answer = await read_answer(reader)
            waited = loop.time() - started
            assert answer.status == 408 and error_of(answer)[0] == "request_timeout"
            assert answer.headers["connection"] == "close"
            assert await asyncio.wait_for(reader.read(), 2) == b""
            assert 0.25 < waited < 1.5
            writer.close()
            await writer.wait_closed()

    run(scenario())


def test_a_slow_body_gets_a_408() -> None:
    async def scenario() -> None:
        async with serving() as server:
            answer, _ = await raw(server, b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
            assert answer.status == 408

    run(scenario())


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /stations/st-1 HTTP/1.1 extra\r\n\r\n",
    b"GET stations/st-1 HTTP/1.1\r\n\r\n",
    b"GET /stations/st-1 HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET /stations/st-1 HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"GET /stations/st-1 HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /stations/%ff HTTP/1.1\r\n\r\n",
], ids=["garbage", "extra-token", "relative-target", "no-colon", "space-in-name", "obs-fold",
        "length-not-a-number", "negative-length", "conflicting-lengths", "length-and-chunked", "bad-chunk",
        "bad-percent-encoding"])
def test_a_malformed_request_is_a_400_and_the_connection_is_closed(request_bytes: bytes) -> None:
    async def scenario() -> None:
        async with serving() as server:
            answer, rest = await raw(server, request_bytes)
            assert answer.status == 400
            assert answer.headers["connection"] == "close" and rest == b""
            assert "code" in answer.json()["error"]
            assert (await get(server, "/stations/st-1")).status == 200  # others unaffected

    run(scenario())


def test_an_oversized_request_line_is_a_414_and_oversized_headers_a_431() -> None:
    async def scenario() -> None:
        async with serving() as server:
            long_line, _ = await raw(server, b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n")
            assert long_line.status == 414
            long_header, _ = await raw(server, b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 300 + b"\r\n\r\n")
            assert long_header.status == 431
            many = b"".join(b"X-%d: v\r\n" % i for i in range(11))
            too_many, _ = await raw(server, b"GET / HTTP/1.1\r\n" + many + b"\r\n")
            assert too_many.status == 431
            unsupported, _ = await raw(server, b"GET / HTTP/2.0\r\n\r\n")
            assert unsupported.status == 505

    run(scenario())


def test_connections_beyond_the_limit_get_a_503() -> None:
    async def scenario() -> None:
        async with serving(limits=dataclasses.replace(FAST, max_connections=1)) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /stations/st-1 HTTP/1.1\r\n\r\n")
            assert (await read_answer(reader)).status == 200  # this connection stays open
            refused, _ = await raw(server, b"GET /stations/st-1 HTTP/1.1\r\n\r\n")
            assert refused.status == 503 and refused.headers["retry-after"] == "1"
            writer.close()
            await writer.wait_closed()

    run(scenario())


def test_a_handler_exception_is_a_500_without_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving() as server:
            answer = await get(server, "/boom")
            assert answer.status == 500
            assert error_of(answer) == ("internal_error", "internal server error")
            assert b"secret" not in answer.body and b"Traceback" not in answer.body
            assert (await get(server, "/stations/st-1")).status == 200

    with caplog.at_level(logging.ERROR, logger="controller.runtime.http"):
        run(scenario())
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


# ------------------------------------------------------------------------------------ connections


def test_a_keep_alive_connection_serves_several_requests_up_to_the_limit() -> None:
    async def scenario() -> None:
        async with serving() as server:
            def two_requests() -> tuple[int, int, bool, str | None]:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
                try:
                    conn.request("GET", "/stations/a")
                    first = conn.getresponse()
                    first.read()
                    sock = conn.sock
                    conn.request("GET", "/stations/b")
                    second = conn.getresponse()
                    second.read()
                    return first.status, second.status, conn.sock is sock, second.getheader("Connection")
                finally:
                    conn.close()

            assert await asyncio.to_thread(two_requests) == (200, 200, True, None)

            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /stations/a HTTP/1.1\r\n\r\n" * 3)  # pipelined; the limit is 3 per connection
            answers = [await read_answer(reader) for _ in range(3)]
            assert [a.status for a in answers] == [200, 200, 200]
            assert [a.headers.get("connection") for a in answers] == [None, None, "close"]
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            await writer.wait_closed()

    run(scenario())


def test_connection_close_and_http_1_0_close_after_the_answer_and_1_0_may_ask_for_keep_alive() -> None:
    async def scenario() -> None:
        async with serving() as server:
            closed, rest = await raw(server, b"GET /stations/a HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert (closed.status, closed.headers["connection"], rest) == (200, "close", b"")
            old, rest = await raw(server, b"GET /stations/a HTTP/1.0\r\n\r\n")
            assert (old.status, old.headers["connection"], rest) == (200, "close", b"")

            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /stations/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert (await read_answer(reader)).headers["connection"] == "keep-alive"
            # then idle past keepalive_timeout: closed silently, no 408
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            await writer.wait_closed()

    run(scenario())


def test_an_empty_line_before_the_request_line_is_ignored() -> None:
    async def scenario() -> None:
        async with serving() as server:
            for prefix in (b"\r\n", b"\n"):
                answer, _ = await raw(server, prefix + b"GET /stations/a HTTP/1.1\r\nConnection: close\r\n\r\n")
                assert answer.status == 200, prefix

    run(scenario())


def test_the_access_log_is_debug_only_and_hides_query_tokens(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with serving() as server:
            assert (await get(server, "/private?token=s3cret-token&x=1")).status == 200

    with caplog.at_level(logging.DEBUG, logger="controller.runtime.http.access"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "controller.runtime.http.access"]
    assert any("/private?token=***&x=1" in line and " 200 " in line for line in lines), lines
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name.endswith(".access"))
    assert "s3cret-token" not in caplog.text


def test_head_answers_the_get_route_headers_without_a_body() -> None:
    async def scenario() -> None:
        async with serving() as server:
            full = await get(server, "/stations/st-1")
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"HEAD /stations/st-1 HTTP/1.1\r\n\r\nGET /stations/export HTTP/1.1\r\n\r\n")
            head = await read_answer(reader, head_request=True)
            assert head.status == 200 and head.headers["content-length"] == str(len(full.body))
            assert (await read_answer(reader)).body == b"export\n"  # the next answer follows directly
            writer.close()
            await writer.wait_closed()

    run(scenario())


def test_stop_closes_idle_connections_at_once() -> None:
    async def scenario() -> None:
        server = HttpServer(App().routes(), limits=dataclasses.replace(FAST, keepalive_timeout=30))
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /stations/a HTTP/1.1\r\n\r\n")
        await read_answer(reader)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop()
        assert loop.time() - started < 1.0
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await writer.wait_closed()

    run(scenario())


# ------------------------------------------------------------------------------- server-sent events


async def read_events(reader: asyncio.StreamReader, count: int) -> list[str]:
    blocks: list[str] = []
    while len(blocks) < count:
        blocks.append((await asyncio.wait_for(reader.readuntil(b"\n\n"), 2)).decode())
    return blocks


def test_an_event_stream_sends_events_and_keep_alives_and_ends_when_the_server_stops() -> None:
    async def scenario() -> None:
        app = App()
        server = HttpServer(app.routes(), limits=FAST)
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /events?token=x HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n")
        head = await read_answer(reader, head_request=True)
        assert head.status == 200
        assert head.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert head.headers["cache-control"] == "no-cache" and "content-length" not in head.headers
        blocks = await read_events(reader, 3)
        assert blocks == ["retry: 2000\n\n",
                          'event: status\ndata: {"station":"st-1","health":"Healthy"}\n\n',
                          'event: status\ndata: {"station":"st-2","at":"2024-01-01T00:00:00+00:00"}\n\n']
        assert await read_events(reader, 1) == [": keep-alive\n\n"]  # nothing to say for 0.1 s
        app.release_stream.set()
        while (block := (await read_events(reader, 1))[0]).startswith(":"):
            pass
        assert block == 'data: {"last":true}\n\n'
        await server.stop()
        assert app.stream_closed.is_set()
        rest = await asyncio.wait_for(reader.read(), 2)
        assert set(rest.split(b"\n\n")) <= {b": keep-alive", b""}
        writer.close()
        await writer.wait_closed()

    run(scenario())


def test_an_event_stream_is_closed_when_the_client_disconnects() -> None:
    async def scenario() -> None:
        app = App()
        async with serving(app) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /events HTTP/1.1\r\n\r\n")
            await read_answer(reader, head_request=True)
            await read_events(reader, 2)
            writer.close()
            await writer.wait_closed()
            await asyncio.wait_for(app.stream_closed.wait(), 2)
            assert (await get(server, "/stations/st-1")).status == 200

    run(scenario())


def test_event_encoding_is_one_json_data_line() -> None:
    assert encode_event("status", {"text": "two\nlines"}) == b'event: status\ndata: {"text":"two\\nlines"}\n\n'
    with pytest.raises(ValueError):
        encode_event("bad\nname", {})


# ------------------------------------------------------------------------------------------ values


def test_json_encodes_datetimes_decimals_dataclasses_enums_and_sets() -> None:
    value = {"at": dt.date(2024, 1, 2), "amount": decimal.Decimal("12.340"), "tags": frozenset({"b", "a"}),
             "station": StationView("st", Health.HEALTHY, decimal.Decimal("1")), "path": Path("/x"),
             "took": dt.timedelta(seconds=1.5)}
    assert json.loads(to_json(value)) == {
        "at": "2024-01-02", "amount": "12.340", "tags": ["a", "b"],
        "station": {"id": "st", "health": "Healthy", "price": "1"}, "path": "/x", "took": 1.5}
    with pytest.raises(TypeError):
        to_json(object())
    with pytest.raises(ValueError):
        to_json(float("nan"))


def test_headers_are_case_insensitive_and_repeated_fields_join() -> None:
    headers = Headers([("Content-Type", "a"), ("X-Many", "1"), ("x-many", "2")])
    assert headers["content-type"] == headers["CONTENT-TYPE"] == "a"
    assert "X-MANY" in headers and headers["x-many"] == "1, 2" and headers.get_all("X-Many") == ["1", "2"]
    assert headers.get("missing") is None and sorted(headers) == ["content-type", "x-many"]


async def _noop(req: Request) -> Response:
    return Response()


@pytest.mark.parametrize("routes", [
    [("GET", "/a/{id}", _noop), ("GET", "/a/{other}", _noop)],
    [("get", "/a", _noop)],
    [("GET", "a", _noop)],
    [("GET", "/a/x{id}", _noop)],
])
def test_ambiguous_or_invalid_routes_are_refused(routes: Sequence[tuple[str, str, Any]]) -> None:
    with pytest.raises(ValueError):
        HttpServer(routes)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Limits(max_body=0)


# --------------------------------------------------------------------------------------------- TLS


def test_the_server_speaks_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))

    async def scenario() -> None:
        async with serving(tls=server_ctx) as server:
            assert server.url.startswith("https://")
            answer = await get(server, "/stations/st-1", context=client_ctx)
            assert answer.status == 200
            slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=client_ctx)
            slow_writer.write(b"GET /sta")
            assert (await read_answer(slow_reader)).status == 408
            slow_writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await slow_writer.wait_closed()

    run(scenario())
