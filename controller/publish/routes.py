"""HTTP endpoints of map publication: the public GeoJSON feed and the OCPI 2.2.1 CPO interface.

Routes (added to the controller's API through `EXTRA_ROUTES`; importing this module registers them):
  GET    /map/stations.geojson                              public, no token: public activated stations
  GET    /ocpi/versions                                     Versions module (token A or a peer token)
  GET    /ocpi/2.2.1                                        version details: credentials, locations (SENDER)
  GET|POST|PUT|DELETE /ocpi/2.2.1/credentials               Credentials module, the token exchange
  GET    /ocpi/2.2.1/locations?date_from=&date_to=&offset=&limit=
                                                            Locations Sender: a page, X-Total-Count,
                                                            X-Limit, Link rel="next"
  GET    /ocpi/2.2.1/locations/{location_id}[/{evse_uid}[/{connector_id}]]

OCPI calls authenticate with ``Authorization: Token <token>`` (Base64 as 2.2.1 says, or raw): a
registration token (CHARGEOPS_OCPI_TOKEN_A) opens Versions and Credentials only; the Locations module
needs the token a registered peer received in the exchange. Answers are the OCPI envelope; the request
and correlation ids are echoed; Locations answers carry the routing headers.

During a POST / PUT on credentials the controller calls the peer's versions endpoint back (in a thread,
with a timeout) before answering, as the specification requires.

Boundary: HTTP <-> the pure OCPI handlers (`ocpi_api`, `ocpi_credentials`) and the `Publisher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from controller.runtime.api import EXTRA_ROUTES
from controller.runtime.http import Request, Response, Route, json_response

from . import ocpi_api as api
from . import ocpi_credentials as cred
from .client import fetch_peer_version
from .ocpi import OCPI_VERSION
from .service import Publisher, PublishSettings

if TYPE_CHECKING:
    from controller.runtime.controller import ApiSettings, Controller

GEOJSON_TYPE = "application/geo+json"


def _render(r: api.Response, headers: dict[str, str] | None = None) -> Response:
    return json_response(r.body, r.status, headers={**r.headers, **(headers or {})})


def publication_routes(ctl: Controller, api_settings: ApiSettings, *,
                       settings: PublishSettings | None = None) -> list[Route]:
    settings = settings or PublishSettings.from_env(os.environ)
    pub = Publisher(ctl, settings)
    pub.start()
    ctl.closers.append(pub.stop)
    clock = pub.clock

    def base_url() -> str:
        root = settings.public_url or (ctl.api.url if ctl.api is not None else "")
        return f"{root.rstrip('/')}/ocpi"

    def party() -> cred.OurParty:
        desired = pub.desired()
        assert desired is not None
        return cred.OurParty.from_owner(desired.owner)

    def headers(req: Request, functional: bool) -> dict[str, str]:
        p = party()
        return api.reply_headers(req.headers, country_code=p.country_code, party_id=p.party_id,
                                 functional=functional)

    async def allowed(req: Request, module: str) -> bool:
        caller = cred.authenticate(req.headers.get("authorization"), await pub.credentials())
        return cred.may_call(caller, module)

    async def geojson(req: Request) -> Response:
        return json_response(await pub.geojson(), headers={
            "Content-Type": GEOJSON_TYPE, "Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=5"})

    async def versions(req: Request) -> Response:
        if not await allowed(req, "versions"):
            return _render(api.unauthorized(clock()), headers(req, False))
        return _render(api.versions(base_url(), clock()), headers(req, False))

    async def details(req: Request) -> Response:
        if not await allowed(req, "versions"):
            return _render(api.unauthorized(clock()), headers(req, False))
        return _render(api.version_details(base_url(), clock()), headers(req, False))

    async def credentials_get(req: Request) -> Response:
        state = await pub.credentials()
        return _render(cred.get_credentials(state, req.headers.get("authorization"), party(), base_url(), clock()),
                       headers(req, False))

    async def credentials_update(req: Request) -> Response:
        body: Any = None
        with contextlib.suppress(ValueError):  # validate_credentials says what is wrong
            body = json.loads(req.body) if req.body else None
        checked = cred.check_credentials_request(await pub.credentials(), req.method,
                                                 req.headers.get("authorization"), body, clock())
        if isinstance(checked, api.Response):
            return _render(checked, headers(req, False))
        fetched = await asyncio.to_thread(fetch_peer_version, checked.url, checked.token, timeout=settings.timeout)
        async with pub.credentials_lock:
            before = await pub.credentials()
            state, answer = cred.register_credentials(before, checked, fetched, new_token=cred.new_token(),
                                                      party=party(), base_url=base_url(), now=clock())
            if state is not before:
                await pub.save_credentials(state)
        return _render(answer, headers(req, False))

    async def credentials_delete(req: Request) -> Response:
        async with pub.credentials_lock:
            before = await pub.credentials()
            state, answer = cred.delete_credentials(before, req.headers.get("authorization"), clock())
            if state is not before:
                await pub.save_credentials(state)
        return _render(answer, headers(req, False))

    def locations_handler(kind: str) -> Any:
        async def handler(req: Request) -> Response:
            now = clock()
            if not await allowed(req, "locations"):
                return _render(api.unauthorized(now), headers(req, True))
            locations = (await pub.publication()).sorted()
            p = req.params
            if kind == "list":
                query = api.parse_list_query(req.query, now)
                answer = query if isinstance(query, api.Response) else \
                    api.list_locations(locations, query, url=api.Urls(base_url()).locations, now=now)
            elif kind == "location":
                answer = api.get_location(locations, p["location_id"], now)
            elif kind == "evse":
                answer = api.get_evse(locations, p["location_id"], p["evse_uid"], now)
            else:
                answer = api.get_connector(locations, p["location_id"], p["evse_uid"], p["connector_id"], now)
            return _render(answer, headers(req, True))
        return handler

    v = f"/ocpi/{OCPI_VERSION}"
    return [
        Route("GET", "/map/stations.geojson", geojson),
        Route("GET", "/ocpi/versions", versions),
        Route("GET", v, details),
        Route("GET", f"{v}/credentials", credentials_get),
        Route("POST", f"{v}/credentials", credentials_update),
        Route("PUT", f"{v}/credentials", credentials_update),
        Route("DELETE", f"{v}/credentials", credentials_delete),
        Route("GET", f"{v}/locations", locations_handler("list")),
        Route("GET", f"{v}/locations/{{location_id}}", locations_handler("location")),
        Route("GET", f"{v}/locations/{{location_id}}/{{evse_uid}}", locations_handler("evse")),
        Route("GET", f"{v}/locations/{{location_id}}/{{evse_uid}}/{{connector_id}}", locations_handler("connector")),
    ]


EXTRA_ROUTES.append(publication_routes)
