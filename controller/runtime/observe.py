"""Observed state of a charger, assembled from the store (what it reported and accepted) plus the
controller's own bookkeeping (values it applied, refusals, pending reboot, write-only keys sent, list
mismatch, cache generation), which is persisted as a small JSON entry per station so a restarted
controller neither starts blind nor re-sends what was accepted.

Also the live reads that refresh it: a full GetConfiguration (chunked by GetConfigurationMaxKeys) and
GetLocalListVersion, after every connect (a reconnect is not a boot) and periodically for drift.

Boundary: store + port -> `ObservedStation`; no decisions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from ocpp.v16.enums import MessageTrigger

from controller.config.access import ListEntry
from controller.config.ocpp16_keys import config_key, configuration_index
from controller.hw.errors import ChargerError
from controller.hw.port import ChargerPort
from controller.reconcilers import ObservedStation, PendingReboot, Refusal
from controller.reconcilers.access import snapshot_hash
from controller.store.api import Store
from controller.store.records import ConfigKey, LocalListEntry, StationRecord, TransactionStatus

EXT_PREFIX = "station/"


def ext_key(identity: str) -> str:
    return f"{EXT_PREFIX}{identity.upper()}/ext"


@dataclasses.dataclass
class Bookkeeping:
    """What the controller knows about a charger beyond what it can read back."""

    applied: dict[str, str] = dataclasses.field(default_factory=dict)
    refused: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # KEY -> status, value, at
    pending_reboot: dict[str, Any] | None = None  # {"since": iso, "keys": {KEY: value}}
    write_only_sent: dict[str, str] = dataclasses.field(default_factory=dict)
    scheduled_availability: dict[str, str] = dataclasses.field(default_factory=dict)  # connector -> type
    cache_cleared_hash: str | None = None
    local_list_mismatch: bool = False
    # Keys the charger accepted (KEY -> value) whose read-back has not happened yet (lost, or the charger
    # went away): the next look reads them back instead of writing them again.
    unconfirmed: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, value: object) -> Bookkeeping:
        if not isinstance(value, dict):
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        """The fields that hold something (`from_json` gives the others their defaults): most stations' book is
        one applied value or two, written after every apply, and an empty field costs its encoding every time.
        By hand: dataclasses.asdict deep-copies every value, a measurable cost per apply."""
        out: dict[str, Any] = {}
        if self.applied:
            out["applied"] = dict(self.applied)
        if self.refused:
            out["refused"] = {k: dict(v) for k, v in self.refused.items()}
        if self.pending_reboot is not None:
            out["pending_reboot"] = {"since": self.pending_reboot["since"], "keys": dict(self.pending_reboot["keys"])}
        if self.write_only_sent:
            out["write_only_sent"] = dict(self.write_only_sent)
        if self.scheduled_availability:
            out["scheduled_availability"] = dict(self.scheduled_availability)
        if self.cache_cleared_hash is not None:
            out["cache_cleared_hash"] = self.cache_cleared_hash
        if self.local_list_mismatch:
            out["local_list_mismatch"] = True
        if self.unconfirmed:
            out["unconfirmed"] = dict(self.unconfirmed)
        return out


def to_config_entry(e: LocalListEntry) -> ListEntry:
    return ListEntry(e.id_tag, e.status, dt.date.fromisoformat(e.expiry_date) if e.expiry_date else None,
                     e.parent_id_tag)


def to_store_entry(e: ListEntry) -> LocalListEntry:
    return LocalListEntry(e.id_tag, e.status, e.expiry_date.isoformat() if e.expiry_date else None,
                          e.parent_id_tag)


async def load_bookkeeping(store: Store, identity: str) -> Bookkeeping:
    state = await store.get_state(ext_key(identity))
    return Bookkeeping.from_json(state.get(ext_key(identity)))


async def save_bookkeeping(store: Store, identity: str, book: Bookkeeping) -> None:
    await store.put_state(ext_key(identity), book.to_json())


_SNAPSHOTS: dict[str, tuple[tuple[ListEntry, ...], str]] = {}  # store hash -> (entries, planner hash)


async def accepted_snapshot(store: Store, store_hash: str | None) -> tuple[tuple[ListEntry, ...] | None, str | None]:
    """Entries (and the planner's hash) of a content-addressed list snapshot; cached: snapshots never change."""
    if not store_hash:
        return None, None
    hit = _SNAPSHOTS.get(store_hash)
    if hit is None:
        snap = await store.get_local_list_snapshot(store_hash)
        if snap is None:
            return None, None
        entries = tuple(to_config_entry(e) for e in snap)
        hit = (entries, snapshot_hash(entries))
        if len(_SNAPSHOTS) > 256:
            _SNAPSHOTS.clear()
        _SNAPSHOTS[store_hash] = hit
    return hit


class ConfigIndexes:
    """Each station's configuration by upper-cased name, kept for its record's configuration tuple: a look
    reuses it while the record is the same, and a read-back derives the next one from it (a copy and the keys
    read) instead of indexing every key again. One entry per station, used on the event loop only."""

    __slots__ = ("_by_station",)

    def __init__(self) -> None:
        self._by_station: dict[str, tuple[tuple[ConfigKey, ...], dict[str, ConfigKey]]] = {}

    def index(self, identity: str, configuration: tuple[ConfigKey, ...]) -> dict[str, ConfigKey]:
        key = identity.upper()
        cached = self._by_station.get(key)
        if cached is not None and cached[0] is configuration:
            return cached[1]
        index = configuration_index(configuration)
        self._by_station[key] = (configuration, index)
        return index

    def read_back(self, identity: str, before: tuple[ConfigKey, ...], after: tuple[ConfigKey, ...],
                  keys: Iterable[ConfigKey]) -> None:
        """`after` is `before` with `keys` upserted (what `merge_read_back` makes)."""
        key = identity.upper()
        cached = self._by_station.get(key)
        if cached is None or cached[0] is not before:
            self._by_station.pop(key, None)
            return
        index = dict(cached[1])
        for k in keys:
            index[k.upper] = k
        self._by_station[key] = (after, index)


async def observed_from_store(store: Store, identity: str, rec: StationRecord | None, book: Bookkeeping, *,
                              online: bool, sessions: frozenset[int] | None = None,
                              indexes: ConfigIndexes | None = None,
                              ) -> tuple[ObservedStation | None, tuple[ListEntry, ...] | None]:
    """The observed station and the entries of the list snapshot it accepted (None when unknown).

    `sessions`: connectors with a running session when the caller knows them (else read from the store);
    `indexes`: where each station's configuration index is kept between looks."""
    if rec is None:
        return None, None
    entries, list_hash = await accepted_snapshot(store, rec.local_list_hash)
    if sessions is None:
        active = await store.list_transactions(station=rec.identity, status=TransactionStatus.ACTIVE)
        sessions = frozenset(t.connector_id for t in active if t.connector_id is not None)
    return _observed(rec, book, online, sessions, indexes, list_hash), entries


def observed_now(rec: StationRecord, book: Bookkeeping, *, online: bool, sessions: frozenset[int],
                 indexes: ConfigIndexes | None = None) -> tuple[ObservedStation, tuple[ListEntry, ...] | None] | None:
    """`observed_from_store` without a coroutine when it needs nothing from the store (the sessions known, the
    accepted list's snapshot none or cached: a look of the bulk of a revision); None when it does."""
    store_hash = rec.local_list_hash
    if store_hash:
        hit = _SNAPSHOTS.get(store_hash)
        if hit is None:
            return None
        entries, list_hash = hit
    else:
        entries, list_hash = None, None
    return _observed(rec, book, online, sessions, indexes, list_hash), entries


def _observed(rec: StationRecord, book: Bookkeeping, online: bool, sessions: frozenset[int],
              indexes: ConfigIndexes | None, list_hash: str | None) -> ObservedStation:
    boot = rec.boot
    pending = book.pending_reboot
    obs = object.__new__(ObservedStation)  # `ObservedStation(...)` without its 20 frozen-field assignments
    vars(obs).update(
        identity=rec.identity,
        online=online,
        vendor=(boot.vendor or "") if boot else "",
        model=(boot.model or "") if boot else "",
        firmware=(boot.firmware_version or "") if boot else "",
        configuration=(configuration_index(rec.configuration) if indexes is None
                       else indexes.index(rec.identity, rec.configuration)),
        unknown_keys=_NO_KEYS,
        read_at=rec.configuration_read_at,
        local_list_version=rec.local_list_version,
        local_list_hash=list_hash,
        local_list_mismatch=book.local_list_mismatch,
        connectors={c.connector_id: c.status for c in rec.connectors} if rec.connectors else _EMPTY,
        sessions=sessions,
        pending_reboot=None if not pending else PendingReboot(dt.datetime.fromisoformat(pending["since"]),
                                                              dict(pending["keys"])),
        refused=({k: Refusal(v["status"], v["value"], _time(v.get("at"))) for k, v in book.refused.items()}
                 if book.refused else _EMPTY),
        write_only_sent=_copy(book.write_only_sent),
        applied=_copy(book.applied),
        unconfirmed=_copy(book.unconfirmed),
        scheduled_availability=({int(k): v for k, v in book.scheduled_availability.items()}
                                if book.scheduled_availability else _EMPTY),
        cache_cleared_hash=book.cache_cleared_hash,
    )
    return obs


# What most stations' observed mappings are: one shared, read-only empty mapping (no copy per look, and two
# stations' are the same object, which plan sharing compares first)
_EMPTY: Mapping[Any, Any] = MappingProxyType({})
_NO_KEYS: frozenset[str] = frozenset()
OBSERVED_FIELDS = frozenset(f.name for f in dataclasses.fields(ObservedStation))  # what observed_from_store sets


def _copy(values: dict[str, str]) -> Mapping[str, str]:
    """A snapshot of a bookkeeping mapping (the book changes after the look)."""
    return dict(values) if values else _EMPTY


def _time(text: object) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if isinstance(text, str) else None


async def read_charger(port: ChargerPort, store: Store, identity: str, rec: StationRecord | None,
                       now: dt.datetime, *, statuses: bool = False) -> None:
    """Refresh what the charger reports: connector statuses (on a reconnect: TriggerMessage), every
    configuration key, and the local-list version."""
    if statuses:
        with contextlib.suppress(ChargerError):
            await port.trigger_message(MessageTrigger.status_notification)
    report = await port.get_configuration()
    keys = [config_key(e.key, e.value, e.readonly) for e in report.entries]
    seen = {(k.upper, k.value, k.readonly) for k in rec.configuration} if rec is not None else None
    if seen is not None and seen == {(k.upper, k.value, k.readonly) for k in keys}:
        await store.record_configuration(identity, [], now)  # unchanged (the usual reconnect): only the time
    else:
        await store.record_configuration(identity, keys, now, complete=True)
    profiles = (report.value("SupportedFeatureProfiles") or "").lower()
    if "localauthlistmanagement" in profiles:
        try:
            version = await port.get_local_list_version()
        except ChargerError:
            return
        known = rec.local_list_version if rec is not None else None
        if version != known:  # a version we did not send: its content is unknown, so a Full list follows
            await store.record_local_list_version(identity, version)


def refusal_json(status: str, value: str, now: dt.datetime) -> Mapping[str, Any]:
    return {"status": status, "value": value, "at": now.isoformat()}
