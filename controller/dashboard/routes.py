"""HTTP endpoints of the owner's dashboard: the pages, their static files, the fleet snapshot and its events.

Routes (added to the controller's API through `EXTRA_ROUTES`; importing this module registers them):
  GET /dashboard                        the fleet page (map, table, revision / held / failed / rollout)
  GET /dashboard/stations/{identity}    one station (desired vs observed, plan, audit, sessions)
  GET /dashboard/logout                 forget the token cookie
  GET /dashboard/static/...             the page's own JS / CSS and the bundled Leaflet (public, no data)
  GET /api/v1/fleet                     the fleet snapshot (`snapshot.fleet_snapshot`) as JSON
  GET /api/v1/events                    server-sent events: a ``fleet`` event with the snapshot at once and
                                        whenever it changes (looked at every `POLL` seconds)

Token: the API token, as a bearer header, or once as ``?token=`` on a page: the answer is a redirect to
the same page without it that sets an HttpOnly, SameSite=Strict cookie, which the page's fetch and
EventSource calls then carry (the API accepts it on GET only). Without a token a page answers 401 with a
small form asking for one. Pages are read-only and carry a strict Content-Security-Policy (own scripts
only; images from the map tile server when one is configured).

Map tiles: CHARGEOPS_MAP_TILES (an ``{z}/{x}/{y}`` URL template; ``{s}`` subdomains allowed) and
CHARGEOPS_MAP_ATTRIBUTION. None by default: the map is drawn on a plain grid, and the page falls back to
it when tiles do not load, so the dashboard works with no internet.

Boundary: HTTP <-> controller objects; the snapshot is assembled in `snapshot`, the drawing is in the
static files.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Mapping
from http.cookies import SimpleCookie
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from controller.runtime.api import EXTRA_ROUTES, TOKEN_COOKIE, require_read_token
from controller.runtime.http import EventStream, HttpError, Request, Response, Route, json_response, text_response
from controller.store.records import TransactionStatus

from .snapshot import Obj, fleet_snapshot

if TYPE_CHECKING:
    from controller.runtime.controller import ApiSettings, Controller

POLL = 0.5  # seconds between looks at the fleet for the event stream
COOKIE_MAX_AGE = 12 * 3600
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml", "": "text/plain"}


def _static_files() -> dict[str, tuple[bytes, str]]:
    """Every file under static/ by its path there (read once: a fixed set, so no path can escape it)."""
    out: dict[str, tuple[bytes, str]] = {}
    root = resources.files("controller.dashboard").joinpath("static")

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            else:
                suffix = os.path.splitext(child.name)[1]
                out[name] = (child.read_bytes(), _TYPES.get(suffix, "application/octet-stream"))

    walk(root, "")
    return out


def _tile_source(template: str | None) -> str | None:
    """The CSP source of the tile server (``{s}`` subdomains become a wildcard)."""
    if not template:
        return None
    parts = urlsplit(template.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def dashboard_routes(ctl: Controller, api_settings: ApiSettings, *,
                     env: Mapping[str, str] | None = None) -> list[Route]:
    env = os.environ if env is None else env
    tokens = set(api_settings.tokens)
    files = _static_files()
    tiles = env.get("CHARGEOPS_MAP_TILES", "").strip() or None
    attribution = env.get("CHARGEOPS_MAP_ATTRIBUTION", "").strip() or None
    secure_cookie = env.get("CHARGEOPS_PUBLIC_URL", "").strip().lower().startswith("https://")
    tile_source = _tile_source(tiles)
    csp = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
           f"img-src 'self' data:{' ' + tile_source if tile_source else ''}; "
           "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    page_headers = {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
    cache: dict[str, Any] = {"at": -1.0, "value": None}
    lock = asyncio.Lock()

    async def snapshot() -> Obj:
        """The snapshot, shared by every client for a moment (one look at the store per poll)."""
        async with lock:
            loop = asyncio.get_running_loop()
            if cache["value"] is not None and loop.time() - cache["at"] < POLL * 0.8:
                return dict(cache["value"])
            rec, store = ctl.reconciler, ctl.store
            assert rec is not None and store is not None
            records = await store.list_stations(configuration=False)
            active = await store.list_transactions(status=TransactionStatus.ACTIVE, limit=100_000)
            counts: dict[str, int] = {}
            for tx in active:
                counts[tx.station.upper()] = counts.get(tx.station.upper(), 0) + 1
            value = fleet_snapshot(fleet=rec.fleet(), statuses=list(rec.status.values()), desired=rec.desired(),
                                   records=records, open_sessions=counts,
                                   online=ctl.central.online() if ctl.central else [],
                                   source=ctl.source.status.as_dict() if ctl.source is not None else None)
            cache.update(at=loop.time(), value=value)
            return dict(value)

    def page(name: str, config: Obj) -> Response:
        html = files[name][0].decode().replace("{{CONFIG}}", _script_json(config))
        return text_response(html, content_type=files[name][1], headers=page_headers)

    def login_page(req: Request, message: str) -> Response:
        html = files["login.html"][0].decode().replace("{{MESSAGE}}", message)
        return text_response(html, 401, content_type=files["login.html"][1], headers=page_headers)

    def authorized_page(req: Request) -> Response | None:
        """None when the request may see the page; else the redirect that sets the cookie, or the login form."""
        try:
            token = require_read_token(req, tokens)
        except HttpError:
            return login_page(req, "The token is not valid." if req.query.get("token") else "")
        if req.query.get("token"):
            jar: SimpleCookie = SimpleCookie()
            jar[TOKEN_COOKIE] = token
            morsel = jar[TOKEN_COOKIE]
            morsel["httponly"], morsel["samesite"], morsel["path"] = True, "Strict", "/"
            morsel["max-age"] = COOKIE_MAX_AGE
            if secure_cookie:
                morsel["secure"] = True
            return Response(303, {"Location": req.path, "Set-Cookie": morsel.OutputString(),
                                  "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        return None

    def config(**extra: Any) -> Obj:
        return {"tiles": tiles, "attribution": attribution, **extra}

    async def fleet_page(req: Request) -> Response:
        return authorized_page(req) or page("index.html", config())

    async def station_page(req: Request) -> Response:
        return authorized_page(req) or page("station.html", config(identity=req.params["identity"]))

    async def logout(req: Request) -> Response:
        return Response(303, {"Location": "/dashboard", "Cache-Control": "no-store",
                              "Set-Cookie": f"{TOKEN_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"})

    def static(prefix: str) -> Any:
        async def handler(req: Request) -> Response:
            found = files.get(prefix + req.params["name"])
            if found is None or req.params["name"].endswith(".html"):
                raise HttpError(404, "no such file", "not_found")
            return Response(200, {"Content-Type": found[1], "Cache-Control": "max-age=300",
                                  "X-Content-Type-Options": "nosniff"}, found[0])
        return handler

    async def fleet(req: Request) -> Response:
        require_read_token(req, tokens)
        return json_response(await snapshot())

    async def events(req: Request) -> EventStream:
        require_read_token(req, tokens)

        async def stream() -> AsyncIterator[tuple[str, Any]]:
            last = None
            while True:
                value = await snapshot()
                text = json.dumps(value, sort_keys=True, default=str)
                if text != last:
                    last = text
                    yield "fleet", value
                await asyncio.sleep(POLL)

        return EventStream(stream(), retry_ms=2000)

    return [
        Route("GET", "/dashboard", fleet_page),
        Route("GET", "/dashboard/stations/{identity}", station_page),
        Route("GET", "/dashboard/logout", logout),
        Route("GET", "/dashboard/static/{name}", static("")),
        Route("GET", "/dashboard/static/leaflet/{name}", static("leaflet/")),
        Route("GET", "/dashboard/static/leaflet/images/{name}", static("leaflet/images/")),
        Route("GET", "/api/v1/fleet", fleet),
        Route("GET", "/api/v1/events", events),
    ]


EXTRA_ROUTES.append(dashboard_routes)
