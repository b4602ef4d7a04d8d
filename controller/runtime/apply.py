"""Applying a station's plan: actions go to the charger in phase order, results are recorded.

Phase order (features -> data -> availability -> credentials -> reset); a refused or failed action
stops the rest of its station's plan until the next look (the next phase never runs on a half-applied
earlier one). Each answer is recorded where the next plan will see it: the store (configuration read
back, local-list version and content-addressed snapshot, reservations) and the station's bookkeeping
(values applied, refusals, pending reboot, write-only keys sent, cache generation). Every change sent
is audited: station, what, old -> new (secrets redacted), result, git revision, time. A pending
AuthorizationKey is written to the store before it is sent.

Errors follow the retry contract of `controller.hw.errors`: `ChargerUnavailable` (offline, timeout) is
temporary — the caller retries with backoff after re-reading state; `ChargerRejected` is permanent for
this plan — the station stalls until the desired state or the charger changes.

Boundary: `Plan` + port -> charger calls, store writes, `ApplyResult`.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from controller.config.access import ListEntry
from controller.config.ocpp16_keys import config_key, configuration_index, lookup, values_equal
from controller.hw.auth import key_bytes
from controller.hw.errors import ChargerRejected, ChargerUnavailable
from controller.hw.port import ChargerPort
from controller.reconcilers import Action, Kind, Plan, secret_digest
from controller.runtime.observe import Bookkeeping, refusal_json, to_store_entry
from controller.runtime.slots import Slot
from controller.store.api import Store
from controller.store.records import AuditEntry, ConfigKey, ReservationStatus, StationRecord

log = logging.getLogger("chargeops.runtime.apply")
# (owner, planner hash of a list) -> the hash the store gave its snapshot: a list stored once is only
# referenced afterwards (the store re-checks that it still holds it), not serialised again per station.
_STORED_SNAPSHOTS: dict[tuple[str, str], str] = {}
OK_STATUSES = {"Accepted"}


@dataclasses.dataclass
class ApplyResult:
    sent: int = 0
    accepted: int = 0
    error: str | None = None
    temporary: bool = False  # the error is temporary (retry with backoff)
    refused: list[str] = dataclasses.field(default_factory=list)  # permanent refusals (stall)
    stopped_at: str | None = None  # phase that failed
    # The configuration read back, so the caller can update its copy of the station's record without reading
    # it again; `record_changed`: something else in the record was written (local list, pending key), so the
    # caller must read it again.
    read_back: tuple[ConfigKey, ...] | None = None
    record_changed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.refused


def _upper(key: ConfigKey) -> str:
    return key.upper


def merge_read_back(rec: StationRecord, keys: Sequence[ConfigKey]) -> StationRecord:
    """`rec` as the store holds it after `record_configuration(keys, ..., partial=True)` (an upsert by key name;
    the time of the last full read stays)."""
    conf = rec.configuration  # sorted by upper-cased name, as the store returns it
    merged = list(conf)
    for k in keys:  # the usual read-back: keys the charger already reported, found by bisection
        i = bisect.bisect_left(merged, k.upper, key=_upper)
        if i == len(merged) or merged[i].upper != k.upper:
            break
        merged[i] = k
    else:
        return _with_configuration(rec, tuple(merged))
    by_key = configuration_index((*conf, *keys))
    return _with_configuration(rec, tuple(by_key[u] for u in sorted(by_key)))


def _with_configuration(rec: StationRecord, configuration: tuple[ConfigKey, ...]) -> StationRecord:
    """`dataclasses.replace(rec, configuration=...)` at half the cost (once per station and change);
    tests/runtime/test_read_back_cache.py holds the result to the store's record."""
    return StationRecord(rec.identity, rec.boot, rec.registration_status, rec.last_boot_at, rec.last_seen, rec.online,
                         configuration, rec.configuration_read_at, rec.local_list_version, rec.local_list_hash,
                         rec.connectors, rec.credentials, rec.security_profile)


# A fleet-wide change audits the same detail at every station it reaches (a shared plan's actions share their
# `Change`): one read-only detail per distinct (change, phase, reason, result, ...), which the store encodes
# once (it keeps the text of a read-only detail with the detail). Bounded; the event loop's thread only.
_DETAILS: dict[tuple[object, ...], Mapping[str, object]] = {}
_DETAILS_MAX = 1024


