"""The persistent store as the rest of the controller sees it: one ``Store`` protocol.

Boundary: interface only. ``controller.store.sqlite.SqliteStore`` implements it today; a PostgreSQL
implementation can fill the same protocol later. Records live in records.py, errors in errors.py.

Owners: a ``Store`` object is *bound to one owner* (``store.owner``); every row it writes carries that
owner and every query is filtered by it, so callers never pass the owner around and can never read
another owner's data by mistake. ``store.for_owner(other)`` returns a view bound to ``other`` that
shares the same connections and writer (one controller serving many owners later).

Durability contract: every ``await``ed write returns only once the commit containing it is durable.
It raises ``StoreUnavailable`` (temporary) when that commit failed: nothing of it was stored. A
cancelled awaiter does not cancel its write. Reads never block the event loop either.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from controller.store.billing_records import (
    BillingAdjustment,
    BillingRow,
    ForgetResult,
    StatusChangeRecord,
    TariffRevision,
    TariffRevisionRef,
)
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


class StoreBatch(Protocol):
    """Writes collected and committed together: one trip to the writer, one durable commit; either all of
    them are durable when `commit` returns or none is (it raises). Used where several writes belong to
    one step (an applied plan: its audit entries, the configuration read back, the bookkeeping)."""

    def audit(self, entry: AuditEntry) -> None: ...

    def record_configuration(self, station: str, keys: Sequence[ConfigKey], at: datetime, *,
                             complete: bool = False, partial: bool = False) -> None: ...

    def put_state(self, key: str, value: object) -> None: ...

    def __len__(self) -> int: ...

    def commit(self) -> Awaitable[None]:
        """Write everything collected in one commit; awaited, durable (``await batch.commit()``)."""
        ...


class Store(Protocol):
    @property
    def owner(self) -> str: ...

    def batch(self) -> StoreBatch:
        """A new, empty batch of writes (see `StoreBatch`)."""
        ...

    def for_owner(self, owner: str) -> Store:
        """A view of the same database bound to another owner."""
        ...

    # -- transaction messages (DESIGN §3): persist, then answer -------------------------------------
    async def start_transaction(self, start: StartRequest) -> StartResult:
        """Record a session start; idempotent on (station, connector, idTag upper, meterStart,
        timestamp): a re-sent StartTransaction gets the same transaction id and ``created=False``."""
        ...

    async def stop_transaction(self, stop: StopRequest) -> StopResult:
        """Record a stop; a re-sent stop returns the stored answer with ``duplicate=True``; an unknown
        transaction id is recorded as an orphan and returns normally."""
        ...

    async def get_transaction(self, transaction_id: int) -> TransactionRecord | None: ...

    async def list_transactions(
        self, *, station: str | None = None, status: TransactionStatus | None = None, limit: int = 1000
    ) -> list[TransactionRecord]: ...

    async def flag_transaction(self, transaction_id: int, anomalies: Sequence[str]) -> bool:
        """Add anomaly flags for review; False when the transaction is unknown."""
        ...

    async def add_frames(self, frames: Sequence[RawFrame]) -> None: ...

    async def list_frames(self, station: str, *, limit: int = 100) -> list[RawFrame]: ...

    async def add_meter_values(self, samples: Sequence[MeterSample], frame: RawFrame | None = None) -> int:
        """Insert samples (and the raw frame) in one commit; returns the number inserted."""
        ...

    async def list_meter_values(
        self, *, transaction_id: int | None = None, station: str | None = None, limit: int = 100_000
    ) -> list[MeterSample]: ...

    async def purge_meter_values(self, older_than: datetime) -> int:
        """Retention: delete samples (with the connector status history and the raw MeterValues frames) received
        before ``older_than``; returns how many samples."""
        ...

    # -- observed station state ----------------------------------------------------------------------
    async def record_boot(self, station: str, boot: BootInfo, registration_status: str, at: datetime) -> None: ...

    async def set_registration_status(self, station: str, registration_status: str) -> None: ...

    async def record_seen(self, station: str, at: datetime) -> None:
        """Last message time (heartbeat or any frame); also marks the station online."""
        ...

    async def set_online(self, station: str, online: bool, at: datetime) -> None: ...

    async def record_configuration(
        self, station: str, keys: Sequence[ConfigKey], at: datetime, *, complete: bool = False,
        partial: bool = False,
    ) -> None:
        """Store keys read back and `at` as the station's last full configuration read; ``complete=True`` (a
        full GetConfiguration) drops keys not listed; ``partial=True`` (a read-back of some keys) upserts them
        and leaves the time of the last full read as it was."""
        ...

    async def record_connector_status(self, station: str, status: ConnectorStatus) -> None: ...

    async def record_local_list(self, station: str, version: int, entries: Sequence[LocalListEntry]) -> str:
        """An accepted list: store its content-addressed snapshot once and point the station at it
        with ``version``; returns the snapshot hash."""
        ...

    async def record_local_list_ref(self, station: str, version: int, digest: str) -> bool:
        """The station accepted a list whose snapshot is already stored (by its hash, as `record_local_list`
        returned it): record the version and the reference only. False (nothing written) when no such
        snapshot is stored (pruned): call `record_local_list` with the entries instead."""
        ...

    async def record_local_list_version(self, station: str, version: int) -> None:
        """A version reported by the charger whose content we do not know (clears the hash)."""
        ...

    async def get_local_list_snapshot(self, snapshot_hash: str) -> tuple[LocalListEntry, ...] | None: ...

    async def prune_local_list_snapshots(self) -> int:
        """Delete snapshots no station points at (forgotten cards leave no copy); returns how many."""
        ...

    async def set_pending_key(self, station: str, key: bytes) -> None:
        """Write before sending the AuthorizationKey; never logged."""
        ...

    async def confirm_pending_key(self, station: str, at: datetime) -> bool:
        """The station connected with the pending key: keep only its fingerprint as confirmed."""
        ...

    async def record_security_profile(self, station: str, profile: int) -> None: ...

    async def get_station(self, station: str) -> StationRecord | None: ...

    async def list_stations(self, *, configuration: bool = True) -> list[StationRecord]:
        """Every station of the owner; `configuration=False` leaves the (large) configuration out."""
        ...

    @property
    def live_version(self) -> int:
        """Goes up after each committed write of live station state (boot, online, connector status)."""
        ...

    # -- reservations ------------------------------------------------------------------------------
    async def create_reservation(self, request: ReservationRequest) -> ReservationRecord: ...

    async def update_reservation(
        self,
        reservation_id: int,
        status: ReservationStatus,
        *,
        expiry: datetime | None = None,
        connector_id: int | None = None,
        only_if: Collection[ReservationStatus] | None = None,
    ) -> ReservationRecord | None:
        """Set the status (and the expiry / connector when given); with ``only_if`` only while the status
        is one of those (compare-and-set: the caller sees in the returned record whether it applied).
        None when the reservation is unknown."""
        ...

    async def get_reservation(self, reservation_id: int) -> ReservationRecord | None: ...

    async def list_reservations(
        self, *, station: str | None = None, statuses: Collection[ReservationStatus] | None = None
    ) -> list[ReservationRecord]: ...

    # -- audit ---------------------------------------------------------------------------------------
    async def audit(self, entry: AuditEntry) -> None:
        """Append to the audit log; secrets redacted and idTags masked before writing."""
        ...

    async def list_audit(self, *, station: str | None = None, limit: int = 100) -> list[AuditRecord]: ...

    # -- controller state: small JSON values by key (rollout progress, confirmations, suspensions) -----
    async def put_state(self, key: str, value: object) -> None: ...

    async def delete_state(self, key: str) -> None: ...

    async def get_state(self, prefix: str = "") -> dict[str, object]: ...

    # -- billing: tariff history, status history, billing records, adjustments (billing_records.py) ---
    async def record_tariff_revision(self, revision: str, taken_at: datetime, manifest: str,
                                     documents: Mapping[str, str]) -> bool:
        """Record a taken revision (documents content-addressed, stored once); False if already in force."""
        ...

    async def tariff_revision_at(self, at: datetime) -> TariffRevision | None:
        """The revision taken last at or before ``at`` (the earliest known when none was); None if none."""
        ...

    async def tariff_revision_ref_at(self, at: datetime) -> TariffRevisionRef | None:
        """`tariff_revision_at(at)` without reading its documents: its reference, revision, time taken and
        manifest (content hashes: what it resolves to in any database, so a reader can keep what it resolved);
        None when no revision is recorded."""
        ...

    async def tariff_revision_by_ref(self, ref: int) -> TariffRevision | None: ...

    async def latest_tariff_revision(self) -> TariffRevision | None: ...

    async def status_history(self, station: str, connector_id: int | None, since: datetime,
                             limit: int = 10_000) -> list[StatusChangeRecord]:
        """StatusNotifications received since ``since`` (all connectors when ``connector_id`` is None)."""
        ...

    async def add_billing_record(self, row: BillingRow) -> tuple[BillingRow, bool]:
        """Append a version; idempotent on (transaction, version): returns the stored row and whether new."""
        ...

    async def billing_records(self, transaction_id: int) -> list[BillingRow]:
        """Every version of a transaction's billing record, oldest first."""
        ...

    async def provisional_billing_records(self, station: str) -> list[BillingRow]: ...

    async def list_billing_records(self, booked_from: datetime, booked_to: datetime) -> list[BillingRow]:
        """Every version of the transactions whose first version was booked in [from, to)."""
        ...

    async def add_billing_adjustment(self, adjustment: BillingAdjustment) -> BillingAdjustment: ...

    async def list_billing_adjustments(self, created_from: datetime, created_to: datetime, *,
                                       transaction_id: int | None = None) -> list[BillingAdjustment]: ...

    async def forget_driver(self, driver_id: str, *, id_tags: Sequence[str] = (),
                            before: datetime | None) -> tuple[ForgetResult, list[int]]:
        """Clear a driver's personal link from sessions that ended before ``before`` (None: all of them),
        keeping the amounts; returns what changed and the sessions kept because they are more recent."""
        ...

    async def known_owners(self) -> list[str]:
        """Owners with data in this database (all owners, whatever this store is bound to)."""
        ...

    # -- operations ----------------------------------------------------------------------------------
    async def backup(self, path: str | os.PathLike[str]) -> None:
        """Online, consistent copy of the whole database (all owners) to ``path``."""
        ...

    async def size_bytes(self) -> int: ...

    def writer_stats(self) -> WriterStats: ...

    async def close(self) -> None:
        """Drain queued writes, then close; later calls raise ``StoreClosed``."""
        ...
