"""The reconciliation loop: every live charger is made to match the desired state, continuously.

Level-triggered (controller-runtime style): events — a new revision, a charger connecting or booting, a
status change, a session ending, a timer — only mark a station as needing a look; a look re-reads
desired and observed state and recomputes the plan, so events can be coalesced or lost without harm.

One worker task per station (OCPP allows one outstanding call per connection; driver-facing calls go
ahead of reconcile calls inside the connection), many stations in parallel, a global limit on stations
applying at once. A look:

1. reads the charger after a connect or boot (a reconnect is not a boot) and periodically with jitter, to
   see drift;
2. plans (`controller.reconcilers.plan_station`) against the desired state in force — the newest valid
   revision, with mass removals held until confirmed (`safety`);
3. applies the plan unless the station is suspended (observe only) or waiting for its rollout wave
   (`rollout`; data-phase work such as a card block is never held);
4. writes its status on every exit path, and decides when to look next: the planner's next review (a
   price window, a daylight-saving change), a retry with exponential backoff and jitter after a temporary
   error, nothing after a permanent refusal until the desired state or the charger changes, and the
   periodic drift read.

Boundary: the imperative shell around the pure planners; charger I/O through `ChargerPort`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from controller.config.access import ListEntry
from controller.config.effective import effective_station
from controller.config.model import DesiredState
from controller.hw.auth import key_bytes, resolve_secret
from controller.hw.errors import ChargerError
from controller.hw.port import ChargerPort
from controller.reconcilers import Kind, ObservedStation, Op, Phase, Plan
from controller.reconcilers.planner import PendingReservation, local_list_snapshot
from controller.runtime.apply import Applier, merge_read_back
from controller.runtime.observe import (
    Bookkeeping,
    ConfigIndexes,
    ext_key,
    load_bookkeeping,
    observed_from_store,
    observed_now,
    read_charger,
    save_bookkeeping,
)
from controller.runtime.planshare import SharedPlans
from controller.runtime.rollout import Rollout
from controller.runtime.safety import Held, guard
from controller.runtime.slots import ApplySlots, Slot
from controller.runtime.state import DesiredHolder
from controller.runtime.status import Health, StationStatus, Sync
from controller.store.api import Store
from controller.store.errors import StoreClosed, StoreUnavailable
from controller.store.records import AuditEntry, ReservationStatus, StationRecord

log = logging.getLogger("chargeops.runtime.reconcile")
ROLLOUT_KEY = "rollout/current"
STATUS_DEBOUNCE = 0.25  # seconds: StatusNotifications arriving together make one look
# events after which a station's record is read from the store again (the charger reported something);
# other looks (a revision, a retry, a timer, after an apply) reuse the last read
MIN_RETRY_DELAY = 0.05  # seconds: even a retry whose backoff was spent waiting goes through the queue again
_RELOAD_REASONS = frozenset({"connect", "boot", "status", "drift", "suspend", "security", "applied"})
# looks that come in bulk (a revision for every station, a wave, the periodic drift read); any other reason
# (a retry, a connect, a follow-up) takes the next free apply slot ahead of them
_BULK_REASONS = frozenset({"revision", "wave", "drift", "rollout"})
_READ_REASONS = frozenset({"connect", "drift"})  # looks that read the whole configuration again
CONFIRM_PREFIX = "confirm/"
SUSPEND_PREFIX = "suspend/"
APPLIED_KEY = "revision/applied"


@dataclasses.dataclass(frozen=True)
class ReconcileSettings:
    max_concurrent_applies: int = 100
    drift_interval: float = 3600.0  # seconds between configuration reads of a connected charger
    drift_jitter: float = 0.2
    retry_base: float = 5.0
    retry_max: float = 300.0
    call_timeout: float = 30.0
    # an apply whose call has gone unanswered this long gives its slot to the next station; None: as long as
    # the fleet's answers say a call is lost (round trip + 4 deviations), at most a third of call_timeout
    # (see controller/runtime/slots.py)
    slot_release_after: float | None = None

    @property
    def release_after(self) -> float:
        return self.slot_release_after if self.slot_release_after is not None else self.call_timeout / 3


class ReconcileMetrics(Protocol):
    """What the reconciler reports as it works (one call per event; `controller.runtime.api` counts them)."""

    def applied(self, action: str, result: str, drift: bool) -> None:
        """An action answered `result` (a drift correction when `drift` and Accepted)."""

    def reconciled(self, seconds: float) -> None:
        """One station's plan applied, in `seconds`."""

    def converged(self, since_commit: float | None) -> None:
        """A station reached the revision in force, `since_commit` seconds after its commit (None: unknown)."""


