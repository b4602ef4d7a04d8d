"""Hostile or broken clients are refused without effect on others.

At the OCPP handshake: unknown identities (404), wrong keys (401, each further failure slowed down), a
station presenting another station's identity or key (401), oversized frames (closed with 1009),
slow-loris handshakes (dropped after the server's open timeout). On the controller's HTTP API: malformed
requests (bad request line, bad Content-Length, garbage bytes, huge headers, bad query values) on every
route, each refused with a 4xx, without a 500 and without the request taking effect.

Throughout, a well-behaved charger (the bystander) keeps getting answers quickly on its one connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from controller.hw.server import ServerSettings
from controller.hw.simulator import SimulatedCharger
from controller.runtime.controller import ApiSettings, Controller, ControllerSettings
from controller.runtime.http import Route
from tests.config.ownerrepo import dump, owner, profile, station
from tests.integration.harness import Harness, csms, desired_of, run, wait_until

from .kit import FAST_RECONCILE

K1 = "00112233445566778899aabbccddeeff"
K2 = "ffeeddccbbaa99887766554433221100"
ENV = {"K1": K1, "K2": K2}
SETTINGS = ServerSettings(port=0, call_timeout=1.0, open_timeout=3.0)
LORIS = dataclasses.replace(SETTINGS, open_timeout=1.0)  # slow-loris handshakes dropped after a second
TOKEN = "security-token"


def _repo():  # type: ignore[no-untyped-def]
    return desired_of(owner(), station("st-1", securityProfile=1, credentials={"authorizationKey": {"env": "K1"}}),
                      station("st-2", securityProfile=1, credentials={"authorizationKey": {"env": "K2"}}),
                      station("st-3"), station("st-4"))


class Bystander:
    """A well-behaved charger that keeps calling (Heartbeat, Authorize) and measures every answer."""

    def __init__(self, cp: SimulatedCharger) -> None:
        self.cp = cp
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        for i in range(10_000):
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            if i % 2:
                reply = await self.cp.send("Authorize", {"idTag": "NOBODY-0001"})
                assert "idTagInfo" in reply
            else:
                assert "currentTime" in await self.cp.send("Heartbeat", {})
            self.latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(0.03)

    async def check(self, bound: float = 0.5) -> None:
        """Stop probing; every answer came within `bound` seconds, on the one connection it opened."""
        await wait_until(lambda: len(self.latencies) >= 5, 5, "the bystander heard")
        self._stop.set()
        if self._task is not None:
            await self._task
        assert max(self.latencies) < bound, f"slowest answer {max(self.latencies):.3f}s"
        assert self.cp.connect_count == 1 and self.cp.online

    @classmethod
    @contextlib.asynccontextmanager
    async def at(cls, url: str, identity: str = "ST-3") -> AsyncIterator[Bystander]:
        async with SimulatedCharger(identity, url, time_scale=0.01, reconnect_delay=0.05, call_timeout=2.0) as cp:
            await cp.wait_online(10)
            me = cls(cp)
            me._task = asyncio.create_task(me._probe())
            try:
                yield me
            finally:
                me._stop.set()
                await asyncio.gather(me._task, return_exceptions=True)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def handshake(h: Harness, path: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a websocket handshake at `path` (101 when it was accepted; closed at once)."""
    try:
        async with connect(f"ws://127.0.0.1:{h.central.port}{path}", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                           additional_headers=headers or {}, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


# ----------------------------------------------------------------------------------- OCPP handshake


def test_unknown_identities_wrong_keys_and_borrowed_identities_are_refused_without_effect_on_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="chargeops.hw.auth")

    async def scenario() -> None:
        async with csms(tmp_path, _repo(), env=ENV, settings=SETTINGS) as h, Bystander.at(h.url) as bystander, \
                h.charger("ST-1", K1) as st1:
            await st1.wait_online(5)
            st1_conn = h.central.connections["ST-1"].conn
            # never-declared identities: 404, and nothing is recorded about them
            for path in ("/ocpp/INTRUDER", "/ocpp/st-1x", "/ocpp/" + "A" * 2000, "/ocpp/%FF%FE", "/", "/ocpp/%00"):
                assert await handshake(h, path) == 404, path
            assert {r.identity.upper() for r in await h.store.list_stations()} <= {"ST-1", "ST-2", "ST-3", "ST-4"}

            # wrong keys: 401, each further failure from that host answered later than the one before
            took = []
            for attempt in range(4):
                t0 = time.perf_counter()
                assert await handshake(h, "/ocpp/ST-2", _basic("ST-2", f"wrong-password-{attempt:04}")) == 401
                took.append(time.perf_counter() - t0)
            assert took[0] < 0.2 and took[1] >= 0.2 and took[3] >= 0.9, took
            assert len([r for r in caplog.records if "ST-2" in r.getMessage()]) == 1  # one warning per burst

            # a station presenting another station's key, or another station's identity with its own key
            assert await handshake(h, "/ocpp/ST-1", _basic("ST-1", K2)) == 401
            assert await handshake(h, "/ocpp/ST-1", _basic("ST-2", K2)) == 401
            assert await handshake(h, "/ocpp/ST-1") == 401  # no credentials once profile 1 is confirmed
            # ...without replacing the real ST-1's connection (the newest wins only once authenticated)
            assert st1.online and st1.connect_count == 1
            assert h.central.connections["ST-1"].conn is st1_conn and not st1_conn.closed

            # the real ST-2 is not slowed down by what was tried in its name
            t0 = time.perf_counter()
            async with h.charger("ST-2", K2) as st2:
                await st2.wait_online(5)
            assert time.perf_counter() - t0 < 1.0
            await bystander.check()

    run(scenario(), timeout=30)


