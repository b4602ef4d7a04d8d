"""`chargeops run`: the controller process (issue 3 scope: serve chargers from a directory's desired state).

Wires the pieces: load and validate the owner repository (off the event loop), open the store bound to
the owner, start the OCPP central system, and run the per-station follow-up workers. A repository that
does not validate stops the start with every error printed (file and line); the reconciliation loop that
follows a git branch and keeps the last good revision comes with it.

Boundary: process wiring and lifecycle only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
from pathlib import Path

from controller.config.diagnostics import ConfigError
from controller.config.loader import validate_paths
from controller.hw.server import CentralSystem, ServerSettings, utc_now
from controller.runtime.observer import StationWorkers
from controller.runtime.state import DesiredHolder
from controller.store.sqlite import SqliteStore

log = logging.getLogger("chargeops.runtime")


@dataclasses.dataclass(frozen=True)
class ControllerSettings:
    repo: Path
    db_path: Path
    server: ServerSettings = dataclasses.field(default_factory=ServerSettings)


class Controller:
    def __init__(self, settings: ControllerSettings):
        self.settings = settings
        self.desired = DesiredHolder()
        self.store: SqliteStore | None = None
        self.central: CentralSystem | None = None
        self.workers: StationWorkers | None = None
        self.ready = asyncio.Event()
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        result = await asyncio.to_thread(validate_paths, [self.settings.repo])
        if result.desired is None:
            raise ConfigError(result.errors)
        self.desired.offer(result.desired, result.desired.revision)
        self.store = await SqliteStore.open(self.settings.db_path, owner=result.desired.owner.name)
        central = CentralSystem(self.desired, self.store, self.settings.server, clock=utc_now,
                                on_connect=lambda identity, reason: self._schedule(identity, reason))
        self.central = central
        self.workers = StationWorkers(self.desired, self.store, central.port_for, utc_now,
                                      secrets_dir=self.settings.server.secrets_dir, tls=self.settings.server.tls)
        await central.start()
        self._housekeeping = asyncio.create_task(self._retention(), name="retention")
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

    def _schedule(self, identity: str, reason: str) -> None:
        if self.workers is not None:
            self.workers.schedule(identity, reason)

    @property
    def port(self) -> int:
        assert self.central is not None
        return self.central.port

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self.central is not None:
            await self.central.stop()
        if self.workers is not None:
            await self.workers.close()
        if self.store is not None:
            await self.store.close()

    async def run_forever(self) -> None:
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await self.stop()