class _Wakeup:
    """A station worker's wake-up call: `asyncio.Event` for its one waiter, without the generality (the
    worker waits on a future of its own; `set` wakes it or leaves `pending` for its next turn)."""

    __slots__ = ("pending", "waiter")

    def __init__(self) -> None:
        self.pending = False
        self.waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        if not self.pending:
            self.pending = True
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


class FleetReconciler:
    def __init__(self, holder: DesiredHolder, store: Store, port_for: Callable[[str], ChargerPort | None],
                 clock: Callable[[], dt.datetime], settings: ReconcileSettings | None = None, *,
                 secrets_dir: Path | None = None, env: Mapping[str, str] | None = None, tls: bool = False):
        self.holder = holder
        self.store = store
        self.port_for = port_for
        self.clock = clock
        self.settings = settings or ReconcileSettings()
        self.secrets_dir = secrets_dir
        self.env = os.environ if env is None else env
        self.tls = tls
        self.status: dict[str, StationStatus] = {}
        self.rollout: Rollout | None = None
        self.held: Held | None = None
        self.suspended: set[str] = set()
        self.confirmed: set[str] = set()
        self.applied_revision: str | None = None
        self._in_force: DesiredState | None = None
        self._previous: DesiredState | None = None
        self.slots = ApplySlots(self.settings.max_concurrent_applies, self.settings.release_after,
                                adaptive=self.settings.slot_release_after is None)
        self._wanted: dict[str, set[str]] = {}
        self._events: dict[str, _Wakeup] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._failures: dict[str, int] = {}
        self._stall: dict[str, str] = {}  # identity -> fingerprint of (revision, observed) that was refused
        self._rnd = random.Random()
        self.looks = 0
        self._closed = False
        self._rollout_flush: asyncio.TimerHandle | None = None
        self._rollout_written: tuple[str, int, str | None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        # the loop `start` ran on (hot paths ask it once: asyncio.get_running_loop is a getpid system call)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reservations_loading: asyncio.Future[dict[str, tuple[PendingReservation, ...]]] | None = None
        self._records: dict[str, StationRecord] = {}  # last read of each station (refreshed on events)
        self._books: dict[str, Bookkeeping] = {}  # the reconciler is the only writer of bookkeeping
        self._indexes = ConfigIndexes()  # each station's configuration by key, kept with its last read
        self.plans = SharedPlans()  # stations with equal planning inputs share one plan (a fleet-wide change)
        self._reservations: tuple[float, dict[str, tuple[PendingReservation, ...]]] | None = None
        self.sessions_of: Callable[[str], frozenset[int]] | None = None  # running sessions, from memory
        self.connected_since: Callable[[str], dt.datetime | None] | None = None  # current connection start
        self.committed_at: dict[str, dt.datetime] = {}  # revision -> commit (or load) time
        self.metrics: ReconcileMetrics | None = None  # what the metrics endpoint counts (api.build_metrics)

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        state = await self.store.get_state("")
        self.confirmed = {k[len(CONFIRM_PREFIX):] for k in state if k.startswith(CONFIRM_PREFIX)}
        self.suspended = {k[len(SUSPEND_PREFIX):] for k in state if k.startswith(SUSPEND_PREFIX)}
        applied = state.get(APPLIED_KEY)
        self.applied_revision = applied if isinstance(applied, str) else None
        ro = state.get(ROLLOUT_KEY)
        if isinstance(ro, dict):
            self.rollout = Rollout.from_json(ro)
        desired = self.holder.desired
        for rec in await self.store.list_stations():  # stations removed while the controller was away
            if desired is not None and desired.station_for_identity(rec.identity) is None:
                self.status.setdefault(rec.identity.upper(), StationStatus(rec.identity, removed=True))
        self.on_revision()

    async def close(self) -> None:
        if self._rollout_flush is not None:
            self._flush_rollout()
        for w in list(self._writes):
            with contextlib.suppress(Exception):
                await w
        self._closed = True
        for h in self._timers.values():
            h.cancel()
        for t in self._tasks.values():
            t.cancel()
        for t in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        self._events.clear()

    # ------------------------------------------------------------------------------------ desired state

    def desired(self) -> DesiredState | None:
        new = self.holder.desired
        if new is None:
            return None
        if self._in_force is None or self._in_force.revision != new.revision or (
                self.held is not None and new.revision in self.confirmed):
            if self._in_force is not None and self._in_force.revision != new.revision:
                self._previous = self._in_force
            in_force, held = guard(self._previous, new, new.revision in self.confirmed)
            self._in_force, self.held = in_force, held
            if held is not None:
                log.warning("%s", held.reason)
        return self._in_force

    def on_revision(self) -> None:
        """A new desired state is in the holder: start a rollout for it and look at every station."""
        desired = self.desired()
        if desired is None:
            return
        if self.rollout is None or self.rollout.revision != desired.revision:
            ro = desired.owner.rollout
            self.rollout = Rollout.start(desired.revision, [s.identity for s in desired.stations.values()],
                                         ro.waves, ro.failure_threshold_percent, ro.min_stations_for_waves)
            self._stall.clear()
            self._persist_rollout()
        statuses = self.status
        for st in desired.stations.values():
            if st.identity.upper() not in statuses:
                statuses[st.identity.upper()] = StationStatus(st.identity, st.name)
            self.enqueue(st.identity, "revision")
        for key, status in list(self.status.items()):
            if desired.station_for_identity(key) is None:
                status.removed = True
                self.enqueue(status.identity, "revision")

    async def confirm(self, revision: str) -> bool:
        """Release the held removals of `revision` (recorded with the SHA)."""
        desired = self.holder.desired
        if desired is None or desired.revision != revision:
            return False
        await self.store.put_state(CONFIRM_PREFIX + revision, {"at": self.clock().isoformat()})
        await self.store.audit(AuditEntry("ConfirmRemovals", self.clock(), {"revision": revision},
                                          git_revision=revision))
        self.confirmed.add(revision)
        self.on_revision()
        return True

    async def set_suspended(self, identity: str, suspended: bool) -> None:
        key = identity.upper()
        if suspended:
            await self.store.put_state(SUSPEND_PREFIX + key, {"at": self.clock().isoformat()})
            self.suspended.add(key)
        else:
            await self.store.delete_state(SUSPEND_PREFIX + key)
            self.suspended.discard(key)
        self.enqueue(identity, "suspend")

    async def resume_rollout(self) -> None:
        """Resume a paused rollout: the stations that failed are tried again (their refusals forgotten)."""
        if self.rollout is not None:
            for identity in sorted(self.rollout.failed):
                await self.forget_refusals(identity)
            self.rollout.resume()
            self._persist_rollout()
            for identity in self.rollout.order:
                self.enqueue(identity, "rollout")

    async def forget_refusals(self, identity: str) -> None:
        """Let refused changes be tried again (after a boot, or when an operator asks)."""
        key = identity.upper()
        book = self._books.get(key)
        if book is None:  # a look may load it meanwhile: both must work on the one copy (see `look`)
            book = self._books.setdefault(key, await load_bookkeeping(self.store, identity))
        if book.refused or book.local_list_mismatch:
            book.refused.clear()
            await save_bookkeeping(self.store, identity, book)
        self._stall.pop(key, None)

    def _rollout_of(self, revision: str) -> Rollout | None:
        """The rollout if it is `revision`'s: a look that began before a newer revision came in reports
        nothing to the newer revision's rollout (its outcome says nothing about the newer plan)."""
        ro = self.rollout
        return ro if ro is not None and ro.revision == revision else None

    def _persist_rollout(self, urgent: bool = False) -> None:
        """Persist rollout progress: at once for a new rollout, a wave change, a pause or a resume;
        otherwise at most once a second (the state holds every identity: writing it per station would cost
        O(N) per station). Progress lost in a crash is harmless: converged stations plan nothing again."""
        if self.rollout is None:
            return
        wave_state = (self.rollout.revision, self.rollout.wave, self.rollout.paused)
        if wave_state != self._rollout_written:
            urgent = True
        if not urgent:
            if self._rollout_flush is None:
                self._rollout_flush = asyncio.get_running_loop().call_later(1.0, self._flush_rollout)
            return
        self._flush_rollout()

    def _flush_rollout(self) -> None:
        if self._rollout_flush is not None:
            self._rollout_flush.cancel()
            self._rollout_flush = None
        if self.rollout is None:
            return
        self._rollout_written = (self.rollout.revision, self.rollout.wave, self.rollout.paused)
        task = asyncio.get_running_loop().create_task(self._write_state(ROLLOUT_KEY, self.rollout.to_json()))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_state(self, key: str, value: object) -> None:
        """A write of the reconciler's own state (rollout progress, the revision applied) in a task of its own:
        never raises. Unavailable, or closed while the reconciler stops (a look that ended during `close`),
        the write is dropped: progress is written again at the next step, and lost progress only makes
        converged stations look again and plan nothing."""
        try:
            await self.store.put_state(key, value)
        except (StoreUnavailable, StoreClosed):
            pass
        except Exception:
            log.exception("writing the reconciler's %s failed", key)

    # ------------------------------------------------------------------------------------ the queue

    def enqueue(self, identity: str, reason: str, delay: float = 0.0) -> None:
        """Level-triggered: ask for a look at a station (now, or after `delay` seconds)."""
        key = identity.upper()
        if self._closed:
            return
        if reason == "status" and delay == 0:
            delay = STATUS_DEBOUNCE  # a boot reports every connector at once: one look for all of them
        if delay > 0:
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._enqueue_now, identity, reason)
            return
        self._enqueue_now(identity, reason)

    def _enqueue_now(self, identity: str, reason: str) -> None:
        key = identity.upper()
        if self._closed:
            return
        self._timers.pop(key, None)
        self._wanted.setdefault(key, set()).add(reason)
        ev = self._events.get(key)
        if ev is None:
            ev = self._events[key] = _Wakeup()
            self._tasks[key] = asyncio.get_running_loop().create_task(self._worker(identity, key, ev),
                                                                      name=f"reconcile-{identity}")
        ev.set()

    @property
    def queue_depth(self) -> int:
        return sum(1 for ev in self._events.values() if ev.pending)

    async def _worker(self, identity: str, key: str, ev: _Wakeup) -> None:
        loop = self._loop or asyncio.get_running_loop()
        while True:
            if not ev.pending:  # (inline: a look per station per revision waits here)
                waiter = ev.waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    ev.waiter = None
            ev.pending = False
            reasons = self._wanted.pop(key, set())
            try:
                await self.look(identity, reasons)
            except Exception:  # one station's trouble never stops the others
                log.exception("station %s: look failed", identity)
                st = self.status.setdefault(key, StationStatus(identity))
                st.last_error = "internal error (see the controller log)"
                st.health = max(st.health, Health.DEGRADED)
            self.looks += 1

    # ------------------------------------------------------------------------------------ a look

    async def look(self, identity: str, reasons: set[str]) -> None:
        key = identity.upper()
        now = self.clock()
        desired = self.desired()
        if desired is None:
            return
        station = desired.station_for_identity(identity)
        st = self.status.get(key)
        if st is None:
            st = self.status[key] = StationStatus(identity, station.name if station else None)
        st.name = station.name if station else st.name
        st.removed = station is None
        st.suspended = key in self.suspended
        st.held = self.held is not None and key in {i.upper() for i in self.held.stations}
        st.last_look_at = now
        port = self.port_for(identity)
        st.online = port is not None
        try:
            if "boot" in reasons:  # a rebooted charger (maybe new firmware) may now take what it refused
                await self.forget_refusals(identity)
            cached = self._records.get(key)
            if cached is None or not _RELOAD_REASONS.isdisjoint(reasons):
                rec = await self.store.get_station(identity)
            else:
                rec = cached
            read_now = port is not None and self._needs_read(identity, reasons, rec)
            if read_now:
                assert port is not None
                await read_charger(port, self.store, identity, rec, now, statuses="connect" in reasons)
                rec = await self.store.get_station(identity)
                self._schedule_drift(identity)
            if rec is not None:
                self._records[key] = rec
            book = self._books.get(key)
            if book is None:  # a copy stored meanwhile wins (forget_refusals may have cleared a refusal in it)
                book = self._books.setdefault(key, await load_bookkeeping(self.store, identity))
            if read_now:
                book.unconfirmed.clear()  # the whole configuration was just read: nothing waits for a read-back
            sessions = self.sessions_of(identity) if self.sessions_of is not None else None
            now_seen = (observed_now(rec, book, online=port is not None, sessions=sessions, indexes=self._indexes)
                        if rec is not None and sessions is not None else None)
            if now_seen is None:
                observed, accepted = await observed_from_store(
                    self.store, identity, rec, book, online=port is not None, sessions=sessions,
                    indexes=self._indexes)
            else:
                observed, accepted = now_seen
        except (StoreUnavailable, ChargerError) as exc:
            self._look_failed(identity, st, exc)
            return
        # Planning and applying hold an apply slot: a revision enqueues every station at once, and planning
        # them all in one go would keep the event loop from the answers to the calls already sent (at 10,000
        # stations, for about as long as a call timeout). The plan is made as of when the slot is had, not as of
        # the start of the look: a slot may be a while coming.
        slots = self.slots  # (`async with slots.hold()`, without its two coroutines when a slot is free)
        slot = slots.take_now() or await slots.take(urgent=not reasons <= _BULK_REASONS)
        try:
            await self._plan_and_apply(identity, st, desired, rec, port, book, observed, accepted, slot)
        finally:
            slots.give_back(slot)

    def _look_failed(self, identity: str, st: StationStatus, exc: Exception) -> None:
        if isinstance(exc, StoreUnavailable):
            st.last_error, st.health = f"store unavailable: {exc}", max(st.health, Health.DEGRADED)
        else:
            st.last_error = str(exc)
        self._retry(identity, st)

    async def _plan_and_apply(self, identity: str, st: StationStatus, desired: DesiredState,
                              rec: StationRecord | None, port: ChargerPort | None, book: Bookkeeping,
                              observed: ObservedStation | None, accepted: tuple[ListEntry, ...] | None,
                              slot: Slot) -> None:
        key = identity.upper()
        try:
            pending = self._fresh_reservations(identity)
            if pending is None:
                pending = await self._pending_reservations(identity)
            # the plan is made as of now, read after the last wait and right before planning: looks that plan
            # in turn plan at increasing times, so a plan shared by its class is never handed to a look that
            # read the clock before the plan was made (a look that waited for the reservations read while
            # another planned would otherwise plan alone, and miss the class)
            now = self.clock()
            secrets = self._secrets(desired, identity)
            plan = self.plans.plan(desired, identity, observed, now, pending_reservations=pending,
                                   snapshot_entries=accepted, secrets=secrets)
        except (StoreUnavailable, ChargerError) as exc:
            self._look_failed(identity, st, exc)
            return
        if observed is not None and observed.refused.keys() != book.refused.keys():
            # refusals forgotten (resume_rollout) while this look waited: its plan still honours them, and
            # concluding from it would call the station converged (or refused) on a stale view: plan again
            self.enqueue(identity, "refusals")
            return
        st.notes = [n.text for n in plan.notes]
        st.pending_changes = sum(1 for a in plan.actions if a.op is not Op.READ)
        if rec is None:
            st.sync, st.health = Sync.UNKNOWN, Health.MISSING
            return
        if port is None or observed is None or not observed.observed:
            st.sync = Sync.UNKNOWN
            st.health = Health.OFFLINE if rec is not None else Health.MISSING
            return  # an offline charger converges when it comes back (the connect triggers a look)
        if not plan.has_changes:
            refused = self._still_refused(desired, identity, observed, book)
            if refused:  # not retried in a loop, but not converged either
                st.sync, st.health, st.stalled = Sync.OUT_OF_SYNC, Health.DEGRADED, True
                st.last_error = "refused by the charger: " + ", ".join(refused)
                if (ro := self._rollout_of(desired.revision)) is not None:
                    ro.report(identity, converged=False, failed=True, had_changes=True)
                    self._persist_rollout()
                return
            if not st.suspended and await self._security_step(identity, desired, port, rec):
                self.enqueue(identity, "security")
                return
            self._converged(st, desired.revision, had_changes=False)
            self._next(identity, plan)
            return
        st.sync = Sync.OUT_OF_SYNC
        if st.suspended:
            st.health = Health.PROGRESSING
            st.notes.append("suspended: observed only, nothing is written")
            return
        planned = plan  # what a refusal stalls on (before the wave filter); hashed only when needed
        if key in self._stall and self._stall[key] == self._fingerprint(desired.revision, planned):
            st.health, st.stalled = Health.DEGRADED, True
            return  # refused before for exactly this: wait until the desired state or the charger changes
        actions = plan.actions
        wave_ok = self.rollout is None or self.rollout.admits(identity)
        if not wave_ok:
            actions = tuple(a for a in actions if a.phase is Phase.DATA)
            st.waiting_for_wave = (self.rollout.wave_of(identity) + 1) if self.rollout else None
            if not actions:
                st.health = Health.PROGRESSING
                return
        else:
            st.waiting_for_wave = None
        if actions is not plan.actions:
            plan = dataclasses.replace(plan, actions=actions)
        st.health = Health.PROGRESSING
        st.last_attempted_revision = desired.revision
        loop = self._loop or asyncio.get_running_loop()
        started = loop.time()
        metrics = self.metrics
        applier = Applier(self.store, self.clock, revision=desired.revision, call_timeout=self.settings.call_timeout,
                          on_result=metrics.applied if metrics is not None else None, slot=slot)
        # the list's entries, content-addressed, for a SendLocalList in the plan (most plans have none)
        snapshots: dict[str, tuple[ListEntry, ...]] = {}
        if any(a.kind is Kind.SEND_LOCAL_LIST for a in plan.actions):
            snap = local_list_snapshot(desired, identity, observed, now)
            if snap is not None:
                snapshots[snap[0]] = snap[1]
        result = await applier.apply(plan, port, book, snapshots, commit=False)
        applier.batch.put_state(ext_key(identity), book.to_json())
        # the charger's part is done: its slot goes to the next station while these writes wait for their commit
        # (which the store may hold a moment to share it with other stations': `Engine.bulk_linger`)
        self.slots.give_back(slot)
        try:  # audit, read-back and bookkeeping: one commit
            await applier.batch.commit()
        except StoreUnavailable as exc:
            self._records.pop(key, None)  # the store may not hold what was read back: read it again
            result.error, result.temporary = f"store unavailable: {exc}", True
        if metrics is not None:
            metrics.reconciled(loop.time() - started)
        if result.temporary:
            st.last_error = result.error
            self._retry(identity, st, waited=loop.time() - started)
            if wave_ok and (ro := self._rollout_of(desired.revision)) is not None:
                ro.report(identity, converged=False, failed=True, had_changes=True)
                self._persist_rollout()
            return
        if result.refused or result.error:
            st.last_error = "; ".join(result.refused) or result.error
            st.health, st.stalled = Health.DEGRADED, True
            self._stall[key] = self._fingerprint(desired.revision, planned)
            if wave_ok and (ro := self._rollout_of(desired.revision)) is not None:
                ro.report(identity, converged=False, failed=True, had_changes=True)
                self._persist_rollout()
            return
        self._failures.pop(key, None)
        if wave_ok and (ro := self._rollout_of(desired.revision)) is not None:
            ro.changed.add(key)
        complete = wave_ok and result.accepted == result.sent and not book.pending_reboot
        if complete and not self._security_pending(identity, rec, secrets):
            # every action accepted and read back as sent: converged, no second look needed
            if rec is not None and result.read_back is not None and not result.record_changed:
                merged = self._records[key] = merge_read_back(rec, result.read_back)
                self._indexes.read_back(identity, rec.configuration, merged.configuration, result.read_back)
            else:
                self._records.pop(key, None)
            self._converged(st, desired.revision, had_changes=True)
            self._next(identity, plan)
        else:  # something is left (a reboot, the next security step, a later wave): look again now
            self.enqueue(identity, "applied")

    def _needs_read(self, identity: str, reasons: set[str], rec: StationRecord | None) -> bool:
        """Read the charger after a connect (a reconnect is not a boot), for drift, or when never read. A
        boot right after a connect needs no second read when the first one happened on this connection
        (chargers boot before they connect, so that read already saw the booted charger)."""
        if rec is None or rec.configuration_read_at is None or not _READ_REASONS.isdisjoint(reasons):
            return True
        if "boot" not in reasons:
            return False
        since = self.connected_since(identity) if self.connected_since is not None else None
        return since is None or rec.configuration_read_at < since

    def _converged(self, st: StationStatus, revision: str, *, had_changes: bool) -> None:
        key = st.identity.upper()
        if st.sync is not Sync.SYNCED or st.last_applied_revision != revision:
            st.converged_at = self.clock()
            if self.metrics is not None:
                committed = self.committed_at.get(revision)
                self.metrics.converged(None if committed is None else (st.converged_at - committed).total_seconds())
        st.sync, st.health = Sync.SYNCED, Health.HEALTHY
        st.last_applied_revision = revision
        st.last_error, st.stalled, st.next_retry_at, st.waiting_for_wave = None, False, None, None
        self._failures.pop(key, None)
        self._stall.pop(key, None)
        ro = self._rollout_of(revision)  # a look planned on an older revision is no progress of the newer one
        if ro is not None:
            wave_before = ro.wave
            ro.report(st.identity, converged=True, failed=False, had_changes=had_changes)
            self._persist_rollout()
            if ro.wave != wave_before:
                for identity in ro.wave_members(ro.wave):
                    self.enqueue(identity, "wave")
            if ro.done and self.applied_revision != revision:
                self.applied_revision = revision
                task = asyncio.get_running_loop().create_task(self._write_state(APPLIED_KEY, revision))
                task.add_done_callback(lambda t: t.exception())

    # ------------------------------------------------------------------------------------ helpers

    def _fingerprint(self, revision: str, plan: Plan) -> str:
        return hashlib.sha256(f"{revision}|{plan.content_hash()}".encode()).hexdigest()

    def _retry(self, identity: str, st: StationStatus, waited: float = 0.0) -> None:
        """Look again after exponential backoff with jitter, counted from the start of the failed attempt:
        an attempt that failed by timing out has already waited `waited` seconds of it."""
        key = identity.upper()
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        delay = min(self.settings.retry_max, self.settings.retry_base * 2 ** (n - 1))
        delay *= 1 + self._rnd.uniform(-0.2, 0.2)
        delay = max(MIN_RETRY_DELAY, delay - waited)
        st.next_retry_at = self.clock() + dt.timedelta(seconds=delay)
        if st.online:
            st.health = max(st.health, Health.PROGRESSING)
        self.enqueue(identity, "retry", delay=delay)

    def _next(self, identity: str, plan: Plan) -> None:
        st = self.status[identity.upper()]
        if plan.next_review_at is not None:
            delay = max(0.0, (plan.next_review_at - self.clock()).total_seconds())
            st.next_look_at = plan.next_review_at
            self.enqueue(identity, "review", delay=delay + 0.5)

    def _schedule_drift(self, identity: str) -> None:
        base = self.settings.drift_interval
        delay = base * (1 + self._rnd.uniform(-self.settings.drift_jitter, self.settings.drift_jitter))
        loop = asyncio.get_running_loop()
        key = identity.upper() + "#drift"
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = loop.call_later(delay, self.enqueue, identity, "drift")

    def _fresh_reservations(self, identity: str, max_age: float = 2.0) -> Sequence[PendingReservation] | None:
        """`_pending_reservations` without a coroutine while the fleet-wide read is fresh (most looks); None
        when it is not."""
        cached = self._reservations
        if cached is None or (self._loop or asyncio.get_running_loop()).time() - cached[0] > max_age:
            return None
        return cached[1].get(identity.upper(), ())

    async def _pending_reservations(self, identity: str, max_age: float = 2.0) -> Sequence[PendingReservation]:
        """Pending reservations of a station, from one fleet-wide read at most every `max_age` seconds."""
        fresh = self._fresh_reservations(identity, max_age)
        if fresh is not None:
            return fresh
        loop = self._loop or asyncio.get_running_loop()
        loading = self._reservations_loading
        if loading is not None:  # one read serves every look waiting for it
            table = await asyncio.shield(loading)
            return table.get(identity.upper(), ())
        loading = self._reservations_loading = loop.create_future()
        try:
            recs = await self.store.list_reservations(statuses=[ReservationStatus.ACCEPTED,
                                                                ReservationStatus.REQUESTED])
            lists: dict[str, list[PendingReservation]] = {}
            for r in recs:
                lists.setdefault(r.station.upper(), []).append(PendingReservation(r.id, r.connector_id, r.expiry))
            by_station = {k: tuple(v) for k, v in lists.items()}
            self._reservations = (loop.time(), by_station)
            loading.set_result(by_station)
        except BaseException as exc:
            loading.set_exception(exc)
            loading.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            self._reservations_loading = None
        return by_station.get(identity.upper(), ())

    def _still_refused(self, desired: DesiredState, identity: str, observed: ObservedStation,
                       book: Bookkeeping) -> list[str]:
        """Keys the charger refused (NotSupported / Rejected) for the value still declared."""
        station = desired.station_for_identity(identity)
        if station is None or not book.refused:
            return []
        eff = effective_station(desired, station, observed.boot)
        wanted = {k.upper(): v for k, v in eff.ocpp_configuration.items()}
        return sorted(f"{k} ({r.get('status')})" for k, r in book.refused.items()
                      if k in wanted and str(r.get("value")) == wanted[k])

    def _security_pending(self, identity: str, rec: StationRecord | None, secrets: Mapping[str, str]) -> bool:
        """The station's declared security profile is above the one it confirmed (more steps to come)."""
        if rec is None or not secrets:  # (`_secrets` of the look: none, no security profile to raise)
            return False
        eff = self.holder.effective(identity)
        return eff is not None and (rec.security_profile or 0) < min(eff.security_profile, 2 if self.tls else 1)

    async def _security_step(self, identity: str, desired: DesiredState, port: ChargerPort,
                             rec: StationRecord) -> bool:
        """Raise SecurityProfile one step once the key is on the charger (DESIGN §3: key first, then the
        profile, which a charger only ever raises). True when a change was sent."""
        station = desired.station_for_identity(identity)
        if station is None or not self._secrets(desired, identity):
            return False
        eff = self.holder.effective(identity)
        target = eff.security_profile if eff is not None else 0
        step = 2 if target >= 2 and self.tls else min(target, 1)
        if step == 0 or (rec.security_profile or 0) >= step:
            return False
        entry = next((k for k in rec.configuration if k.upper == "SECURITYPROFILE"), None)
        if entry is None or entry.readonly:
            return False
        current = (entry.value or "").strip()
        if current.isdigit() and int(current) >= step:
            return False  # set: the charger uses it from its next connection
        result = await port.change_configuration("SecurityProfile", str(step))
        await self.store.audit(AuditEntry("ChangeConfiguration", self.clock(), {
            "phase": "credentials", "change": {"field": "SecurityProfile", "old": entry.value, "new": str(step)},
            "result": result.value, "reason": f"security profile {target} declared"}, station=identity,
            git_revision=desired.revision))
        from controller.store.records import ConfigKey

        if result.value == "Accepted":
            await self.store.record_configuration(identity, [ConfigKey(entry.key, str(step), False)], self.clock(),
                                                  partial=True)
        return result.value == "Accepted"

    def _secrets(self, desired: DesiredState, identity: str) -> dict[str, str]:
        station = desired.station_for_identity(identity)
        if station is None or station.authorization_key is None:
            return {}
        eff = self.holder.effective(identity)
        if eff is None or eff.security_profile < 1:
            return {}
        secret = resolve_secret(station.authorization_key, self.secrets_dir, self.env)
        return {"AuthorizationKey": key_bytes(secret).hex()} if secret else {}

    # ------------------------------------------------------------------------------------ views

    def fleet(self) -> dict[str, object]:
        statuses = list(self.status.values())
        by_sync: dict[str, int] = {}
        by_health: dict[str, int] = {}
        for s in statuses:
            by_sync[s.sync.value] = by_sync.get(s.sync.value, 0) + 1
            by_health[s.health.label] = by_health.get(s.health.label, 0) + 1
        desired = self.holder.desired
        failure = self.holder.last_failure
        return {
            "revision": desired.revision if desired else None,
            "appliedRevision": self.applied_revision,
            "failedRevision": None if failure is None else {
                "revision": failure.revision, "at": failure.at.isoformat(),
                "errors": [{"location": d.location(), "field": d.field, "message": d.message}
                           for d in failure.errors[:20]]},
            "held": self.held.to_dict() if self.held else None,
            "rollout": self.rollout.summary() if self.rollout else None,
            "stations": len(statuses),
            "sync": by_sync,
            "health": by_health,
            "queueDepth": self.queue_depth,
        }
