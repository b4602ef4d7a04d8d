"""Records the store takes and returns: frozen dataclasses, no behaviour beyond small helpers.

Boundary: plain data shared by the store interface (api.py) and its implementations; no SQL here.

Conventions:
- Our own times (received_at, created_at, ``at`` arguments) are timezone-aware ``datetime``; a naive
  one is refused with ``ValueError``.
- Charger timestamps (StartTransaction/StopTransaction/MeterValues ``timestamp``) are kept verbatim as
  text: chargers send odd or malformed values, a retry re-sends the same text (deduplication compares
  it), and the parsing and plausibility checks belong to the OCPP layer and billing.
- OCPP vocabulary (registration status, connector status, error codes, stop reasons) is stored as the
  string received, not validated: transaction messages are parsed leniently (DESIGN §3).
- Money-relevant numbers that may carry decimals (meter values) are ``str`` to stay exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from controller.config.ocpp16_keys import ConfigKey
from controller.store.credentials import key_accepted


class TransactionStatus(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"
    ORPHAN = "orphan"  # a StopTransaction for a transactionId we never issued (kept and answered)


class FrameDirection(StrEnum):
    IN = "in"  # charger -> controller
    OUT = "out"  # controller -> charger


class ReservationStatus(StrEnum):
    SCHEDULED = "scheduled"  # booked for later: holds nothing yet (ReserveNow goes out at start - buffer)
    REQUESTED = "requested"  # written before ReserveNow is sent
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # Faulted / Occupied / Rejected / Unavailable answers
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    USED = "used"  # a StartTransaction carried its reservationId


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One OCPP frame exactly as it went over the wire."""

    station: str
    direction: FrameDirection
    action: str
    message_id: str
    text: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One sampledValue of a MeterValues (or StopTransaction transactionData) message."""

    station: str
    connector_id: int
    transaction_id: int | None
    timestamp: str  # the charger's, verbatim
    value: str  # verbatim text: keeps decimals exact; for format=SignedData the signed blob itself
    received_at: datetime
    measurand: str | None = None  # None = OCPP default Energy.Active.Import.Register
    phase: str | None = None
    unit: str | None = None
    context: str | None = None
    location: str | None = None
    format: str | None = None
    signed_data: str | None = None  # vendor signed payload (e.g. OCMF) kept verbatim


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A StartTransaction.req as parsed (leniently) by the OCPP layer, plus what it decided."""

    station: str
    connector_id: int
    id_tag: str  # stored as given; deduplication uses its upper-case form
    meter_start: int | None
    timestamp: str  # the charger's, verbatim
    reservation_id: int | None = None
    parent_id_tag: str | None = None  # the driver's group (from authorization)
    id_tag_info: str | None = None  # JSON of the idTagInfo answered; a re-sent start gets the same
    anomalies: tuple[str, ...] = ()
    tariff_version: str | None = None
    git_revision: str | None = None
    frame: RawFrame | None = None  # the raw request, written in the same commit


class StartResult(NamedTuple):
    transaction_id: int
    created: bool  # False: a re-sent StartTransaction, the same id is answered again
    record: TransactionRecord | None = None  # the transaction as stored (read in the same write: no second read)


@dataclass(frozen=True, slots=True)
class StopRequest:
    """A StopTransaction.req as parsed (leniently) by the OCPP layer."""

    station: str
    transaction_id: int
    meter_stop: int | None
    timestamp: str  # the charger's, verbatim
    reason: str | None = None
    id_tag: str | None = None
    id_tag_info: str | None = None  # JSON of the idTagInfo answered, if any
    anomalies: tuple[str, ...] = ()
    meter_values: tuple[MeterSample, ...] = ()  # transactionData, written in the same commit
    frame: RawFrame | None = None


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    id: int  # the OCPP transactionId handed to the charger (orphans get one of their own)
    owner: str
    station: str
    connector_id: int | None
    id_tag: str | None
    parent_id_tag: str | None
    meter_start: int | None
    start_timestamp: str | None
    reservation_id: int | None
    start_id_tag_info: str | None
    status: TransactionStatus
    meter_stop: int | None
    stop_timestamp: str | None
    stop_reason: str | None
    stop_id_tag: str | None
    stop_id_tag_info: str | None
    claimed_transaction_id: int | None  # orphans: the unknown transactionId the charger sent
    anomalies: tuple[str, ...]
    tariff_version: str | None
    git_revision: str | None
    created_at: datetime
    stopped_at: datetime | None  # our clock, when the stop was recorded