def audit_detail(a: Action, result: str, error: str | None = None) -> Mapping[str, object]:
    """What the audit log says about action `a` answered `result` (secrets redacted; never mutated)."""
    key = (a.change, a.phase, a.reason, result, error, a.secret, len(a.details))
    found = _DETAILS.get(key)
    if found is not None:
        return found
    detail: dict[str, object] = {"phase": a.phase.label, "reason": a.reason, "result": result}
    if a.change is not None:
        change = a.change.to_dict()
        detail["change"] = {**change, "new": "(redacted)"} if a.secret else change
    if a.details:
        detail["entries"] = len(a.details)
    if error:
        detail["error"] = error
    if len(_DETAILS) >= _DETAILS_MAX:
        _DETAILS.clear()
    found = _DETAILS[key] = MappingProxyType(detail)
    return found


class Applier:
    def __init__(self, store: Store, clock: Any, *, revision: str, call_timeout: float = 30.0,
                 on_result: Callable[[str, str, bool], None] | None = None, slot: Slot | None = None):
        self.store = store
        self.slot = slot  # the apply's slot: given back while a call goes unanswered too long
        self.clock = clock
        self.revision = revision
        self.call_timeout = call_timeout
        self.last_status = ""
        self.on_result = on_result  # (action kind, result, heals drift) for metrics
        # Audit entries and the configuration read back go to the store together, in one commit at the end
        # (one trip to the writer per station, not one per write); the caller may add to it first.
        self.batch = store.batch()

    async def apply(self, plan: Plan, port: ChargerPort, book: Bookkeeping,
                    snapshots: Mapping[str, Sequence[ListEntry]], *, commit: bool = True) -> ApplyResult:
        """Apply `plan`; with `commit=False` the collected writes (`self.batch`) are left for the caller to
        commit (after adding its own), otherwise they are committed before returning."""
        result = ApplyResult()
        failed_phase = None
        for action in plan.actions:
            if failed_phase is not None and action.phase > failed_phase:
                break
            if failed_phase is not None:
                continue
            result.sent += 1
            if action.kind is Kind.SEND_LOCAL_LIST or action.secret:  # local list / pending key in the record
                result.record_changed = True
            try:
                ok = await self._one(plan.station, action, port, book, snapshots, result)
            except ChargerUnavailable as exc:
                result.error, result.temporary = str(exc), True
                result.stopped_at = action.phase.label
                self._audit(plan.station, action, "unavailable", str(exc))
                break
            except ChargerRejected as exc:
                result.refused.append(f"{action.kind.value}: {exc}")
                result.stopped_at = action.phase.label
                failed_phase = action.phase
                self._audit(plan.station, action, "rejected", str(exc))
                continue
            if ok:
                result.accepted += 1
            else:
                what = action.config_key or action.kind.value
                result.refused.append(f"{what}: {self.last_status or 'refused'}")
                failed_phase = action.phase
                result.stopped_at = action.phase.label
        if commit:
            await self.batch.commit()
        return result

    async def _one(self, station: str, a: Action, port: ChargerPort, book: Bookkeeping,
                   snapshots: Mapping[str, Sequence[ListEntry]], result: ApplyResult) -> bool:
        now = self.clock()
        p = a.payload  # (the connection copies what it sends)
        if a.kind is Kind.GET_CONFIGURATION:
            with self._waiting():
                report = await port.get_configuration(list(p.get("key") or []), timeout=self.call_timeout)
            keys = tuple(config_key(e.key, e.value, e.readonly) for e in report.entries)
            self.batch.record_configuration(station, keys, now, partial=True)
            for k in p.get("key") or ():
                book.unconfirmed.pop(str(k).upper(), None)  # read back (whatever it says)
            result.read_back = keys if result.read_back is None else (*result.read_back, *keys)
            differs = [k.key for k in keys if k.upper in book.applied
                       and not values_equal(lookup(k.key), k.value or "", book.applied[k.upper])]
            if differs:  # accepted but not what we sent: not converged, the next look plans it again
                self.last_status = "read back differs: " + ", ".join(differs)
                for k in differs:
                    book.applied.pop(k.upper(), None)
                return False
            return True
        if a.kind is Kind.CHANGE_CONFIGURATION and a.secret and str(p["key"]).upper() == "AUTHORIZATIONKEY":
            await self.store.set_pending_key(station, key_bytes(str(p["value"])))  # before it is sent
        with self._waiting():
            reply = await port.transport.call(a.kind.value, p, timeout=self.call_timeout, priority=False,
                                              sensitive=a.secret)
        status = str(reply.get("status", "")) if isinstance(reply, dict) else ""
        self.last_status = status
        if a.kind is Kind.SEND_LOCAL_LIST or a.kind is Kind.CANCEL_RESERVATION:  # these write to the store now
            ok = await self._record_stored(station, a, status, book, snapshots)
        else:
            ok = self._record(a, status, book, now)
        self._audit(station, a, status or "answered", at=now)
        return ok

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        return self.slot.waiting_for_answer() if self.slot is not None else contextlib.nullcontext()

    @staticmethod
    def _record(a: Action, status: str, book: Bookkeeping, now: dt.datetime) -> bool:
        """An answer recorded in the station's bookkeeping; True when the action took effect."""
        p = a.payload
        if a.kind is Kind.CHANGE_CONFIGURATION:
            key, value = str(p["key"]), str(p["value"])
            up = key.upper()
            if status == "Accepted":
                if a.secret:
                    book.write_only_sent[up] = secret_digest(value)
                else:
                    book.applied[up] = value  # the read-back that follows records it in the store
                    book.unconfirmed[up] = value  # until that read-back arrives
                book.refused.pop(up, None)
                return True
            if status == "RebootRequired":
                pending = book.pending_reboot or {"since": now.isoformat(), "keys": {}}
                pending["keys"][up] = value
                book.pending_reboot = pending
                return True  # the reset phase takes it from here
            book.refused[up] = dict(refusal_json(status or "Rejected", value, now))
            return False
        if a.kind is Kind.CLEAR_CACHE:
            if status == "Accepted":
                book.cache_cleared_hash = a.record.get("cacheClearedHash")
                return True
            return False
        if a.kind is Kind.CHANGE_AVAILABILITY:
            if status == "Scheduled":
                book.scheduled_availability[str(p["connectorId"])] = str(p["type"])
                return True
            if status == "Accepted":
                book.scheduled_availability.pop(str(p["connectorId"]), None)
                return True
            return False
        if a.kind is Kind.RESET:
            if status == "Accepted":
                book.pending_reboot = None  # the reboot brings a boot and a fresh read
                return True
            return False
        return status in OK_STATUSES

    async def _record_stored(self, station: str, a: Action, status: str, book: Bookkeeping,
                             snapshots: Mapping[str, Sequence[ListEntry]]) -> bool:
        """An answer to a SendLocalList or CancelReservation, recorded in the store (and bookkeeping)."""
        p = a.payload
        if a.kind is Kind.SEND_LOCAL_LIST:
            if status != "Accepted":
                book.local_list_mismatch = True  # Failed / VersionMismatch / NotSupported: Full next time
                return False
            version = int(p["listVersion"])
            digest = a.record.get("localListHash")
            entries = snapshots.get(str(digest)) if digest else None
            if entries is not None:
                stored = _STORED_SNAPSHOTS.get((self.store.owner, str(digest)))
                if stored is None or not await self.store.record_local_list_ref(station, version, stored):
                    stored = await self.store.record_local_list(station, version,
                                                                [to_store_entry(e) for e in entries])
                    _STORED_SNAPSHOTS[(self.store.owner, str(digest))] = stored
                    if len(_STORED_SNAPSHOTS) > 1024:
                        _STORED_SNAPSHOTS.pop(next(iter(_STORED_SNAPSHOTS)))
            else:
                await self.store.record_local_list_version(station, version)
            book.local_list_mismatch = False
            return True
        # CancelReservation
        await self.store.update_reservation(int(p["reservationId"]), ReservationStatus.CANCELLED)
        return status in ("Accepted", "Rejected")  # Rejected: the charger no longer holds it

    def _audit(self, station: str, a: Action, result: str, error: str | None = None, *,
               at: dt.datetime | None = None) -> None:
        if self.on_result is not None:
            self.on_result(a.kind.value, result, a.drift)
        self.batch.audit(AuditEntry(action=a.kind.value, at=at or self.clock(), station=station,
                                    detail=audit_detail(a, result, error), git_revision=self.revision))
