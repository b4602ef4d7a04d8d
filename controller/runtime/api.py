"""The controller's HTTP API: fleet status, station detail, audit, observed-state export, metrics, and
the few operator actions (confirm held removals, resume a paused rollout, suspend a station), plus the
git push webhook.

Every route except `/healthz`, `/metrics` and the webhook (which has its own shared-secret signature)
needs a bearer token (`--api-token` / CHARGEOPS_API_TOKEN); GET routes also take it from the HttpOnly
cookie the dashboard sets (`TOKEN_COOKIE`, never for POST: no cross-site request can act). Read routes
never change anything; idTags are masked in every answer; secrets never appear.

Routes:
  GET  /healthz                                   liveness
  GET  /metrics                                   Prometheus text format
  GET  /api/v1/status                             fleet summary and every station's status
  GET  /api/v1/stations/{identity}                status, desired vs observed configuration, pending plan,
                                                  recent audit entries and sessions
  GET  /api/v1/audit?station=&limit=              the audit log
  GET  /api/v1/observed                           observed-state export (what `chargeops plan --against` reads)
  POST /api/v1/revisions/{revision}/confirm       release removals held for that revision
  POST /api/v1/rollout/resume                     resume a paused rollout
  POST /api/v1/stations/{identity}/suspend|resume observe only / back to normal
  POST /api/v1/webhook/git                        trigger a fetch now (X-Hub-Signature-256)

Boundary: HTTP <-> controller objects; no decisions of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Collection
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from controller.config.effective import effective_station
from controller.reconcilers import plan_station
from controller.reconcilers.access import canonical_entry
from controller.reconcilers.render import render_plan
from controller.runtime.http import (
    Headers,
    HttpError,
    HttpServer,
    Request,
    Response,
    Route,
    json_response,
    require_token,
    text_response,
)
from controller.runtime.metrics import Registry, metrics_route
from controller.runtime.observe import load_bookkeeping, observed_from_store
from controller.runtime.sources import GitSource, verify_signature
from controller.runtime.sources.webhook import SIGNATURE_HEADER

if TYPE_CHECKING:
    from controller.runtime.controller import ApiSettings, Controller


def build_metrics(ctl: Controller) -> Registry:
    reg = Registry()
    rec = ctl.reconciler
    assert rec is not None
    stations = reg.gauge("chargeops_stations", "Stations by sync status and health", ["sync", "health"])

    def by_status() -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {}
        for s in rec.status.values():
            key = (s.sync.value, s.health.label)
            out[key] = out.get(key, 0) + 1
        return out

    stations.set_collector(by_status)  # type: ignore[arg-type]
    reg.gauge("chargeops_queue_depth", "Stations waiting for a look").set_function(lambda: rec.queue_depth)
    reg.gauge("chargeops_apply_slots_in_use", "Apply slots held by stations planning or applying").set_function(
        lambda: rec.slots.in_use)
    reg.gauge("chargeops_apply_slots_given_back",
              "Apply slots given back so far by applies waiting on an unanswered call").set_function(
        lambda: rec.slots.given_back)
    reg.gauge("chargeops_apply_slot_wait_seconds",
              "How long a call goes unanswered before its apply's slot goes to the next station").set_function(
        lambda: rec.slots.wait or 0.0)
    reg.gauge("chargeops_stations_online", "Chargers connected").set_function(
        lambda: len(ctl.central.online()) if ctl.central else 0)
    applies = reg.counter("chargeops_applies_total", "Actions sent to chargers, by action and result",
                          ["action", "result"])
    drift = reg.counter("chargeops_drift_corrections_total", "Settings changed at a charger and healed", ["action"])
    converged = reg.counter("chargeops_converged_total", "Stations that reached a revision")
    reconcile = reg.histogram("chargeops_reconcile_seconds", "Time to apply one station's plan")
    to_converged = reg.histogram("chargeops_commit_to_converged_seconds",
                                 "Time from a commit (or its load) to a station converged on it",
                                 buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600))
    store_size = reg.gauge("chargeops_store_bytes", "Size of the store (database and WAL)")
    if ctl.store is not None:
        store = ctl.store
        store_size.set_function(lambda: float(store.engine.size_bytes()))

    rec.metrics = _Counting(applies, drift, converged.child(), reconcile.child(), to_converged.child())
    if ctl.central is not None:
        ctl.central.on_handled = _Handled(
            reg.histogram("chargeops_incoming_call_wait_seconds",
                          "Time a charger's call waited behind its earlier calls before its handler ran", ["action"]),
            reg.histogram("chargeops_incoming_call_seconds",
                          "Time from a charger's call's handler starting to its answer written", ["action"]),
        ).observe
    return reg


class _Handled:
    """`OcppConnection.on_handled` into two histograms by action (children looked up once per action)."""

    def __init__(self, waited: Any, handled: Any) -> None:
        self._families = (waited, handled)
        self._children: dict[str, tuple[Any, Any]] = {}

    def observe(self, action: str, waited: float, handled: float) -> None:
        children = self._children.get(action)
        if children is None:
            children = self._children[action] = (self._families[0].labels(action=action),
                                                 self._families[1].labels(action=action))
        children[0].observe(waited)
        children[1].observe(handled)


class _Counting:
    """`ReconcileMetrics` into the registry's families: children looked up once (several events per station)."""

    def __init__(self, applies: Any, drift: Any, converged: Any, reconcile: Any, to_converged: Any) -> None:
        self._applies, self._drift = applies, drift
        self._by_answer: dict[tuple[str, str], Any] = {}  # (action, result) -> its counter
        self._converged, self._reconcile, self._to_converged = converged, reconcile, to_converged

    def applied(self, action: str, result: str, drift: bool) -> None:
        child = self._by_answer.get((action, result))
        if child is None:
            child = self._by_answer[(action, result)] = self._applies.labels(action=action, result=result)
        child.inc()
        if drift and result == "Accepted":
            self._drift.labels(action=action).inc()

    def reconciled(self, seconds: float) -> None:
        self._reconcile.observe(seconds)

    def converged(self, since_commit: float | None) -> None:
        self._converged.inc()
        if since_commit is not None:
            self._to_converged.observe(since_commit)


