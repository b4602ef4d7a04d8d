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
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

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


class Store(Protocol):
    @property
    def owner(self) -> str: ...

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
        """Retention: delete samples received before ``older_than``; returns how many."""
        ...

    # -- observed station state ----------------------------------------------------------------------
    async def record_boot(self, station: str, boot: BootInfo, registration_status: str, at: datetime) -> None: ...

    async def set_registration_status(self, station: str, registration_status: str) -> None: ...

    async def record_seen(self, station: str, at: datetime) -> None:
        """Last message time (heartbeat or any frame); also marks the station online."""
        ...

    async def set_online(self, station: str, online: bool, at: datetime) -> None: ...

    async def record_configuration(
        self, station: str, keys: Sequence[ConfigKey], at: datetime, *, complete: bool = False
    ) -> None:
        """Store keys read back; ``complete=True`` (a full GetConfiguration) drops keys not listed."""
        ...

    async def record_connector_status(self, station: str, status: ConnectorStatus) -> None: ...

    async def record_local_list(self, station: str, version: int, entries: Sequence[LocalListEntry]) -> str:
        """An accepted list: store its content-addressed snapshot once and point the station at it
        with ``version``; returns the snapshot hash."""
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

    async def list_stations(self) -> list[StationRecord]: ...

    # -- reservations ------------------------------------------------------------------------------
    async def create_reservation(self, request: ReservationRequest) -> ReservationRecord: ...

    async def update_reservation(
        self, reservation_id: int, status: ReservationStatus, *, expiry: datetime | None = None
    ) -> ReservationRecord | None: ...

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

    # -- operations ----------------------------------------------------------------------------------
    async def backup(self, path: str | os.PathLike[str]) -> None:
        """Online, consistent copy of the whole database (all owners) to ``path``."""
        ...

    async def size_bytes(self) -> int: ...

    def writer_stats(self) -> WriterStats: ...

    async def close(self) -> None:
        """Drain queued writes, then close; later calls raise ``StoreClosed``."""
        ...
