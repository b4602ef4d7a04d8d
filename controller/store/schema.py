"""SQLite schema as an ordered list of versioned migrations, applied in one transaction at open.

Boundary: DDL and the migration runner only; queries live in the sql_*.py modules.

Rules for changing the schema: never edit a released migration, append a new one (a step is an SQL
statement or a function of the connection, for data migrations). ``schema_version`` keeps one row per
applied version. A database newer than this program is refused (``SchemaTooNew``), never touched.
Every table carries ``owner`` (DESIGN §1: one owner now, many later).

Ids: ``transactions.id`` is the OCPP transactionId and ``reservations.id`` the reservationId. Both use
AUTOINCREMENT so an id is never handed out twice, even after rows are deleted; chargers treat them as
32-bit integers, which lasts 2^31 sessions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from controller.store.errors import SchemaTooNew

Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    steps: tuple[Step, ...]


_V1_TRANSACTIONS = Migration(
    1,
    "transactions, raw frames, meter values",
    (
        """CREATE TABLE transactions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            connector_id INTEGER,
            id_tag TEXT,
            parent_id_tag TEXT,
            meter_start INTEGER,
            start_timestamp TEXT,
            reservation_id INTEGER,
            start_id_tag_info TEXT,
            start_key TEXT,
            status TEXT NOT NULL CHECK (status IN ('active', 'stopped', 'orphan')),
            meter_stop INTEGER,
            stop_timestamp TEXT,
            stop_reason TEXT,
            stop_id_tag TEXT,
            stop_id_tag_info TEXT,
            stop_key TEXT,
            claimed_transaction_id INTEGER,
            anomalies TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            stopped_at TEXT,
            UNIQUE (owner, start_key),
            UNIQUE (owner, stop_key)
        )""",
        "CREATE INDEX transactions_by_station ON transactions (owner, station, status)",
        """CREATE TABLE raw_frames (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            direction TEXT NOT NULL,
            action TEXT NOT NULL,
            message_id TEXT NOT NULL,
            text TEXT NOT NULL,
            received_at TEXT NOT NULL,
            transaction_id INTEGER
        )""",
        "CREATE INDEX raw_frames_by_station ON raw_frames (owner, station, id)",
        """CREATE TABLE meter_values (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            transaction_id INTEGER,
            timestamp TEXT NOT NULL,
            measurand TEXT,
            phase TEXT,
            unit TEXT,
            value TEXT NOT NULL,
            context TEXT,
            location TEXT,
            format TEXT,
            signed_data TEXT,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX meter_values_by_transaction ON meter_values (owner, transaction_id)",
        "CREATE INDEX meter_values_by_age ON meter_values (owner, received_at)",
    ),
)

_V2_BILLING_CONTEXT = Migration(
    2,
    "tariff version and git revision on transactions",
    (
        "ALTER TABLE transactions ADD COLUMN tariff_version TEXT",
        "ALTER TABLE transactions ADD COLUMN git_revision TEXT",
    ),
)

_V3_STATIONS = Migration(
    3,
    "observed station state, configuration, connector status, local-list snapshots",
    (
        """CREATE TABLE local_list_snapshots (
            owner TEXT NOT NULL,
            hash TEXT NOT NULL,
            entries TEXT NOT NULL,
            entry_count INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (owner, hash)
        ) WITHOUT ROWID""",
        """CREATE TABLE stations (
            owner TEXT NOT NULL,
            identity TEXT NOT NULL,
            vendor TEXT,
            model TEXT,
            serial_number TEXT,
            firmware_version TEXT,
            registration_status TEXT,
            last_boot_at TEXT,
            last_seen TEXT,
            online INTEGER NOT NULL DEFAULT 0,
            config_read_at TEXT,
            local_list_version INTEGER,
            local_list_hash TEXT,
            pending_key BLOB,
            pending_since TEXT,
            confirmed_fingerprint TEXT,
            confirmed_at TEXT,
            security_profile INTEGER,
            PRIMARY KEY (owner, identity),
            FOREIGN KEY (owner, local_list_hash) REFERENCES local_list_snapshots (owner, hash)
        ) WITHOUT ROWID""",
        "CREATE INDEX stations_by_snapshot ON stations (owner, local_list_hash)",
        """CREATE TABLE station_config (
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            key_upper TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            readonly INTEGER NOT NULL,
            read_at TEXT NOT NULL,
            PRIMARY KEY (owner, station, key_upper)
        ) WITHOUT ROWID""",
        """CREATE TABLE connector_status (
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            error_code TEXT,
            info TEXT,
            vendor_error_code TEXT,
            timestamp TEXT,
            received_at TEXT NOT NULL,
            PRIMARY KEY (owner, station, connector_id)
        ) WITHOUT ROWID""",
    ),
)