TOKEN_COOKIE = "chargeops_token"  # set by the dashboard (HttpOnly, SameSite=Strict)


def cookie_token(req: Request) -> str | None:
    """The API token from the dashboard's cookie, if the request carries one."""
    raw = req.headers.get("cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(TOKEN_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def require_read_token(req: Request, tokens: Collection[str]) -> str:
    """`require_token`, also accepting the dashboard's cookie on GET / HEAD (read-only) requests."""
    cookie = cookie_token(req) if req.method in ("GET", "HEAD") else None
    if cookie is not None and "authorization" not in req.headers and not req.query.get("token"):
        fields = [(name, value) for name in req.headers for value in req.headers.get_all(name)]
        req = dataclasses.replace(req, headers=Headers([*fields, ("Authorization", f"Bearer {cookie}")]))
    return require_token(req, tokens)


RouteFactory = Callable[["Controller", "ApiSettings"], list[Route]]
EXTRA_ROUTES: list[RouteFactory] = []  # features add their routes here (reservations, map, dashboard)


def build_api(ctl: Controller, settings: ApiSettings) -> HttpServer:
    registry = build_metrics(ctl)
    tokens = set(settings.tokens)

    def auth(req: Request) -> None:
        require_read_token(req, tokens)

    async def healthz(req: Request) -> Response:
        return text_response("ok\n")

    async def status(req: Request) -> Response:
        auth(req)
        rec = ctl.reconciler
        assert rec is not None
        fleet = rec.fleet()
        fleet["source"] = ctl.source.status.as_dict() if ctl.source is not None else None
        fleet["online"] = ctl.central.online() if ctl.central else []
        fleet["stationStatus"] = [s.to_dict() for s in sorted(rec.status.values(), key=lambda s: s.identity)]
        return json_response(fleet)

    async def station(req: Request) -> Response:
        auth(req)
        identity = req.params["identity"]
        rec = ctl.reconciler
        assert rec is not None and ctl.store is not None
        st = rec.status.get(identity.upper())
        desired = rec.desired()
        if st is None or desired is None:
            raise HttpError(404, f"no station {identity!r}", "not_found")
        record = await ctl.store.get_station(identity)
        book = await load_bookkeeping(ctl.store, identity)
        observed, accepted = await observed_from_store(ctl.store, identity, record, book,
                                                       online=identity.upper() in
                                                       {i.upper() for i in (ctl.central.online() if ctl.central
                                                                            else [])})
        station_cfg = desired.station_for_identity(identity)
        desired_cfg: dict[str, str] = {}
        if station_cfg is not None:
            desired_cfg = dict(effective_station(desired, station_cfg, observed.boot if observed else None)
                               .ocpp_configuration)
        plan = plan_station(desired, identity, observed, dt.datetime.now(dt.UTC), snapshot_entries=accepted)
        audit = await ctl.store.list_audit(station=identity, limit=50)
        sessions = await ctl.store.list_transactions(station=identity, limit=50)
        return json_response({
            "status": st.to_dict(),
            "desiredConfiguration": desired_cfg,
            "observedConfiguration": {k.key: k.value for k in record.configuration} if record else {},
            "observed": observed.to_dict() if observed else None,
            "plan": plan.to_dict(mask=True),
            "planText": render_plan([plan], "human"),
            "audit": [{"at": a.at, "action": a.action, "revision": a.git_revision, "detail": dict(a.detail)}
                      for a in audit],
            "sessions": [{"id": t.id, "connector": t.connector_id, "status": t.status.value,
                          "start": t.start_timestamp, "stop": t.stop_timestamp,
                          "idTag": _mask(t.id_tag), "meterStart": t.meter_start, "meterStop": t.meter_stop}
                         for t in reversed(sessions)],
        })

    async def audit(req: Request) -> Response:
        auth(req)
        assert ctl.store is not None
        raw_limit = req.query.get("limit", "100")
        limit = min(int(raw_limit), 5000) if re.fullmatch(r"[0-9]{1,9}", raw_limit) else 0
        if limit < 1:  # not a 500 (int("abc")), nor a negative limit, which SQLite reads as no limit at all
            raise HttpError(400, f"limit must be a positive whole number, not {raw_limit[:20]!r}", "bad_limit")
        rows = await ctl.store.list_audit(station=req.query.get("station"), limit=limit)
        return json_response([{"at": a.at, "station": a.station, "action": a.action, "revision": a.git_revision,
                               "detail": dict(a.detail)} for a in rows])

    async def observed(req: Request) -> Response:
        auth(req)
        assert ctl.store is not None
        out: list[dict[str, Any]] = []
        snapshots: dict[str, list[dict[str, Any]]] = {}
        online = {i.upper() for i in (ctl.central.online() if ctl.central else [])}
        for record in await ctl.store.list_stations():
            book = await load_bookkeeping(ctl.store, record.identity)
            obs, entries = await observed_from_store(ctl.store, record.identity, record, book,
                                                     online=record.identity.upper() in online)
            if obs is not None:
                out.append(obs.to_dict())
                if obs.local_list_hash and entries is not None and obs.local_list_hash not in snapshots:
                    snapshots[obs.local_list_hash] = [canonical_entry(e) for e in entries]
        return json_response({"kind": "ObservedState", "exportedAt": dt.datetime.now(dt.UTC),
                              "revision": ctl.desired.revision, "stations": out, "snapshots": snapshots})

    async def confirm(req: Request) -> Response:
        auth(req)
        assert ctl.reconciler is not None
        if not await ctl.reconciler.confirm(req.params["revision"]):
            raise HttpError(409, "that revision is not the one in force", "not_current")
        return json_response({"confirmed": req.params["revision"]})

    async def resume(req: Request) -> Response:
        auth(req)
        assert ctl.reconciler is not None
        await ctl.reconciler.resume_rollout()
        return json_response({"rollout": ctl.reconciler.rollout.summary() if ctl.reconciler.rollout else None})

    def suspender(flag: bool) -> Any:
        async def handler(req: Request) -> Response:
            auth(req)
            assert ctl.reconciler is not None
            await ctl.reconciler.set_suspended(req.params["identity"], flag)
            return json_response({"identity": req.params["identity"], "suspended": flag})
        return handler

    async def webhook(req: Request) -> Response:
        secret = settings.webhook_secret
        if not secret or not verify_signature(secret, req.body, req.headers.get(SIGNATURE_HEADER)):
            raise HttpError(401, "bad or missing webhook signature", "bad_signature")
        if isinstance(ctl.source, GitSource):
            ctl.source.trigger()
            return json_response({"fetch": "triggered"}, status=202)
        return json_response({"fetch": "not following git"}, status=202)

    routes = [
        Route("GET", "/healthz", healthz),
        metrics_route(registry),
        Route("GET", "/api/v1/status", status),
        Route("GET", "/api/v1/stations/{identity}", station),
        Route("GET", "/api/v1/audit", audit),
        Route("GET", "/api/v1/observed", observed),
        Route("POST", "/api/v1/revisions/{revision}/confirm", confirm),
        Route("POST", "/api/v1/rollout/resume", resume),
        Route("POST", "/api/v1/stations/{identity}/suspend", suspender(True)),
        Route("POST", "/api/v1/stations/{identity}/resume", suspender(False)),
        Route("POST", "/api/v1/webhook/git", webhook),
    ]
    for factory in EXTRA_ROUTES:
        routes.extend(factory(ctl, settings))
    return HttpServer(routes, host=settings.host, port=settings.port or 0)


def _mask(id_tag: str | None) -> str | None:
    from controller.config.diagnostics import mask_id_tag

    return None if id_tag is None else mask_id_tag(id_tag)
