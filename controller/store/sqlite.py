"""``SqliteStore``: the embedded SQLite implementation of ``controller.store.api.Store``.

Boundary: a thin async facade. It binds calls to the owner and the clock, and hands SQL functions
(sql_*.py) to the engine: writes to the single group-commit writer thread, reads to the reader pool
(engine.py explains threads, durability and failures). Nothing here runs SQL on the event loop.

Open once per process with ``await SqliteStore.open(path, owner=...)`` (creates the file 0600, WAL,
migrates in one transaction) and ``await store.close()`` at shutdown (drains queued writes). Views
made with ``for_owner`` share the engine; close the store you opened, once.

For operations and tests: ``store.engine`` gives the engine (``engine.fault`` hook, ``engine.write``
to run a function on the write connection, e.g. ``PRAGMA max_page_count`` to simulate a full disk).
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from controller.store import sql_billing, sql_ops, sql_stations, sql_transactions
from controller.store.api import Store
from controller.store.billing_records import (
    BillingAdjustment,
    BillingRow,
    ForgetResult,
    StatusChangeRecord,
    TariffRevision,
    TariffRevisionRef,
)
from controller.store.codec import to_db_time
from controller.store.engine import DEFAULT_BULK_LINGER, Engine
from controller.store.records import (
    AuditEntry,
    AuditRecord,
    BootInfo,
    ConfigKey,
    ConnectorStatus,
    LocalListEntry,
    MeterSample,
    RawFrame,
    ReservationRecord,
    ReservationRequest,
    ReservationStatus,
    StartRequest,
    StartResult,
    StationRecord,
    StopRequest,
    StopResult,
    TransactionRecord,
    TransactionStatus,
    WriterStats,
)

Clock = Callable[[], datetime]
PURGE_CHUNK = 5000  # rows per writer job when purging, so other writes interleave


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _nothing() -> None:
    return None


class SqliteBatch:
    """`StoreBatch` for SQLite: one writer job. Batches that wait for the writer together (a fleet-wide change
    commits one per station, dozens while a commit is being synced) are written by one statement per table
    (`BatchWrite.merged`; see the engine), each still all or nothing."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._audits: list[AuditEntry] = []
        self._configs: list[sql_stations.ConfigRecord] = []
        self._states: list[tuple[str, object, datetime]] = []

    def audit(self, entry: AuditEntry) -> None:
        self._audits.append(entry)

    def record_configuration(self, station: str, keys: Sequence[ConfigKey], at: datetime, *,
                             complete: bool = False, partial: bool = False) -> None:
        self._configs.append((station, tuple(keys), to_db_time(at), complete, partial))

    def put_state(self, key: str, value: object) -> None:
        self._states.append((key, value, self._store._clock()))

    def __len__(self) -> int:
        return len(self._audits) + len(self._configs) + len(self._states)

    def commit(self) -> Awaitable[None]:
        """The engine's future for this batch (no coroutine of its own: one per apply of every station)."""
        if not len(self):
            return _nothing()
        job = BatchWrite(self._store.owner, self._audits, self._configs, self._states)
        self._audits, self._configs, self._states = [], [], []
        return self._store.engine.submit(job)


class BatchWrite:
    """A writer job: the writes of one or more batches, as if batch after batch (the tables are independent
    of one another, and configuration reads keep their order)."""

    __slots__ = ("audits", "configs", "merge_key", "owner", "states")
    bulk = True  # the reconciler's writes: they may wait a moment for others to share their commit (see engine)

    def __init__(self, owner: str, audits: list[AuditEntry], configs: list[sql_stations.ConfigRecord],
                 states: list[tuple[str, object, datetime]]) -> None:
        self.owner, self.audits, self.configs, self.states = owner, audits, configs, states
        self.merge_key = ("batch", owner)  # the engine runs consecutive jobs of one key as one (`merged`)

    @staticmethod
    def merged(jobs: Sequence[BatchWrite]) -> BatchWrite:
        return BatchWrite(jobs[0].owner, [a for j in jobs for a in j.audits], [c for j in jobs for c in j.configs],
                          [s for j in jobs for s in j.states])

    def __call__(self, conn: sqlite3.Connection) -> None:
        if self.audits:
            sql_ops.append_audits(conn, self.owner, self.audits)
        if self.configs:
            sql_stations.record_configurations(conn, self.owner, self.configs)
        if self.states:
            sql_ops.put_states(conn, self.owner, self.states)