@dataclass(frozen=True, slots=True)
class StopResult:
    transaction: TransactionRecord  # the stored answer (for a duplicate: as first recorded)
    duplicate: bool  # a re-sent (or second, differing) StopTransaction
    orphan: bool  # the transactionId was unknown; an orphan record holds the stop


@dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str | None
    model: str | None
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectorStatus:
    connector_id: int
    status: str
    error_code: str | None
    info: str | None
    timestamp: str | None  # the charger's, verbatim
    received_at: datetime
    vendor_error_code: str | None = None


@dataclass(frozen=True, slots=True)
class LocalListEntry:
    id_tag: str
    status: str  # idTagInfo.status: Accepted, Blocked, Expired, Invalid, ConcurrentTx
    expiry_date: str | None = None
    parent_id_tag: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """Security-profile 1/2 credentials of a station (see credentials.py for what is kept and why)."""

    pending_key: bytes | None = field(default=None, repr=False)
    pending_since: datetime | None = None
    confirmed_fingerprint: str | None = field(default=None, repr=False)
    confirmed_at: datetime | None = None

    def accepts(self, password: bytes) -> bool:
        """True when a Basic-auth password matches the pending or the confirmed key (raw or hex)."""
        return key_accepted(password, pending_key=self.pending_key, confirmed_fingerprint=self.confirmed_fingerprint)


@dataclass(frozen=True, slots=True)
class StationRecord:
    """The observed state of one station as last recorded."""

    identity: str
    boot: BootInfo | None
    registration_status: str | None
    last_boot_at: datetime | None
    last_seen: datetime | None
    online: bool
    configuration: tuple[ConfigKey, ...]
    configuration_read_at: datetime | None
    local_list_version: int | None
    local_list_hash: str | None  # None with a version: content unknown (not sent by us) -> send Full
    connectors: tuple[ConnectorStatus, ...]
    credentials: Credentials
    security_profile: int | None  # the profile the station has confirmed by connecting with it

    def config_value(self, key: str) -> ConfigKey | None:
        """The configuration key read back, looked up case-insensitively."""
        wanted = key.upper()
        return next((item for item in self.configuration if item.upper == wanted), None)


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    station: str
    connector_id: int
    id_tag: str
    expiry: datetime
    policy: str  # the reservation policy name (or its JSON) that allowed it
    status: ReservationStatus = ReservationStatus.REQUESTED  # SCHEDULED for a booking that starts later


@dataclass(frozen=True, slots=True)
class ReservationRecord:
    id: int  # the OCPP reservationId
    owner: str
    station: str
    connector_id: int
    id_tag: str
    expiry: datetime
    status: ReservationStatus
    policy: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited change; ``detail`` is redacted and idTags masked by the store before writing."""

    action: str
    at: datetime
    detail: Mapping[str, object] = field(default_factory=dict)
    station: str | None = None
    git_revision: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    owner: str
    at: datetime
    station: str | None
    git_revision: str | None
    action: str
    detail: Mapping[str, object]  # as stored: already redacted


@dataclass(frozen=True, slots=True)
class CommitTiming:
    """One commit of the group-commit writer, timed (the slowest since it was last asked for, see
    `Engine.slowest_commit`): what a durable answer waited for when it waited long."""

    seconds: float  # BEGIN to COMMIT done: the jobs run and the commit
    commit_seconds: float  # the COMMIT statement alone: the WAL frames written and synced
    jobs: int
    kinds: tuple[tuple[str, int], ...]  # (what wrote, how many such jobs), most first
    during_checkpoint: bool  # a WAL checkpoint (its own thread) ran while this commit was being made durable


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters of the group-commit writer (for metrics and tests)."""

    writes: int  # write calls executed
    commits: int  # successful commits
    failed_batches: int  # batches that raised StoreUnavailable
    largest_batch: int
