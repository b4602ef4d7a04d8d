"""The imperative shell of map publication: gather live status, build, persist, push.

Role: one `Publisher` per controller. It reads the desired state in force and the store's station records,
calls the pure builders (`ocpi.build_locations`, `geojson.feature_collection`), keeps the last publication
in controller state (``ocpi/publication``) so that an EVSE removed or hidden while the controller was down
is still published as REMOVED after a restart, and keeps the OCPI credentials (registration tokens and
registered peers) in controller state (``ocpi/credentials``).

Every read (a GET on the Locations module) rebuilds from the live status, so partners never see stale
statuses; a background loop also rebuilds every ``interval`` seconds so that changes are persisted and
pushed when nobody asks. A change queues push requests (`ocpi_push.push_requests`, previous -> current)
for each target: the partner configured by settings and every registered peer that exposes a Locations
RECEIVER endpoint. Pushes are sent in order, in a thread, each with a timeout, and never retried.

Settings come from the environment (`PublishSettings.from_env`):
  CHARGEOPS_PUBLIC_URL           the controller's public base URL (absolute URLs in versions and paging
                                 links); default: the API's own address
  CHARGEOPS_OCPI_TOKEN_A         a registration token (CREDENTIALS_TOKEN_A) to hand a partner; usable once
  CHARGEOPS_OCPI_PUSH_URL        a partner's Locations Receiver base URL (``.../2.2.1/locations``)
  CHARGEOPS_OCPI_PUSH_TOKEN      the token we send it
  CHARGEOPS_OCPI_PUSH_TIMEOUT    seconds per outgoing request (default 5)
  CHARGEOPS_PUBLISH_INTERVAL     seconds between background rebuilds (default 1; longer when a rebuild
                                 is costly, so that rebuilding takes at most ~10 % of the event loop)

Boundary: I/O and scheduling only; every decision is in the pure modules of this package.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from controller.config.model import DesiredState
from controller.hw.server import utc_now

from . import client
from .geojson import feature_collection
from .ocpi import LiveStation, Obj, Publication, build_locations
from .ocpi_credentials import CredentialsState, receivers
from .ocpi_push import PushRequest, push_requests

if TYPE_CHECKING:
    from controller.runtime.controller import Controller

log = logging.getLogger("chargeops.publish")

PUBLICATION_KEY = "ocpi/publication"
CREDENTIALS_KEY = "ocpi/credentials"


@dataclasses.dataclass(frozen=True, slots=True)
class PublishSettings:
    public_url: str | None = None
    token_a: str | None = None
    push_url: str | None = None
    push_token: str | None = None
    timeout: float = 5.0
    interval: float = 1.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PublishSettings:
        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: float) -> float:
            value = text(name)
            try:
                return float(value) if value is not None and float(value) > 0 else default
            except ValueError:
                log.warning("%s=%r is not a positive number; using %s", name, value, default)
                return default

        return cls(public_url=text("CHARGEOPS_PUBLIC_URL"), token_a=text("CHARGEOPS_OCPI_TOKEN_A"),
                   push_url=text("CHARGEOPS_OCPI_PUSH_URL"), push_token=text("CHARGEOPS_OCPI_PUSH_TOKEN"),
                   timeout=number("CHARGEOPS_OCPI_PUSH_TIMEOUT", 5.0),
                   interval=number("CHARGEOPS_PUBLISH_INTERVAL", 1.0))


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_PAUSE = 30.0  # seconds: the longest a background rebuild waits, however costly the last one was


class Publisher:
    """Builds, persists and pushes the publication of one controller (see the module doc)."""

    def __init__(self, ctl: Controller, settings: PublishSettings, *,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.ctl = ctl
        self.settings = settings
        self.clock = clock
        self.credentials_lock = asyncio.Lock()
        self.pushed: collections.deque[client.PushResult] = collections.deque(maxlen=200)
        self._lock = asyncio.Lock()
        self._previous: dict[str, Obj] | None = None
        # (desired state, live versions, publication built from them): rebuilt only when one of them moved
        self._built: tuple[DesiredState, tuple[int, int], Publication] | None = None
        self._live: tuple[tuple[int, int], dict[str, LiveStation]] | None = None
        self._credentials: CredentialsState | None = None
        self._credentials_loading = asyncio.Lock()
        self._offered: list[str] = []
        self._outbox: list[tuple[client.Target, list[PushRequest]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- inputs --------------------------------------------------------------------------------------

    def desired(self) -> DesiredState | None:
        rec = self.ctl.reconciler
        return rec.desired() if rec is not None else self.ctl.desired.desired  # held removals stay published

    def _live_versions(self) -> tuple[int, int]:
        store, central = self.ctl.store, self.ctl.central
        assert store is not None
        return store.live_version, central.online_version if central is not None else 0

    async def live(self) -> dict[str, LiveStation]:
        """Live status of every station; read from the store again only when live state moved since the
        last read (a new revision alone does not move it: a fleet-wide change re-reads nothing)."""
        store, central = self.ctl.store, self.ctl.central
        assert store is not None
        versions = self._live_versions()  # before the read: a write during it makes the next call read again
        if self._live is not None and self._live[0] == versions:
            return self._live[1]
        connected = {i.upper() for i in central.online()} if central is not None else set()
        out = {}
        for record in await store.list_stations(configuration=False):
            online = record.online and record.identity.upper() in connected
            out[record.identity] = LiveStation.from_record(dataclasses.replace(record, online=online))
        self._live = (versions, out)
        return out

    def _config_time(self, desired: DesiredState) -> dt.datetime:
        rec = self.ctl.reconciler
        committed = rec.committed_at.get(desired.revision) if rec is not None else None
        return committed or self.clock()

    # --- publication ---------------------------------------------------------------------------------

    async def publication(self) -> Publication:
        """The publication now (rebuilt from live status); persisted and queued for push when it changed."""
        async with self._lock:
            store = self.ctl.store
            assert store is not None
            if self._previous is None:
                saved = (await store.get_state(PUBLICATION_KEY)).get(PUBLICATION_KEY)
                self._previous = dict(saved["locations"]) if isinstance(saved, Mapping) else {}
            previous = self._previous
            desired = self.desired()
            if desired is None:
                return Publication(locations=dict(previous))
            versions = self._live_versions()
            if self._built is not None and self._built[0] is desired and self._built[1] == versions:
                return self._built[2]  # nothing it is built from changed: no store read, no rebuild
            built = build_locations(desired, await self.live(), previous, config_time=self._config_time(desired))
            self._built = (desired, versions, built)
            current = dict(built.locations)
            if current != previous:
                await store.put_state(PUBLICATION_KEY, {"revision": desired.revision, "locations": current})
                self._previous = current
                await self._queue_push(previous, current)
            return built

    async def geojson(self) -> Obj:
        desired = self.desired()
        if desired is None:
            return {"type": "FeatureCollection", "features": []}
        return feature_collection(desired, await self.live())

    async def targets(self) -> list[client.Target]:
        out = []
        s = self.settings
        if s.push_url and s.push_token:
            out.append(client.Target("configured partner", s.push_url, s.push_token))
        for peer, url in receivers(await self.credentials()):
            out.append(client.Target(peer.versions_url, url, peer.outbound_token, peer.encode_token,
                                     peer.parties[0] if peer.parties else None))
        return out

    async def _queue_push(self, previous: Mapping[str, Obj], current: Mapping[str, Obj]) -> None:
        for target in await self.targets():
            requests = push_requests(previous, current, receiver_url=target.url)
            if requests:
                self._outbox.append((target, requests))
                self._wake.set()

    async def flush(self) -> None:
        """Send what is queued, in order, in a thread (never on the event loop)."""
        desired = self.desired()
        while self._outbox and desired is not None:
            target, requests = self._outbox.pop(0)
            party = (desired.owner.ocpi_country_code, desired.owner.ocpi_party_id)
            results = await asyncio.to_thread(client.push, target, requests, from_party=party,
                                              timeout=self.settings.timeout)
            self.pushed.extend(results)

    # --- credentials ---------------------------------------------------------------------------------

    async def credentials(self) -> CredentialsState:
        """The registration state; the settings' token A is offered once (a used one never comes back)."""
        async with self._credentials_loading:  # one load: two first callers must not both offer token A
            if self._credentials is None:
                await self._load_credentials()
        assert self._credentials is not None
        return self._credentials

    async def _load_credentials(self) -> None:
        store = self.ctl.store
        assert store is not None
        saved = (await store.get_state(CREDENTIALS_KEY)).get(CREDENTIALS_KEY)
        state = CredentialsState()
        if isinstance(saved, Mapping):
            state = CredentialsState.from_dict(saved.get("state", {}))
            self._offered = [str(x) for x in saved.get("offered", ())]
        token_a = self.settings.token_a
        if token_a and _fingerprint(token_a) not in self._offered:
            self._offered.append(_fingerprint(token_a))
            try:
                await self.save_credentials(state.offer(token_a))
            except BaseException:
                self._offered.remove(_fingerprint(token_a))  # not offered after all: the next load tries again
                raise
        else:
            self._credentials = state

    async def save_credentials(self, state: CredentialsState) -> None:
        store = self.ctl.store
        assert store is not None
        value: dict[str, Any] = {"state": state.to_dict(), "offered": self._offered}
        await store.put_state(CREDENTIALS_KEY, value)
        self._credentials = state

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="map-publication")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        await self.ctl.ready.wait()
        while True:
            started = time.perf_counter()
            try:
                await self.publication()
            except asyncio.CancelledError:
                raise
            except Exception:  # publication must never stop the controller
                log.exception("map publication: rebuild failed")
            # A rebuild of a large fleet costs the event loop real time (10,000 stations during a reconnect
            # storm, when live status moves every second): keep it under ~10 % of the loop's time.
            pause = min(max(self.settings.interval, 9 * (time.perf_counter() - started)), MAX_PAUSE)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("map publication: push failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