class SqliteStore:
    def __init__(self, engine: Engine, owner: str, clock: Clock) -> None:
        """Use ``SqliteStore.open``; this constructor binds an already started engine to an owner."""
        if not owner:
            raise ValueError("a store is bound to a non-empty owner id")
        self._engine = engine
        self._owner = owner
        self._clock = clock

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        owner: str,
        clock: Clock = _utc_now,
        readers: int = 4,
        busy_timeout: float = 5.0,
        max_batch: int = 1000,
        bulk_linger: float = DEFAULT_BULK_LINGER,
    ) -> SqliteStore:
        engine = Engine(
            Path(path),
            readers=readers,
            busy_timeout=busy_timeout,
            max_batch=max_batch,
            now_text=lambda: to_db_time(clock()),
            bulk_linger=bulk_linger,
        )
        await engine.start()
        return cls(engine, owner, clock)

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def engine(self) -> Engine:
        return self._engine

    def for_owner(self, owner: str) -> SqliteStore:
        return SqliteStore(self._engine, owner, self._clock)

    def batch(self) -> SqliteBatch:
        return SqliteBatch(self)

    @property
    def live_version(self) -> int:
        """Goes up after each committed write of live station state (boot, online, connector status,
        station forgotten): readers that build from it (the map) rebuild only when it moved."""
        return self._engine.live_version

    def _live_changed(self) -> None:
        self._engine.live_version += 1

    def _now(self) -> str:
        return to_db_time(self._clock())

    # -- transaction messages --------------------------------------------------------------------
    async def start_transaction(self, start: StartRequest) -> StartResult:
        return await self._engine.write(
            partial(sql_transactions.start_transaction, owner=self._owner, start=start, now=self._now())
        )

    async def stop_transaction(self, stop: StopRequest) -> StopResult:
        return await self._engine.write(
            partial(sql_transactions.stop_transaction, owner=self._owner, stop=stop, now=self._now())
        )

    async def get_transaction(self, transaction_id: int) -> TransactionRecord | None:
        return await self._engine.read(
            partial(sql_transactions.get_transaction, owner=self._owner, transaction_id=transaction_id)
        )

    async def list_transactions(
        self, *, station: str | None = None, status: TransactionStatus | None = None, limit: int = 1000
    ) -> list[TransactionRecord]:
        return await self._engine.read(
            partial(sql_transactions.list_transactions, owner=self._owner, station=station, status=status, limit=limit)
        )

    async def flag_transaction(self, transaction_id: int, anomalies: Sequence[str]) -> bool:
        return await self._engine.write(
            partial(
                sql_transactions.flag_transaction, owner=self._owner, transaction_id=transaction_id, flags=anomalies
            )
        )

    async def add_frames(self, frames: Sequence[RawFrame]) -> None:
        await self._engine.write(partial(sql_transactions.insert_frames, owner=self._owner, frames=tuple(frames)))

    async def list_frames(self, station: str, *, limit: int = 100) -> list[RawFrame]:
        return await self._engine.read(
            partial(sql_transactions.list_frames, owner=self._owner, station=station, limit=limit)
        )

    async def add_meter_values(self, samples: Sequence[MeterSample], frame: RawFrame | None = None) -> int:
        return await self._engine.write(
            partial(sql_transactions.add_meter_values, owner=self._owner, samples=tuple(samples), frame=frame)
        )

    async def list_meter_values(
        self, *, transaction_id: int | None = None, station: str | None = None, limit: int = 100_000
    ) -> list[MeterSample]:
        return await self._engine.read(
            partial(
                sql_transactions.list_meter_values,
                owner=self._owner,
                transaction_id=transaction_id,
                station=station,
                limit=limit,
            )
        )

    async def purge_meter_values(self, older_than: datetime) -> int:
        """Retention for telemetry: meter values, the connector status history and the raw MeterValues frames
        older than the cut-off (in short chunks so the writer keeps serving transaction messages). Returns meter
        values purged."""
        cutoff = to_db_time(older_than)
        totals = []
        for table in ("meter_values", "connector_status_history", "raw_frames"):
            total = 0
            while True:
                deleted = await self._engine.write(
                    partial(
                        sql_transactions.purge_meter_values_chunk,
                        owner=self._owner,
                        older_than=cutoff,
                        chunk=PURGE_CHUNK,
                        table=table,
                    )
                )
                total += deleted
                if deleted < PURGE_CHUNK:
                    break
            totals.append(total)
        return totals[0]

    # -- observed station state --------------------------------------------------------------------
    async def record_boot(self, station: str, boot: BootInfo, registration_status: str, at: datetime) -> None:
        await self._engine.write(
            partial(
                sql_stations.record_boot,
                owner=self._owner,
                station=station,
                boot=boot,
                registration_status=registration_status,
                at=to_db_time(at),
            )
        )
        self._live_changed()

    async def set_registration_status(self, station: str, registration_status: str) -> None:
        await self._engine.write(
            partial(
                sql_stations.set_registration_status, owner=self._owner, station=station, status=registration_status
            )
        )

    async def record_seen(self, station: str, at: datetime) -> None:
        await self._engine.write(
            partial(sql_stations.record_seen, owner=self._owner, station=station, at=to_db_time(at))
        )

    async def set_online(self, station: str, online: bool, at: datetime) -> None:
        await self._engine.write(
            partial(sql_stations.set_online, owner=self._owner, station=station, online=online, at=to_db_time(at))
        )
        self._live_changed()

    async def record_configuration(
        self, station: str, keys: Sequence[ConfigKey], at: datetime, *, complete: bool = False,
        partial: bool = False,
    ) -> None:
        record: sql_stations.ConfigRecord = (station, tuple(keys), to_db_time(at), complete, partial)
        await self._engine.write(
            functools.partial(sql_stations.record_configurations, owner=self._owner, records=(record,)))

    async def record_connector_status(self, station: str, status: ConnectorStatus) -> None:
        await self._engine.write(
            partial(sql_stations.record_connector_status, owner=self._owner, station=station, status=status)
        )
        self._live_changed()

    async def record_local_list(self, station: str, version: int, entries: Sequence[LocalListEntry]) -> str:
        return await self._engine.write(
            partial(
                sql_stations.record_local_list,
                owner=self._owner,
                station=station,
                version=version,
                entries=tuple(entries),
                now=self._now(),
            )
        )

    async def record_local_list_ref(self, station: str, version: int, digest: str) -> bool:
        return await self._engine.write(
            partial(sql_stations.record_local_list_ref, owner=self._owner, station=station, version=version,
                    digest=digest)
        )

    async def record_local_list_version(self, station: str, version: int) -> None:
        await self._engine.write(
            partial(sql_stations.record_local_list_version, owner=self._owner, station=station, version=version)
        )

    async def get_local_list_snapshot(self, snapshot_hash: str) -> tuple[LocalListEntry, ...] | None:
        return await self._engine.read(partial(sql_stations.get_snapshot, owner=self._owner, digest=snapshot_hash))

    async def prune_local_list_snapshots(self) -> int:
        return await self._engine.write(partial(sql_stations.prune_snapshots, owner=self._owner))

    async def set_pending_key(self, station: str, key: bytes) -> None:
        await self._engine.write(
            partial(sql_stations.set_pending_key, owner=self._owner, station=station, key=key, now=self._now())
        )

    async def confirm_pending_key(self, station: str, at: datetime) -> bool:
        return await self._engine.write(
            partial(sql_stations.confirm_pending_key, owner=self._owner, station=station, at=to_db_time(at))
        )

    async def record_security_profile(self, station: str, profile: int) -> None:
        await self._engine.write(
            partial(sql_stations.record_security_profile, owner=self._owner, station=station, profile=profile)
        )

    async def get_station(self, station: str) -> StationRecord | None:
        found = await self._engine.read(partial(sql_stations.list_stations, owner=self._owner, station=station))
        return found[0] if found else None

    async def list_stations(self, *, configuration: bool = True) -> list[StationRecord]:
        return await self._engine.read(
            partial(sql_stations.list_stations, owner=self._owner, configuration=configuration)
        )

    # -- reservations --------------------------------------------------------------------------------
    async def create_reservation(self, request: ReservationRequest) -> ReservationRecord:
        return await self._engine.write(
            partial(sql_ops.create_reservation, owner=self._owner, request=request, now=self._now())
        )

    async def update_reservation(
        self,
        reservation_id: int,
        status: ReservationStatus,
        *,
        expiry: datetime | None = None,
        connector_id: int | None = None,
        only_if: Collection[ReservationStatus] | None = None,
    ) -> ReservationRecord | None:
        return await self._engine.write(
            partial(
                sql_ops.update_reservation,
                owner=self._owner,
                reservation_id=reservation_id,
                status=status,
                expiry=expiry,
                now=self._now(),
                connector_id=connector_id,
                only_if=None if only_if is None else tuple(only_if),
            )
        )

    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None:
        return await self._engine.read(
            partial(sql_ops.get_reservation, owner=self._owner, reservation_id=reservation_id)
        )

    async def list_reservations(
        self, *, station: str | None = None, statuses: Collection[ReservationStatus] | None = None
    ) -> list[ReservationRecord]:
        return await self._engine.read(
            partial(
                sql_ops.list_reservations,
                owner=self._owner,
                station=station,
                statuses=None if statuses is None else tuple(statuses),
            )
        )

    # -- audit -------------------------------------------------------------------------------------
    async def audit(self, entry: AuditEntry) -> None:
        await self._engine.write(partial(sql_ops.append_audit, owner=self._owner, entry=entry))

    async def list_audit(self, *, station: str | None = None, limit: int = 100) -> list[AuditRecord]:
        return await self._engine.read(partial(sql_ops.list_audit, owner=self._owner, station=station, limit=limit))

    # -- controller state (rollout progress, confirmations, suspensions) -------------------------------
    async def put_state(self, key: str, value: object) -> None:
        await self._engine.write(partial(sql_ops.put_state, owner=self._owner, key=key, value=value,
                                         at=self._clock()))

    async def delete_state(self, key: str) -> None:
        await self._engine.write(partial(sql_ops.delete_state, owner=self._owner, key=key))

    async def get_state(self, prefix: str = "") -> dict[str, object]:
        """Every state entry whose key starts with ``prefix``, as JSON values."""
        return await self._engine.read(partial(sql_ops.get_state, owner=self._owner, prefix=prefix))

    # -- billing (sql_billing.py) -------------------------------------------------------------------
    async def record_tariff_revision(self, revision: str, taken_at: datetime, manifest: str,
                                     documents: Mapping[str, str]) -> bool:
        return await self._engine.write(partial(
            sql_billing.record_tariff_revision, owner=self._owner, revision=revision, taken_at=to_db_time(taken_at),
            manifest=manifest, documents=dict(documents)))

    async def tariff_revision_at(self, at: datetime) -> TariffRevision | None:
        return await self._engine.read(partial(sql_billing.tariff_revision_at, owner=self._owner, at=to_db_time(at)))

    async def tariff_revision_ref_at(self, at: datetime) -> TariffRevisionRef | None:
        return await self._engine.read(
            partial(sql_billing.tariff_revision_ref_at, owner=self._owner, at=to_db_time(at)))

    async def tariff_revision_by_ref(self, ref: int) -> TariffRevision | None:
        return await self._engine.read(partial(sql_billing.tariff_revision_by_ref, owner=self._owner, ref=ref))

    async def latest_tariff_revision(self) -> TariffRevision | None:
        return await self._engine.read(partial(sql_billing.latest_tariff_revision, owner=self._owner))

    async def status_history(self, station: str, connector_id: int | None, since: datetime,
                             limit: int = 10_000) -> list[StatusChangeRecord]:
        return await self._engine.read(partial(
            sql_billing.status_history, owner=self._owner, station=station, connector_id=connector_id,
            since=to_db_time(since), limit=limit))

    async def add_billing_record(self, row: BillingRow) -> tuple[BillingRow, bool]:
        return await self._engine.write(partial(sql_billing.add_billing_record, owner=self._owner, row=row))

    async def billing_records(self, transaction_id: int) -> list[BillingRow]:
        return await self._engine.read(partial(
            sql_billing.billing_records_of, owner=self._owner, transaction_id=transaction_id))

    async def provisional_billing_records(self, station: str) -> list[BillingRow]:
        return await self._engine.read(partial(sql_billing.provisional_billing, owner=self._owner, station=station))

    async def list_billing_records(self, booked_from: datetime, booked_to: datetime) -> list[BillingRow]:
        return await self._engine.read(partial(
            sql_billing.list_billing_records, owner=self._owner, booked_from=to_db_time(booked_from),
            booked_to=to_db_time(booked_to)))

    async def add_billing_adjustment(self, adjustment: BillingAdjustment) -> BillingAdjustment:
        return await self._engine.write(partial(sql_billing.add_adjustment, owner=self._owner, adj=adjustment))

    async def list_billing_adjustments(self, created_from: datetime, created_to: datetime, *,
                                       transaction_id: int | None = None) -> list[BillingAdjustment]:
        return await self._engine.read(partial(
            sql_billing.list_adjustments, owner=self._owner, created_from=to_db_time(created_from),
            created_to=to_db_time(created_to), transaction_id=transaction_id))

    async def forget_driver(self, driver_id: str, *, id_tags: Sequence[str] = (),
                            before: datetime | None) -> tuple[ForgetResult, list[int]]:
        return await self._engine.write(partial(
            sql_billing.forget_driver, owner=self._owner, driver_id=driver_id, id_tags=tuple(id_tags),
            before=None if before is None else to_db_time(before)))

    async def known_owners(self) -> list[str]:
        return await self._engine.read(sql_billing.known_owners)

    # -- operations --------------------------------------------------------------------------------
    async def backup(self, path: str | os.PathLike[str]) -> None:
        await self._engine.backup(Path(path))

    async def size_bytes(self) -> int:
        return self._engine.size_bytes()

    def writer_stats(self) -> WriterStats:
        return self._engine.stats()

    async def close(self) -> None:
        await self._engine.close()


if TYPE_CHECKING:  # mypy proves that SqliteStore fills the Store protocol
    _conforms: type[Store] = SqliteStore