_V4_RESERVATIONS_AUDIT = Migration(
    4,
    "reservations and audit log",
    (
        """CREATE TABLE reservations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            id_tag TEXT NOT NULL,
            expiry TEXT NOT NULL,
            status TEXT NOT NULL,
            policy TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX reservations_by_station ON reservations (owner, station, status)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            owner TEXT NOT NULL,
            station TEXT,
            git_revision TEXT,
            action TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
        "CREATE INDEX audit_log_by_station ON audit_log (owner, station, id)",
    ),
)

_V5_CONTROLLER_STATE = Migration(
    5,
    "controller state: rollout progress, confirmations, suspensions (JSON values by key)",
    (
        """CREATE TABLE controller_state (
            owner TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (owner, key)
        )""",
    ),
)

_V6_BILLING = Migration(
    6,
    "tariff history, connector status history, billing records and adjustments (append-only)",
    (
        """CREATE TABLE tariff_documents (
            owner TEXT NOT NULL,
            hash TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (owner, hash)
        ) WITHOUT ROWID""",
        """CREATE TABLE tariff_revisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            revision TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            manifest TEXT NOT NULL
        )""",
        "CREATE INDEX tariff_revisions_by_time ON tariff_revisions (owner, taken_at)",
        """CREATE TABLE connector_status_history (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            station TEXT NOT NULL,
            connector_id INTEGER NOT NULL,
            status TEXT NOT NULL,
            timestamp TEXT,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX connector_status_history_by_connector"
        " ON connector_status_history (owner, station, connector_id, received_at)",
        """CREATE TABLE billing_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            transaction_id INTEGER NOT NULL,
            version INTEGER NOT NULL,
            final INTEGER NOT NULL,
            booked_at TEXT NOT NULL,
            station TEXT NOT NULL,
            connector_id INTEGER,
            driver_id TEXT,
            card TEXT,
            grp TEXT,
            currency TEXT NOT NULL,
            net TEXT NOT NULL,
            tax TEXT NOT NULL,
            total TEXT NOT NULL,
            under_review INTEGER NOT NULL,
            session_start TEXT,
            body TEXT NOT NULL,
            UNIQUE (owner, transaction_id, version)
        )""",
        "CREATE INDEX billing_records_by_booking ON billing_records (owner, booked_at)",
        "CREATE INDEX billing_records_by_driver ON billing_records (owner, driver_id)",
        "CREATE INDEX billing_records_provisional ON billing_records (owner, station) WHERE final = 0",
        # Immutable: only the personal link (driver_id, card) may be cleared (forgetting a driver).
        """CREATE TRIGGER billing_records_immutable BEFORE UPDATE ON billing_records
           WHEN NEW.owner IS NOT OLD.owner OR NEW.transaction_id IS NOT OLD.transaction_id
             OR NEW.version IS NOT OLD.version OR NEW.final IS NOT OLD.final OR NEW.booked_at IS NOT OLD.booked_at
             OR NEW.station IS NOT OLD.station OR NEW.connector_id IS NOT OLD.connector_id OR NEW.grp IS NOT OLD.grp
             OR NEW.currency IS NOT OLD.currency OR NEW.net IS NOT OLD.net OR NEW.tax IS NOT OLD.tax
             OR NEW.total IS NOT OLD.total OR NEW.under_review IS NOT OLD.under_review
             OR NEW.session_start IS NOT OLD.session_start OR NEW.body IS NOT OLD.body
             OR (NEW.driver_id IS NOT NULL AND NEW.driver_id IS NOT OLD.driver_id)
             OR (NEW.card IS NOT NULL AND NEW.card IS NOT OLD.card)
           BEGIN SELECT RAISE(ABORT, 'billing records are immutable: append a new version or an adjustment'); END""",
        """CREATE TRIGGER billing_records_kept BEFORE DELETE ON billing_records
           BEGIN SELECT RAISE(ABORT, 'billing records are never deleted'); END""",
        """CREATE TABLE billing_adjustments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            transaction_id INTEGER NOT NULL,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            reason TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT
        )""",
        "CREATE INDEX billing_adjustments_by_time ON billing_adjustments (owner, created_at)",
        """CREATE TRIGGER billing_adjustments_immutable BEFORE UPDATE ON billing_adjustments
           BEGIN SELECT RAISE(ABORT, 'adjustments are append-only: add another one'); END""",
        """CREATE TRIGGER billing_adjustments_kept BEFORE DELETE ON billing_adjustments
           BEGIN SELECT RAISE(ABORT, 'adjustments are never deleted'); END""",
    ),
)

# The raw MeterValues frames (most of the raw frames: one per minute per session) go with the meter values they
# carried, at the owner's retention; the purge finds them by age without reading the frames kept.
_V7_TELEMETRY_FRAMES_BY_AGE = Migration(
    7,
    "raw MeterValues frames by age, for retention",
    ("CREATE INDEX raw_frames_telemetry_by_age ON raw_frames (owner, received_at) WHERE action = 'MeterValues'",),
)

MIGRATIONS: tuple[Migration, ...] = (_V1_TRANSACTIONS, _V2_BILLING_CONTEXT, _V3_STATIONS, _V4_RESERVATIONS_AUDIT,
                                     _V5_CONTROLLER_STATE, _V6_BILLING, _V7_TELEMETRY_FRAMES_BY_AGE)
LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(conn: sqlite3.Connection) -> int:
    """The version of the schema in ``conn`` (0 for an empty database)."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def migrate(
    conn: sqlite3.Connection,
    *,
    target: int = LATEST_VERSION,
    applied_at: str = "",
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Bring ``conn`` (autocommit mode) to ``target`` in ONE transaction; returns the version found.

    Either every pending migration is applied or none is. ``target`` below the latest exists for tests
    that build an old database.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        found = schema_version(conn)
        known = migrations[-1].version if migrations else 0
        if found > known:
            raise SchemaTooNew(
                f"the database has schema version {found}, this chargeops knows up to {known}: upgrade "
                "chargeops (never open a database with an older release)"
            )
        for migration in migrations:
            if found < migration.version <= target:
                for step in migration.steps:
                    if isinstance(step, str):
                        conn.execute(step)
                    else:
                        step(conn)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (migration.version, applied_at),
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found