def test_an_oversized_frame_closes_only_that_connection_with_1009(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo(), env=ENV, settings=SETTINGS) as h, Bystander.at(h.url) as bystander, \
                h.charger("ST-4") as cp:
            await cp.wait_online(5)
            limit = SETTINGS.limits.max_frame_bytes
            huge = json.dumps([2, "big-1", "DataTransfer", {"vendorId": "x", "data": "y" * (limit + 1024)}])
            await cp.send_raw(huge)
            await wait_until(lambda: cp.connect_count >= 2 and cp.online, 5, "closed and reconnected")
            async with connect(f"{h.url}/ST-4", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
                await ws.send(huge)
                with pytest.raises(ConnectionClosed) as closed:
                    async with asyncio.timeout(5):
                        await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
            # not banned: a frame just under the limit is answered as usual
            await wait_until(lambda: cp.online, 5, "reconnected")
            fits = {"vendorId": "x", "data": "y" * (limit - 200)}
            assert (await cp.send("DataTransfer", fits))["status"] == "UnknownVendorId"
            await bystander.check()

    run(scenario(), timeout=30)


def test_slow_loris_handshakes_are_dropped_after_the_open_timeout_while_chargers_connect(tmp_path: Path) -> None:
    partial = [b"", b"GET /ocpp/ST", b"GET /ocpp/ST-4 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"]

    async def loris(port: int, opening: bytes) -> float:
        t0 = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(opening)
            await writer.drain()
            async with asyncio.timeout(LORIS.open_timeout + 3):
                while await reader.read(4096):  # whatever it says, it must hang up
                    pass
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return time.perf_counter() - t0

    async def scenario() -> None:
        async with csms(tmp_path, _repo(), env=ENV, settings=LORIS) as h, Bystander.at(h.url) as bystander:
            attack = [asyncio.create_task(loris(h.central.port, partial[i % len(partial)])) for i in range(60)]
            await asyncio.sleep(0.3)
            t0 = time.perf_counter()  # meanwhile a charger connects and boots as usual
            async with h.charger("ST-4") as cp:
                await cp.wait_online(5)
            assert time.perf_counter() - t0 < 1.0
            held = await asyncio.gather(*attack)
            assert min(held) >= LORIS.open_timeout * 0.8, min(held)
            assert max(held) < LORIS.open_timeout + 2.5, max(held)
            await bystander.check()

    run(scenario(), timeout=30)


# ------------------------------------------------------------------------------------------ HTTP API

BAD_STATUSES = {400, 408, 411, 413, 414, 417, 431, 501, 505}


def _malformed(method: str, path: str) -> dict[str, bytes]:
    auth = f"Authorization: Bearer {TOKEN}\r\nHost: 127.0.0.1\r\n"
    rnd = random.Random(f"{method} {path}")
    return {
        "no version": f"{method} {path}\r\n\r\n".encode(),
        "HTTP/2": f"{method} {path} HTTP/2.0\r\n{auth}\r\n".encode(),
        "tab in request line": f"{method}\t{path} HTTP/1.1\r\n{auth}\r\n".encode(),
        "relative target": f"{method} {path.lstrip('/')} HTTP/1.1\r\n{auth}\r\n".encode(),
        "negative length": f"{method} {path} HTTP/1.1\r\n{auth}Content-Length: -5\r\n\r\n{{}}".encode(),
        "text length": f"{method} {path} HTTP/1.1\r\n{auth}Content-Length: 2x\r\n\r\n{{}}".encode(),
        "two lengths": f"{method} {path} HTTP/1.1\r\n{auth}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}".encode(),
        "length and chunked": (f"{method} {path} HTTP/1.1\r\n{auth}Content-Length: 2\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode(),
        "huge length": f"{method} {path} HTTP/1.1\r\n{auth}Content-Length: 99999999999\r\n\r\n".encode(),
        "bad chunk": f"{method} {path} HTTP/1.1\r\n{auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
                     .encode(),
        "garbage": rnd.randbytes(700).replace(b"\n", b"\x00") + b"\r\n\r\n",
        "tls hello": bytes.fromhex("160301020001000200ff0303") + rnd.randbytes(64) + b"\r\n\r\n",
        "header without colon": f"{method} {path} HTTP/1.1\r\n{auth}NoColonHere\r\n\r\n".encode(),
        "huge header": f"{method} {path} HTTP/1.1\r\n{auth}X-Big: {'a' * 20_000}\r\n\r\n".encode(),
        "many headers": (f"{method} {path} HTTP/1.1\r\n{auth}"
                         + "".join(f"X-H{i}: v\r\n" for i in range(150)) + "\r\n").encode(),
        "huge request line": f"{method} {path}?{'q' * 20_000} HTTP/1.1\r\n{auth}\r\n".encode(),
    }


async def raw_request(port: int, data: bytes, *, head_only: bool = False) -> tuple[int | None, bytes]:
    """Send raw bytes, read until the server hangs up (or, with `head_only`, until the answer's head is in:
    an event stream never ends); (status, body) of its answer (None if none)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError, OSError):
            await writer.drain()
        with contextlib.suppress(ConnectionError, OSError):
            async with asyncio.timeout(5):
                while chunk := await reader.read(65536):
                    received += chunk
                    if head_only and b"\r\n\r\n" in received:
                        break
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", received)
    return (int(match.group(1)) if match else None), received.partition(b"\r\n\r\n")[2]


async def timed_get(port: int, path: str) -> tuple[int | None, float]:
    t0 = time.perf_counter()
    status, _ = await raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                                        "Connection: close\r\n\r\n".encode())
    return status, time.perf_counter() - t0


def _routes(ctl: Controller) -> list[Route]:
    """Every route the controller's API serves, its features' included (read from its router)."""
    return [route for _, route in ctl.api._router._routes]


def test_malformed_http_on_every_endpoint_is_refused_without_effect_on_others(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "owner.yaml").write_text(dump(owner(rollout={"waves": [100]})))
    (repo / "profiles.yaml").write_text(dump(profile("all", {"ocppConfiguration": {"HeartbeatInterval": 120}},
                                                     selector={"labels": {"x": "y"}})))
    (repo / "stations.yaml").write_text(dump(station("st-1", labels={"x": "y"}), station("st-3")))
    caplog.set_level(logging.ERROR)

    async def scenario() -> None:
        ctl = Controller(ControllerSettings(
            repo=repo, db_path=tmp_path / "chargeops.db", server=SETTINGS, reconcile=FAST_RECONCILE,
            api=ApiSettings(port=0, tokens=(TOKEN,), webhook_secret="hook-secret")))
        await ctl.start()
        try:
            assert ctl.reconciler is not None and ctl.store is not None
            async with Bystander.at(f"ws://127.0.0.1:{ctl.port}/ocpp") as bystander:
                await wait_until(lambda: ctl.reconciler is not None and ctl.reconciler.status["ST-3"].sync.value
                                 == "Synced", 10, "the bystander synced")
                state_before = await ctl.store.get_state("")
                audit_before = len(await ctl.store.list_audit(limit=5000))
                routes = _routes(ctl)
                assert len(routes) >= 11
                answers: dict[str, set[int | None]] = {}
                slowest = 0.0
                for route in routes:
                    path = re.sub(r"\{[^}]+\}", "ST-1", route.pattern)
                    cases = _malformed(route.method, path)
                    if route.method == "GET":
                        cases["bad query value"] = (f"GET {path}?limit=abc&since=%ZZ&station=ST-1 HTTP/1.1\r\n"
                                                    f"Host: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                                                    "Connection: close\r\n\r\n").encode()
                    results = await asyncio.gather(*(
                        raw_request(ctl.api.port, data, head_only=case == "bad query value")
                        for case, data in cases.items()))
                    for (case, _), (status, body) in zip(cases.items(), results):
                        answers.setdefault(case, set()).add(status)
                        where = f"{route.method} {route.pattern}: {case}"
                        if case == "bad query value":  # parsed fine; the value must be refused or ignored
                            assert status is not None and status < 500, (where, status, body[:200])
                            continue
                        assert status in BAD_STATUSES, (where, status, body[:200])
                        assert json.loads(body)["error"]["code"], where
                    status, took = await timed_get(ctl.api.port, "/api/v1/status")  # the API keeps answering
                    assert status == 200
                    slowest = max(slowest, took)
                assert slowest < 1.0, slowest
                for query in ("limit=abc", "limit=-1", "limit=0", "limit=%C2%B2"):  # a 400, never a 500 or "no limit"
                    status, _ = await timed_get(ctl.api.port, f"/api/v1/audit?{query}")
                    assert status == 400, (query, status)
                # the OCPP port (a websocket handshake is HTTP too) refuses the same without falling over
                for case, data in _malformed("GET", "/ocpp/ST-1").items():
                    status, _ = await raw_request(ctl.port, data)
                    assert status is None or 400 <= status < 500, (case, status)
                # nothing took effect: no suspension, no resumed rollout, no confirmation, no audit entry
                assert ctl.reconciler.suspended == set()
                assert await ctl.store.get_state("") == state_before
                assert len(await ctl.store.list_audit(limit=5000)) == audit_before
                assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-3000:]
                await bystander.check()
                print(f"\n{len(routes)} routes x {len(answers)} malformations refused; answers: "
                      f"{ {case: sorted(s for s in statuses if s) for case, statuses in answers.items()} }")
        finally:
            await ctl.stop()

    run(scenario(), timeout=60)
