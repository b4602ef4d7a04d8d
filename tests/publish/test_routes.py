"""Map publication over real HTTP (controller/publish/routes.py, service.py, client.py): a whole controller on
the town-curbside example, a fake roaming partner on localhost port 0 built with the controller's own
HttpServer, and simulated chargers. Every OCPI answer is checked against schemas/ocpi."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from controller.publish import ocpi_credentials as cred
from controller.publish.service import Publisher, PublishSettings
from controller.runtime.http import HttpServer, Request, Response, Route, json_response
from tests.integration.example_fleet import Answer, call, copy_example, running
from tests.integration.harness import run, wait_until

from .kit import assert_valid

TOKEN_A = "registration-token-a"
PARTNER_TOKEN = "partner-token-b"
PUBLIC = {"DLF-AC-0001", "DLF-AC-0002", "DLF-AC-0003", "DLF-AC-0101", "DLF-AC-0102", "DLF-DC-0001", "DLF-DC-0002"}
LOCATIONS = ["depot-vulcanusweg-private", "markt", "oude-delft", "phoenixstraat", "pr-kruithuisweg",
             "tanthof-papsouwselaan", "voorhof-roland-holstlaan"]
TS = "2026-01-05T08:00:00Z"


def ok(data: Any = None) -> Response:
    body: dict[str, Any] = {"status_code": 1000, "timestamp": TS}
    if data is not None:
        body["data"] = data
    return json_response(body)


@dataclasses.dataclass
class Partner:
    """A fake eMSP: versions + details (with a Locations RECEIVER) and a receiver that records what it gets."""

    server: HttpServer
    received: list[tuple[str, str, dict[str, str], Any]]  # method, path, headers, body

    @property
    def url(self) -> str:
        return self.server.url

    def pushes(self, method: str | None = None) -> list[tuple[str, str, dict[str, str], Any]]:
        return [r for r in self.received if r[1].startswith("/ocpi/2.2.1/locations/") and
                (method is None or r[0] == method)]


@asynccontextmanager
async def partner() -> AsyncIterator[Partner]:
    received: list[tuple[str, str, dict[str, str], Any]] = []
    box: list[HttpServer] = []

    def record(req: Request) -> None:
        body = json.loads(req.body) if req.body else None
        received.append((req.method, req.path, {k: req.headers[k] for k in req.headers}, body))

    async def versions(req: Request) -> Response:
        record(req)
        return ok([{"version": "2.1.1", "url": f"{box[0].url}/ocpi/2.1.1"},
                   {"version": "2.2.1", "url": f"{box[0].url}/ocpi/2.2.1"}])

    async def details(req: Request) -> Response:
        record(req)
        base = f"{box[0].url}/ocpi/2.2.1"
        return ok({"version": "2.2.1", "endpoints": [
            {"identifier": "credentials", "role": "SENDER", "url": f"{base}/credentials"},
            {"identifier": "locations", "role": "RECEIVER", "url": f"{base}/locations"}]})

    async def receive(req: Request) -> Response:
        record(req)
        return ok()

    loc = "/ocpi/2.2.1/locations/{cc}/{party}/{location}"
    server = HttpServer([Route("GET", "/ocpi/versions", versions), Route("GET", "/ocpi/2.2.1", details),
                         Route("PUT", loc, receive), Route("PUT", loc + "/{evse}", receive),
                         Route("PATCH", loc + "/{evse}", receive)])
    box.append(server)
    async with server:
        yield Partner(server, received)


def token(value: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(value.encode()).decode()}


async def get(url: str, tok: str | None = None, raw: bool = False) -> Answer:
    headers = ({"Authorization": f"Token {tok}"} if raw else token(tok)) if tok else {}
    return await asyncio.to_thread(call, "GET", url, headers=headers)


def envelope_ok(answer: Answer) -> Any:
    assert answer.status == 200, answer.body
    assert_valid("response", answer.body)
    assert answer.body["status_code"] == 1000, answer.body
    return answer.body.get("data")


def assert_location_valid(loc: dict[str, Any]) -> None:
    assert_valid("location", loc)
    for evse in loc["evses"]:
        assert_valid("evse", evse)
        for connector in evse["connectors"]:
            assert_valid("connector", connector)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("CHARGEOPS_OCPI_TOKEN_A", TOKEN_A)
    monkeypatch.setenv("CHARGEOPS_PUBLISH_INTERVAL", "0.1")
    monkeypatch.setenv("CHARGEOPS_OCPI_PUSH_TIMEOUT", "3")
    for name in ("CHARGEOPS_PUBLIC_URL", "CHARGEOPS_OCPI_PUSH_URL", "CHARGEOPS_OCPI_PUSH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def hide(repo: Path, identity: str) -> None:
    """The owner hides one station (its `visibility: public` becomes hidden)."""
    for path in sorted((repo / "stations").glob("*.yaml")):
        docs = path.read_text().split("\n---\n")
        for i, doc in enumerate(docs):
            if f"identity: {identity}\n" in doc:
                docs[i] = doc.replace("visibility: public", "visibility: hidden")
                path.write_text("\n---\n".join(docs))
                return
    raise AssertionError(f"no station {identity}")


def test_the_public_geojson_needs_no_token_and_holds_only_public_activated_stations(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
            answer = await asyncio.to_thread(call, "GET", f"{fx.api}/map/stations.geojson")
            assert answer.status == 200 and answer.header("Content-Type") == "application/geo+json"
            assert answer.header("Access-Control-Allow-Origin") == "*"
            body = json.loads(answer.body) if isinstance(answer.body, str) else answer.body
            assert body["type"] == "FeatureCollection"
            assert {f["id"] for f in body["features"]} == PUBLIC
            text = json.dumps(body)
            assert "DLF-DEPOT" not in text and "DLF-DC-0003" not in text  # private and hidden
            assert {f["properties"]["status"] for f in body["features"]} == {"UNKNOWN"}  # none connected yet
            async with fx.fleet("DLF-AC-0002") as fleet:
                cp = fleet["DLF-AC-0002"]
                await cp.wait_online(10)

                async def oude_delft_is(expected: str) -> bool:
                    a = await asyncio.to_thread(call, "GET", f"{fx.api}/map/stations.geojson")
                    b = json.loads(a.body) if isinstance(a.body, str) else a.body
                    return any(f["id"] == "DLF-AC-0002" and f["properties"]["status"] == expected
                               for f in b["features"])

                await wait_until(lambda: oude_delft_is("AVAILABLE"), 10, "live status on the map")
                cp.set_faulted(1)
                cp.set_faulted(2)
                await wait_until(lambda: oude_delft_is("OUTOFORDER"), 10, "faulted on the map")

    run(scenario(), timeout=40)


def test_a_partner_registers_with_token_a_then_reads_versions_and_pages_of_valid_locations(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    repo = copy_example("town-curbside", tmp_path)

    async def scenario() -> None:
        async with partner() as emsp, running(repo, tmp_path / "c.db", env) as fx:
            ocpi = f"{fx.api}/ocpi"
            # refused without a token, with a wrong one; token A opens versions but not locations
            for tok in (None, "wrong"):
                refused = await get(f"{ocpi}/versions", tok)
                assert refused.status == 401 and refused.body["status_code"] == 2000
                assert_valid("response", refused.body)
            versions = envelope_ok(await get(f"{ocpi}/versions", TOKEN_A))
            assert versions == [{"version": "2.2.1", "url": f"{ocpi}/2.2.1"}]
            assert_valid("version", versions[0])
            details = envelope_ok(await get(f"{ocpi}/2.2.1", TOKEN_A))
            assert_valid("version_details", details)
            assert {(e["identifier"], e["role"]) for e in details["endpoints"]} == {
                ("credentials", "SENDER"), ("locations", "SENDER")}
            assert (await get(f"{ocpi}/2.2.1/locations", TOKEN_A)).status == 401

            # the token exchange: we call the partner's versions back with its token B, answer token C
            ours = {"token": PARTNER_TOKEN, "url": f"{emsp.url}/ocpi/versions", "roles": [{
                "role": "EMSP", "party_id": "EMP", "country_code": "NL", "business_details": {"name": "Partner"}}]}
            answer = await asyncio.to_thread(call, "POST", f"{ocpi}/2.2.1/credentials", headers=token(TOKEN_A),
                                             body=ours)
            creds = envelope_ok(answer)
            assert_valid("credentials", creds)
            token_c = creds["token"]
            assert token_c not in (TOKEN_A, PARTNER_TOKEN)
            assert creds["url"] == f"{ocpi}/versions"
            assert creds["roles"][0]["role"] == "CPO" and creds["roles"][0]["party_id"] == "DLF"
            called_back = [r for r in emsp.received if r[0] == "GET"]
            assert [r[1] for r in called_back] == ["/ocpi/versions", "/ocpi/2.2.1"]
            assert all(r[2]["authorization"] == token(PARTNER_TOKEN)["Authorization"] for r in called_back)
            # token A was for one registration only; a second POST with token C is refused
            assert (await get(f"{ocpi}/versions", TOKEN_A)).status == 401
            again = await asyncio.to_thread(call, "POST", f"{ocpi}/2.2.1/credentials", headers=token(token_c),
                                            body=ours)
            assert again.status == 405
            assert envelope_ok(await get(f"{ocpi}/2.2.1/credentials", token_c))["token"] == token_c

            # Locations: the whole list, then pages following Link, with the paging headers
            full = await get(f"{ocpi}/2.2.1/locations", token_c)
            everything = envelope_ok(full)
            assert full.header("X-Total-Count") == str(len(everything)) and full.header("Link") is None
            assert full.header("OCPI-from-party-id") == "DLF" and full.header("OCPI-from-country-code") == "NL"
            for loc in everything:
                assert_location_valid(loc)
            published = {e["uid"].rsplit("-", 1)[0] for loc in everything for e in loc["evses"]}
            assert published == PUBLIC | {"DLF-DEPOT-01"}  # the private one with publish_allowed_to; hidden never
            private = [loc for loc in everything if not loc["publish"]]
            assert private and all(loc["publish_allowed_to"] for loc in private)
            pages: list[dict[str, Any]] = []
            url: str | None = f"{ocpi}/2.2.1/locations?limit=2"
            while url is not None:
                page = await get(url, token_c)
                pages.extend(envelope_ok(page))
                assert page.header("X-Total-Count") == str(len(everything)) and page.header("X-Limit") == "2"
                link = page.header("Link")
                url = link[1:link.index(">")] if link else None
                assert url is None or urlsplit(url).netloc == urlsplit(fx.api).netloc
            assert pages == everything

            # date filters on last_updated: date_from inclusive, date_to exclusive
            newest = max(loc["last_updated"] for loc in everything)
            later = await get(f"{ocpi}/2.2.1/locations?date_from=2999-01-01T00:00:00Z", token_c)
            assert envelope_ok(later) == [] and later.header("X-Total-Count") == "0"
            assert len(envelope_ok(await get(f"{ocpi}/2.2.1/locations?date_from={newest}", token_c))) >= 1
            assert all(loc["last_updated"] < newest for loc in
                       envelope_ok(await get(f"{ocpi}/2.2.1/locations?date_to={newest}", token_c)))
            bad = await get(f"{ocpi}/2.2.1/locations?date_from=yesterday", token_c)
            assert bad.status == 200 and bad.body["status_code"] == 2001

            # one object GETs (ids case-insensitive), unknown ones 404 / 2003; a raw token works too
            loc = everything[0]
            evse = loc["evses"][0]
            conn = evse["connectors"][0]
            got = envelope_ok(await get(f"{ocpi}/2.2.1/locations/{loc['id'].upper()}", token_c, raw=True))
            assert got == loc
            got_evse = envelope_ok(await get(f"{ocpi}/2.2.1/locations/{loc['id']}/{evse['uid']}", token_c))
            assert_valid("evse", got_evse)
            assert got_evse == evse
            got_conn = envelope_ok(await get(f"{ocpi}/2.2.1/locations/{loc['id']}/{evse['uid']}/{conn['id']}",
                                             token_c))
            assert_valid("connector", got_conn)
            assert got_conn == conn
            missing = await get(f"{ocpi}/2.2.1/locations/{loc['id']}/NOPE", token_c)
            assert missing.status == 404 and missing.body["status_code"] == 2003
            assert (await get(f"{ocpi}/2.2.1/locations/{loc['id']}", "not-a-peer")).status == 401

            # the partner exposes a Locations RECEIVER: a station hidden by the owner is pushed as REMOVED
            hide(repo, "DLF-AC-0003")

            def removed_patch() -> bool:
                return any(body == {"status": "REMOVED", "last_updated": body["last_updated"]}
                           and path.endswith("/DLF-AC-0003-1")
                           for _m, path, _h, body in emsp.pushes("PATCH"))

            await wait_until(removed_patch, 15, "REMOVED pushed to the registered partner")
            _m, path, headers, _b = emsp.pushes("PATCH")[0]
            assert headers["authorization"] == token(PARTNER_TOKEN)["Authorization"]
            assert path.startswith("/ocpi/2.2.1/locations/NL/DLF/")
            assert headers["ocpi-to-party-id"] == "EMP" and headers["ocpi-from-party-id"] == "DLF"
            # and unregistering closes the door
            bye = await asyncio.to_thread(call, "DELETE", f"{ocpi}/2.2.1/credentials", headers=token(token_c))
            assert bye.status == 200
            assert (await get(f"{ocpi}/2.2.1/locations", token_c)).status == 401

    run(scenario(), timeout=50)


def test_an_evse_hidden_while_the_controller_was_down_is_still_published_as_removed_after_restarts(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    repo = copy_example("town-curbside", tmp_path)
    db = tmp_path / "c.db"

    async def register(ocpi: str, emsp: Partner) -> str:
        ours = {"token": PARTNER_TOKEN, "url": f"{emsp.url}/ocpi/versions", "roles": [{
            "role": "EMSP", "party_id": "EMP", "country_code": "NL", "business_details": {"name": "Partner"}}]}
        answer = await asyncio.to_thread(call, "POST", f"{ocpi}/2.2.1/credentials", headers=token(TOKEN_A), body=ours)
        return str(envelope_ok(answer)["token"])

    async def evse_status(ocpi: str, tok: str, location: str, uid: str) -> str:
        return str(envelope_ok(await get(f"{ocpi}/2.2.1/locations/{location}/{uid}", tok))["status"])

    async def scenario() -> None:
        async with partner() as emsp:
            async with running(repo, db, env) as fx:
                tok = await register(f"{fx.api}/ocpi", emsp)
                assert await evse_status(f"{fx.api}/ocpi", tok, "phoenixstraat", "DLF-AC-0003-1") == "UNKNOWN"
            hide(repo, "DLF-AC-0003")  # while the controller is down
            for _ in range(2):
                async with running(repo, db, env) as fx:
                    ocpi = f"{fx.api}/ocpi"
                    # the registration survived the restart too (and token A stays used)
                    assert (await get(f"{ocpi}/versions", TOKEN_A)).status == 401
                    assert await evse_status(ocpi, tok, "phoenixstraat", "DLF-AC-0003-1") == "REMOVED"
                    loc = envelope_ok(await get(f"{ocpi}/2.2.1/locations/phoenixstraat", tok))
                    assert_location_valid(loc)
                    assert {e["status"] for e in loc["evses"]} == {"REMOVED"}
                    geo = await asyncio.to_thread(call, "GET", f"{fx.api}/map/stations.geojson")
                    assert "DLF-AC-0003" not in str(geo.body)

    run(scenario(), timeout=50)


def test_changes_are_pushed_to_the_partner_configured_by_settings(tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with partner() as emsp:
            env.setenv("CHARGEOPS_OCPI_PUSH_URL", f"{emsp.url}/ocpi/2.2.1/locations")
            env.setenv("CHARGEOPS_OCPI_PUSH_TOKEN", "push-token")
            async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
                # the first publication: every Location PUT whole
                await wait_until(lambda: len(emsp.pushes("PUT")) >= len(LOCATIONS), 10, "first publication pushed")
                assert sorted(body["id"] for _m, _p, _h, body in emsp.pushes("PUT")) == LOCATIONS
                for _m, path, headers, body in emsp.pushes("PUT"):
                    assert path == f"/ocpi/2.2.1/locations/NL/DLF/{body['id']}"
                    assert headers["authorization"] == token("push-token")["Authorization"]
                    assert headers["content-type"] == "application/json"
                    assert headers["x-request-id"] and headers["ocpi-from-party-id"] == "DLF"
                    assert_location_valid(body)
                async with fx.fleet("DLF-DC-0001") as fleet:
                    cp = fleet["DLF-DC-0001"]

                    def patched(status: str) -> bool:
                        return any(path.endswith("/DLF-DC-0001-1") and body["status"] == status
                                   for _m, path, _h, body in emsp.pushes("PATCH"))

                    await wait_until(lambda: patched("AVAILABLE"), 10, "AVAILABLE pushed")
                    cp.set_faulted(1)
                    await wait_until(lambda: patched("OUTOFORDER"), 10, "OUTOFORDER pushed")
                for _m, path, _h, body in emsp.pushes("PATCH"):
                    assert set(body) == {"status", "last_updated"}
                    assert path.startswith("/ocpi/2.2.1/locations/NL/DLF/pr-kruithuisweg/")

    run(scenario(), timeout=40)


def test_a_partner_that_does_not_answer_never_holds_up_the_controller(tmp_path: Path,
                                                                         env: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        silent = HttpServer([])
        await silent.start()
        dead_url = f"{silent.url}/ocpi/2.2.1/locations"
        await silent.stop()  # nothing listens there any more
        env.setenv("CHARGEOPS_OCPI_PUSH_URL", dead_url)
        env.setenv("CHARGEOPS_OCPI_PUSH_TOKEN", "push-token")
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
            await asyncio.sleep(0.5)  # the first publication is pushed, and refused, meanwhile
            answer = await asyncio.to_thread(call, "GET", f"{fx.api}/map/stations.geojson")
            assert answer.status == 200

    run(scenario(), timeout=30)


def test_an_idle_fleet_is_not_read_again_until_its_live_status_changes(tmp_path: Path,
                                                                         env: pytest.MonkeyPatch) -> None:
    """The background rebuild (every 0.1 s here) reads every station from the store only when the live status
    moved (a connection, a status notification); a new revision is built from the live status already read."""
    async def scenario() -> None:
        repo = copy_example("town-curbside", tmp_path)
        async with running(repo, tmp_path / "c.db", env) as fx:
            store = fx.ctl.store
            assert store is not None
            reads: list[bool] = []
            original = store.list_stations

            async def counted(*, configuration: bool = True) -> Any:
                reads.append(configuration)
                return await original(configuration=configuration)

            store.list_stations = counted  # type: ignore[method-assign]
            await asyncio.sleep(1.0)  # ten background rebuilds' worth of time, nothing changes
            assert len(reads) <= 1
            before = len(reads)
            async with fx.fleet("DLF-DC-0001") as fleet:
                cp = fleet["DLF-DC-0001"]
                await cp.wait_online(10)
                await wait_until(lambda: asyncio.sleep(0, len(reads) > before), 10, "a rebuild after the connect")
                station = fx.desired.station_for_identity("DLF-DC-0001")
                assert station is not None
                for evse in station.evses:
                    cp.set_faulted(evse.id)

                async def faulted() -> bool:
                    a = await asyncio.to_thread(call, "GET", f"{fx.api}/map/stations.geojson")
                    b = json.loads(a.body) if isinstance(a.body, str) else a.body
                    return any(f["id"] == "DLF-DC-0001" and f["properties"]["status"] == "OUTOFORDER"
                               for f in b["features"])

                await wait_until(faulted, 10, "the fault on the map")
                await asyncio.sleep(0.3)  # the rebuilds that follow the fault have run
                before = len(reads)
                old_revision = fx.ctl.desired.revision
                hide(repo, "DLF-AC-0002")  # a new revision: the map changes, live status does not

                async def hidden() -> bool:
                    a = await asyncio.to_thread(call, "GET", f"{fx.api}/map/stations.geojson")
                    b = json.loads(a.body) if isinstance(a.body, str) else a.body
                    return fx.ctl.desired.revision != old_revision and "DLF-AC-0002" not in {
                        f["id"] for f in b["features"]}

                await wait_until(hidden, 10, "the hidden station off the map")
                assert len(reads) == before  # built from the live status already read
            assert reads and not any(reads)  # the map never reads the configuration keys

    run(scenario(), timeout=40)


def test_two_first_readers_of_the_credentials_both_see_token_a_offered(tmp_path: Path,
                                                                       env: pytest.MonkeyPatch) -> None:
    """The background publication and the first request both load the registration state at start: token A
    is offered exactly once and both see it (a race once answered the first registration 401).

    The controller's own publisher gets no token A here: with one it saves the registration state too, and
    which of the two publishers (one store) wrote last would decide what the store holds."""
    env.delenv("CHARGEOPS_OCPI_TOKEN_A")

    async def scenario() -> None:
        async with running(copy_example("town-curbside", tmp_path), tmp_path / "c.db", env) as fx:
            pub = Publisher(fx.ctl, PublishSettings(token_a="another-token-a"))
            first, second = await asyncio.gather(pub.credentials(), pub.credentials())
            header = "Token " + base64.b64encode(b"another-token-a").decode()
            assert cred.authenticate(header, first) is not None
            assert cred.authenticate(header, second) is not None
            store = fx.ctl.store
            assert store is not None
            saved = (await store.get_state("ocpi/credentials"))["ocpi/credentials"]
            assert isinstance(saved, dict) and saved["state"]["pending"].count("another-token-a") == 1

    run(scenario(), timeout=40)
