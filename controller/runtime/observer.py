"""Per-station follow-up work after a connect or a boot: re-observe, and keep de-activated stations inert.

Level-triggered: events only mark a station as needing a look; one worker task per station runs the
look serially (OCPP allows one outstanding call per connection), many stations in parallel, bounded by
a global limit. A look:

1. re-observes: TriggerMessage(StatusNotification) and a full GetConfiguration, recorded in the store
   (a reconnect is not a boot: the charger may have changed while we were away);
2. for a station whose declared security profile is above the one it has confirmed: the next step
   towards it (AuthorizationKey, then SecurityProfile);
3. for a station that is not activated or was removed from the repository: makes it Inoperative
   (ChangeAvailability on connector 0, which persists across reboots) and turns offline authorization
   off (LocalAuthorizeOffline / LocalAuthListEnabled = false) where the charger reports them as true.
   Nothing is pushed blindly: only what differs from what was just read.

Every change sent is audited. Failures are logged and retried at the next event; a charger that
misbehaves only delays its own worker.

Boundary: drives `ChargerPort`s; decisions come from the desired state.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ocpp.v16.enums import AvailabilityType, MessageTrigger

from controller.hw.auth import key_bytes, resolve_secret
from controller.hw.errors import ChargerError
from controller.hw.port import ChargerPort, ConfigurationReport
from controller.runtime.state import DesiredHolder
from controller.store.api import Store
from controller.store.errors import StoreUnavailable
from controller.store.records import AuditEntry, ConfigKey

log = logging.getLogger("chargeops.runtime.observer")
OFFLINE_AUTH_KEYS = ("LocalAuthorizeOffline", "LocalAuthListEnabled")


class StationWorkers:
    def __init__(self, desired: DesiredHolder, store: Store, port_for: Callable[[str], ChargerPort | None],
                 clock: Callable[[], dt.datetime], max_concurrent: int = 200, *,
                 secrets_dir: Path | None = None, env: Mapping[str, str] | None = None, tls: bool = False):
        self.desired = desired
        self.store = store
        self.port_for = port_for
        self.clock = clock
        self._sem = asyncio.Semaphore(max_concurrent)
        self._wanted: dict[str, set[str]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.looks = 0  # completed looks (for tests and metrics)
        self.secrets_dir = secrets_dir
        self.env = os.environ if env is None else env
        self.tls = tls

    def schedule(self, identity: str, reason: str) -> None:
        key = identity.upper()
        self._wanted.setdefault(key, set()).add(reason)
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = asyncio.Event()
            self._tasks[key] = asyncio.create_task(self._run(identity, key, ev), name=f"worker-{identity}")
        ev.set()

    async def close(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        for t in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self._events.clear()

    async def _run(self, identity: str, key: str, ev: asyncio.Event) -> None:
        while True:
            await ev.wait()
            ev.clear()
            reasons = self._wanted.pop(key, set())
            try:
                async with self._sem:
                    await self.look(identity, reasons)
            except (ChargerError, StoreUnavailable) as exc:
                log.warning("station %s: follow-up stopped: %s (retried at the next event)", identity, exc)
            except Exception:
                log.exception("station %s: follow-up failed", identity)
            self.looks += 1

    async def look(self, identity: str, reasons: set[str]) -> None:
        port = self.port_for(identity)
        if port is None:
            return
        report: ConfigurationReport | None = None
        if reasons & {"connect", "boot"}:
            with contextlib.suppress(ChargerError):
                await port.trigger_message(MessageTrigger.status_notification)
            report = await port.get_configuration()
            keys = [ConfigKey(e.key, e.value, e.readonly) for e in report.entries]
            await self.store.record_configuration(identity, keys, self.clock(), complete=True)
        eff = self.desired.effective(identity)
        if eff is None or not eff.operative:
            await self._keep_inert(identity, port, report)
            return
        if eff.security_profile >= 1 and reasons & {"connect", "boot"}:
            await self._step_up_security(identity, port, eff.security_profile, report)

    async def _step_up_security(self, identity: str, port: ChargerPort, target: int,
                                report: ConfigurationReport | None) -> None:
        """Reach the declared security profile step by step (DESIGN §3): AuthorizationKey first (written
        to the store as pending before it is sent, accepted alongside the old one until the charger
        connects with it), then SecurityProfile, which a charger only ever raises. Profile 2 also needs
        the controller to listen with TLS and the charger to trust its certificate."""
        station = self.desired.station(identity)
        rec = await self.store.get_station(identity)
        if station is None or station.authorization_key is None or rec is None:
            return
        secret = resolve_secret(station.authorization_key, self.secrets_dir, self.env)
        if not secret:
            log.warning("station %s: secret %s for its AuthorizationKey is not available", identity,
                        station.authorization_key.describe())
            return
        key = key_bytes(secret)
        confirmed = rec.security_profile or 0
        if confirmed >= target:
            return
        creds = rec.credentials
        key_known = creds.confirmed_fingerprint is not None and creds.accepts(key) and creds.pending_key != key
        if not key_known and creds.pending_key != key:
            await self.store.set_pending_key(identity, key)
            status = await port.change_configuration("AuthorizationKey", key.hex())
            await self._audit(identity, "ChangeConfiguration", {"key": "AuthorizationKey", "new": "(redacted)",
                                                               "result": status.value,
                                                               "why": f"security profile {target} declared"})
            if status.value not in ("Accepted", "RebootRequired"):
                return
        entry = report.get("SecurityProfile") if report is not None else None
        if entry is None or entry.readonly:
            log.info("station %s: does not report SecurityProfile; it keeps profile %d until configured at the "
                     "charger", identity, confirmed)
            return
        step = 2 if target >= 2 and self.tls else 1
        current = (entry.value or "").strip()
        if current.isdigit() and int(current) >= step:
            return  # set already: the charger uses it from its next connection
        status = await port.change_configuration("SecurityProfile", str(step))
        await self._audit(identity, "ChangeConfiguration", {"key": "SecurityProfile", "old": entry.value,
                                                           "new": str(step), "result": status.value,
                                                           "why": f"security profile {target} declared"})

    async def _keep_inert(self, identity: str, port: ChargerPort, report: ConfigurationReport | None) -> None:
        rec = await self.store.get_station(identity)
        statuses = {c.connector_id: c.status for c in rec.connectors} if rec else {}
        if not statuses or any(s != "Unavailable" for s in statuses.values()):
            result = await port.change_availability(0, AvailabilityType.inoperative)
            await self._audit(identity, "ChangeAvailability", {"connector": 0, "to": "Inoperative",
                                                              "result": result.value,
                                                              "why": "station not activated or removed"})
        if report is None:
            report = await port.get_configuration(list(OFFLINE_AUTH_KEYS))
        for k in OFFLINE_AUTH_KEYS:
            entry = report.get(k)
            if entry is None or entry.readonly or (entry.value or "").strip().lower() == "false":
                continue
            status = await port.change_configuration(k, "false")
            await self._audit(identity, "ChangeConfiguration", {"key": k, "old": entry.value, "new": "false",
                                                               "result": status.value,
                                                               "why": "station not activated or removed"})

    async def _audit(self, identity: str, action: str, detail: dict[str, object]) -> None:
        log.info("station %s: %s %s", identity, action, detail)
        with contextlib.suppress(StoreUnavailable):
            await self.store.audit(AuditEntry(action=action, at=self.clock(), station=identity, detail=detail,
                                              git_revision=self.desired.revision))
