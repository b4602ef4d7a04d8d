"""`chargeops run`: the controller process.

Wires the pieces: a desired-state source (a watched directory or a followed git branch/tag), the
holder that keeps the newest valid revision in force, the store bound to the owner, the OCPP central
system, the reconciliation loop, the HTTP API (status, audit, observed-state export, metrics, webhook),
and housekeeping (meter-value retention). The first revision must be valid to start (every error is
printed with file and line); after that a bad revision changes nothing and is reported.

Boundary: process wiring and lifecycle only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from controller.billing.history import prepare_in_force, record_in_force
from controller.config.diagnostics import ConfigError
from controller.hw.handlers import SessionListener
from controller.hw.server import CentralSystem, ServerSettings, utc_now
from controller.runtime.gcpolicy import GcPolicy, GcSettings
from controller.runtime.reconcile import FleetReconciler, ReconcileSettings
from controller.runtime.sources import DirectorySource, GitSource, RevisionEvent
from controller.runtime.state import DesiredHolder
from controller.store.sqlite import SqliteStore

log = logging.getLogger("chargeops.runtime")

# Session features (billing, driver price messages, reservations) register a factory here; each is
# called once the store and the central system exist and returns a listener for the OCPP handlers.
ListenerFactory = Callable[["Controller"], SessionListener]
LISTENER_FACTORIES: list[ListenerFactory] = []


@dataclasses.dataclass(frozen=True)
class GitSettings:
    url: str
    branch: str | None = None
    tag: str | None = None
    path: str = ""
    interval: float = 60.0
    workdir: Path | None = None


@dataclasses.dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int | None = None  # None: no HTTP API
    tokens: tuple[str, ...] = ()
    webhook_secret: str | None = None


@dataclasses.dataclass(frozen=True)
class ControllerSettings:
    repo: Path | None
    db_path: Path
    server: ServerSettings = dataclasses.field(default_factory=ServerSettings)
    git: GitSettings | None = None
    reconcile: ReconcileSettings = dataclasses.field(default_factory=ReconcileSettings)
    api: ApiSettings = dataclasses.field(default_factory=ApiSettings)
    watch: bool = True  # directory mode: follow changes
    gc: GcSettings = dataclasses.field(default_factory=GcSettings)


class Controller:
    def __init__(self, settings: ControllerSettings):
        self.settings = settings
        self.desired = DesiredHolder()
        self.store: SqliteStore | None = None
        self.central: CentralSystem | None = None
        self.reconciler: FleetReconciler | None = None
        self.source: DirectorySource | GitSource | None = None
        self.api: Any = None
        # Features that run work of their own (e.g. map publication) register how to stop it; run first on stop.
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.ready = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None
        self._preparing: set[asyncio.Task[None]] = set()
        self.gc = GcPolicy(settings.gc)

    async def _on_revision(self, event: RevisionEvent) -> None:
        taken = self.desired.offer(event.result.desired, event.revision, event.result.errors)
        if taken:
            self.gc.surge()  # the burst of objects a revision makes (its looks) passes without young collections
        if taken and self.store is not None:  # tariff history by time: bills use the prices taken by then
            await record_in_force(self.store, self.desired, utc_now())
            self._prepare_prices()
        if taken and self.reconciler is not None:
            self.reconciler.committed_at[event.revision] = event.committed_at or utc_now()
            self.reconciler.on_revision()
            self.gc.settle(collect=False)  # the new desired state is long-lived: out of the collector's way

    def _prepare_prices(self) -> None:
        """Resolve the prices of the revision now in force in the background: the first sessions to stop after
        it (or after a restart) are priced from the cache instead of reading and parsing it before their answer."""
        if self.store is not None:
            task = asyncio.create_task(prepare_in_force(self.store, utc_now()), name="prepare-prices")
            self._preparing.add(task)
            task.add_done_callback(self._preparing.discard)

    async def start(self) -> None:
        s = self.settings
        first: asyncio.Future[RevisionEvent] = asyncio.get_running_loop().create_future()

        async def sink(event: RevisionEvent) -> None:
            if not first.done():
                first.set_result(event)
            await self._on_revision(event)

        if s.git is not None:
            workdir = s.git.workdir or s.db_path.parent / ".chargeops-git"
            self.source = GitSource(s.git.url, workdir, sink, branch=s.git.branch, tag=s.git.tag, path=s.git.path,
                                    interval=s.git.interval)
        else:
            assert s.repo is not None, "a repository directory or a git URL is needed"
            self.source = DirectorySource(s.repo, sink, last_good=s.db_path.with_name(s.db_path.name + ".last-good"))
        await self.source.start()
        event = await first
        if event.result.desired is None:
            await self.source.stop()
            raise ConfigError(event.result.errors)
        owner = event.result.desired.owner.name
        self.store = await SqliteStore.open(s.db_path, owner=owner)
        await record_in_force(self.store, self.desired, utc_now())  # taken before the store was open
        self._prepare_prices()
        reconciler_box: list[FleetReconciler] = []
        central = CentralSystem(self.desired, self.store, s.server, clock=utc_now,
                                on_connect=lambda identity, reason: reconciler_box[0].enqueue(identity, reason)
                                if reconciler_box else None)
        self.central = central
        import controller.runtime.features  # noqa: F401  (registers the session features)

        for factory in LISTENER_FACTORIES:
            central.csms.listeners.append(factory(self))
        self.reconciler = FleetReconciler(self.desired, self.store, central.port_for, utc_now, s.reconcile,
                                          secrets_dir=s.server.secrets_dir, tls=s.server.tls)
        self.reconciler.sessions_of = central.sessions.connectors_busy
        self.reconciler.connected_since = central.connected_since
        reconciler_box.append(self.reconciler)
        await self.reconciler.start()
        await central.start()
        if s.api.port is not None:
            from controller.runtime.api import build_api

            self.api = build_api(self, s.api)
            await self.api.start()
        if not s.watch and isinstance(self.source, DirectorySource):
            await self.source.stop()
        self._housekeeping = asyncio.create_task(self._retention(), name="retention")
        reconciler = self.reconciler
        if reconciler is not None:  # a fleet-wide change is no time for the periodic settle's scan
            self.gc.busy = lambda: reconciler.slots.in_use > 0 or reconciler.queue_depth > 0
        self.gc.start()
        self.ready.set()

    async def _retention(self, every: float = 3600.0) -> None:
        """Purge meter values older than the owner's retention period, hourly."""
        while True:
            desired = self.desired.desired
            if desired is not None and self.store is not None:
                days = desired.owner.data_retention.meter_values_days
                try:
                    purged = await self.store.purge_meter_values(utc_now() - dt.timedelta(days=days))
                    if purged:
                        log.info("retention: purged %d meter values older than %d days", purged, days)
                except Exception as exc:  # housekeeping must never stop the controller
                    log.warning("retention: purge failed: %s", exc)
            await asyncio.sleep(every)

    @property
    def port(self) -> int:
        assert self.central is not None
        return self.central.port

    async def stop(self) -> None:
        await self.gc.stop()
        for task in list(self._preparing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for close in reversed(self.closers):
            try:
                await close()
            except Exception:  # one feature failing to stop must not keep the rest running
                log.exception("stopping a feature failed")
        if self.api is not None:
            await self.api.stop()
        if self.source is not None:
            with contextlib.suppress(Exception):
                await self.source.stop()
        if self.central is not None:
            await self.central.stop()
        if self.reconciler is not None:
            await self.reconciler.close()
        if self.store is not None:
            await self.store.close()

    async def run_forever(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before starting: a stop asked during start-up is clean too
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
        finally:
            await self.stop()
