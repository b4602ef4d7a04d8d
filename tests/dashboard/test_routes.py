"""The dashboard's HTTP side (controller/dashboard/routes.py) on a whole controller: the token and its
cookie, the pages' headers, the static files, the fleet snapshot and its server-sent events."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controller.runtime.api import TOKEN_COOKIE
from tests.integration.example_fleet import API_TOKEN, call, copy_example, running
from tests.integration.harness import run

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
COOKIE = {"Cookie": f"{TOKEN_COOKIE}={API_TOKEN}"}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("CHARGEOPS_MAP_TILES", "CHARGEOPS_MAP_ATTRIBUTION", "CHARGEOPS_PUBLIC_URL", "CHARGEOPS_OCPI_PUSH_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_token_in_the_url_becomes_an_http_only_cookie_that_opens_the_pages_and_read_routes_only(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
            def get(path: str, headers: dict[str, str] | None = None) -> Any:
                return call("GET", fx.api + path, headers=headers)

            login = await asyncio.to_thread(get, "/dashboard")
            assert login.status == 401 and "<form" in login.body and "API token" in login.body
            wrong = await asyncio.to_thread(get, "/dashboard?token=nope")
            assert wrong.status == 401 and "not valid" in wrong.body
            redirect = await asyncio.to_thread(get, f"/dashboard/stations/DLF-AC-0001?token={API_TOKEN}")
            assert redirect.status == 303 and redirect.header("Location") == "/dashboard/stations/DLF-AC-0001"
            cookie = redirect.header("Set-Cookie") or ""
            assert cookie.startswith(f"{TOKEN_COOKIE}={API_TOKEN}")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            page = await asyncio.to_thread(get, "/dashboard", COOKIE)
            assert page.status == 200 and (page.header("Content-Type") or "").startswith("text/html")
            csp = page.header("Content-Security-Policy") or ""
            assert "script-src 'self'" in csp and "img-src 'self' data:;" in csp  # no tile server configured
            assert page.header("Cache-Control") == "no-store" and page.header("X-Frame-Options") == "DENY"
            assert '"tiles": null' in page.body and API_TOKEN not in page.body
            station = await asyncio.to_thread(get, "/dashboard/stations/DLF-AC-0001", BEARER)
            assert station.status == 200 and '"identity": "DLF-AC-0001"' in station.body
            # the cookie opens the API's GET routes, never its POST ones (no cross-site action)
            assert (await asyncio.to_thread(get, "/api/v1/status", COOKIE)).status == 200
            assert (await asyncio.to_thread(get, "/api/v1/stations/DLF-AC-0001", COOKIE)).status == 200
            post = await asyncio.to_thread(call, "POST", fx.api + "/api/v1/rollout/resume", headers=COOKIE, body={})
            assert post.status == 401
            assert (await asyncio.to_thread(get, "/api/v1/fleet")).status == 401
            assert (await asyncio.to_thread(get, "/api/v1/events")).status == 401
            bye = await asyncio.to_thread(get, "/dashboard/logout", COOKIE)
            assert bye.status == 303 and "Max-Age=0" in (bye.header("Set-Cookie") or "")

    run(scenario(), timeout=30)


def test_static_files_and_the_bundled_leaflet_are_served_from_package_data_and_nothing_else(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
            def get(path: str) -> Any:
                return call("GET", fx.api + path)

            js = await asyncio.to_thread(get, "/dashboard/static/fleet.js")
            assert js.status == 200 and (js.header("Content-Type") or "").startswith("text/javascript")
            leaflet = await asyncio.to_thread(get, "/dashboard/static/leaflet/leaflet.js")
            assert leaflet.status == 200 and "Leaflet 1.9.4" in leaflet.body
            assert (await asyncio.to_thread(get, "/dashboard/static/leaflet/leaflet.css")).status == 200
            licence = await asyncio.to_thread(get, "/dashboard/static/leaflet/LICENSE")
            assert licence.status == 200 and "BSD 2-Clause" in licence.body
            assert (await asyncio.to_thread(get, "/dashboard/static/leaflet/images/layers.png")).status == 200
            for missing in ("/dashboard/static/nope.js", "/dashboard/static/index.html",
                            "/dashboard/static/..%2Fsnapshot.py", "/dashboard/static/leaflet/..%2F..%2Froutes.py"):
                assert (await asyncio.to_thread(get, missing)).status == 404, missing

    run(scenario(), timeout=30)


def test_a_tile_server_when_configured_is_allowed_by_the_page_and_handed_to_the_map(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("CHARGEOPS_MAP_TILES", "https://{s}.tiles.example.net/{z}/{x}/{y}.png")
    env.setenv("CHARGEOPS_MAP_ATTRIBUTION", "© Example <maps>")

    async def scenario() -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
            page = await asyncio.to_thread(call, "GET", fx.api + "/dashboard", headers=BEARER)
            assert "img-src 'self' data: https://*.tiles.example.net;" in (page.header("Content-Security-Policy") or "")
            assert '"tiles": "https://{s}.tiles.example.net/{z}/{x}/{y}.png"' in page.body
            assert "<maps>" not in page.body and "\\u003cmaps\\u003e" in page.body  # cannot close the script

    run(scenario(), timeout=30)


def read_events(url: str, until: Callable[[Any], bool], timeout: float) -> list[Any]:
    """The ``fleet`` events of `url` up to the first one that satisfies `until` (blocking; run in a thread)."""
    req = urllib.request.Request(url, headers=BEARER)
    out: list[Any] = []
    event = ""
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "fleet":
                out.append(json.loads(line[6:]))
                if until(out[-1]):
                    return out
    raise AssertionError(f"the stream ended after {len(out)} events")


def test_the_event_stream_sends_the_fleet_at_once_and_again_when_a_charger_faults(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    def entry(snap: Any) -> Any:
        return next(e for e in snap["stations"] if e["identity"] == "DLF-AC-0002")

    async def scenario() -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx, \
                fx.fleet("DLF-AC-0002") as fleet:
            cp = fleet["DLF-AC-0002"]
            (first,) = await asyncio.to_thread(read_events, fx.api + "/api/v1/events", lambda s: True, 10)
            assert len(first["stations"]) == len(fx.desired.stations)
            await asyncio.to_thread(read_events, fx.api + "/api/v1/events",
                                    lambda s: entry(s)["connectors"] != [], 10)
            reader = asyncio.create_task(asyncio.to_thread(
                read_events, fx.api + "/api/v1/events", lambda s: entry(s)["faulted"], 10))
            await asyncio.sleep(0.3)  # the stream has sent its first snapshot, without the fault
            cp.set_faulted(1)
            seen = await reader
            assert not entry(seen[0])["faulted"] and entry(seen[-1])["faulted"]
            assert any(c["id"] == 1 and c["status"] == "Faulted" for c in entry(seen[-1])["connectors"])

    run(scenario(), timeout=40)
