"""SQL for transaction messages: sessions, raw frames and meter values.

Boundary: synchronous functions of a connection, run by the engine (writes in the writer thread
inside a batch transaction, reads in a reader thread). Every statement is filtered by ``owner``.

Deduplication (DESIGN §3: retries may carry a new message id):
- start key = (station, connector, idTag upper-case, meterStart, charger timestamp); UNIQUE per owner.
- stop key = (station, transactionId, meterStop, charger timestamp); looked up *before* the
  transaction id, so a re-sent orphan stop stays a duplicate even if that id is issued later.
A stop for an id we never issued (or issued to another station) becomes an orphan row with its own
id and ``claimed_transaction_id``: the charger's number is never inserted as a primary key, which
could collide with, or push beyond 32 bits, the ids we hand out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from controller.store.codec import (
    canonical_json,
    flags_from_db,
    flags_to_db,
    from_db_time,
    opt_from_db_time,
    to_db_time,
)
from controller.store.records import (
    FrameDirection,
    MeterSample,
    RawFrame,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
    TransactionRecord,
    TransactionStatus,
)

UNKNOWN_TRANSACTION = "unknown_transaction"
STATION_MISMATCH = "stop_from_other_station"
SECOND_STOP_DIFFERS = "second_stop_differs"


def start_key(start: StartRequest) -> str:
    return canonical_json([start.station, start.connector_id, start.id_tag.upper(), start.meter_start, start.timestamp])


def stop_key(stop: StopRequest) -> str:
    return canonical_json([stop.station, stop.transaction_id, stop.meter_stop, stop.timestamp])


def insert_frames(
    conn: sqlite3.Connection, owner: str, frames: Iterable[RawFrame], transaction_id: int | None = None
) -> None:
    conn.executemany(
        "INSERT INTO raw_frames (owner, station, direction, action, message_id, text, received_at,"
        " transaction_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                owner,
                f.station,
                str(f.direction),
                f.action,
                f.message_id,
                f.text,
                to_db_time(f.received_at),
                transaction_id,
            )
            for f in frames
        ],
    )


def _transaction(row: sqlite3.Row) -> TransactionRecord:
    return TransactionRecord(
        id=row["id"],
        owner=row["owner"],
        station=row["station"],
        connector_id=row["connector_id"],
        id_tag=row["id_tag"],
        parent_id_tag=row["parent_id_tag"],
        meter_start=row["meter_start"],
        start_timestamp=row["start_timestamp"],
        reservation_id=row["reservation_id"],
        start_id_tag_info=row["start_id_tag_info"],
        status=TransactionStatus(row["status"]),
        meter_stop=row["meter_stop"],
        stop_timestamp=row["stop_timestamp"],
        stop_reason=row["stop_reason"],
        stop_id_tag=row["stop_id_tag"],
        stop_id_tag_info=row["stop_id_tag_info"],
        claimed_transaction_id=row["claimed_transaction_id"],
        anomalies=flags_from_db(row["anomalies"]),
        tariff_version=row["tariff_version"],
        git_revision=row["git_revision"],
        created_at=from_db_time(row["created_at"]),
        stopped_at=opt_from_db_time(row["stopped_at"]),
    )


def get_transaction(conn: sqlite3.Connection, owner: str, transaction_id: int) -> TransactionRecord | None:
    row = conn.execute("SELECT * FROM transactions WHERE owner = ? AND id = ?", (owner, transaction_id)).fetchone()
    return None if row is None else _transaction(row)


def select_rows(conn: sqlite3.Connection, table: str, owner: str, equal: dict[str, object | None],
                limit: int) -> list[sqlite3.Row]:
    """Rows of `table` for the owner whose columns equal the given values (None = any), oldest first.
    Table and column names come from this module only, never from input."""
    sql = f"SELECT * FROM {table} WHERE owner = ?"
    args: list[object] = [owner]
    for column, value in equal.items():
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    sql += " ORDER BY id LIMIT ?"
    args.append(limit)
    return list(conn.execute(sql, args))


def _reload(conn: sqlite3.Connection, owner: str, transaction_id: int) -> TransactionRecord:
    record = get_transaction(conn, owner, transaction_id)
    assert record is not None, "written in this transaction"
    return record


def list_transactions(
    conn: sqlite3.Connection, owner: str, station: str | None, status: TransactionStatus | None, limit: int
) -> list[TransactionRecord]:
    rows = select_rows(conn, "transactions", owner, {"station": station,
                                                     "status": None if status is None else str(status)}, limit)
    return [_transaction(row) for row in rows]


def start_transaction(conn: sqlite3.Connection, owner: str, start: StartRequest, now: str) -> StartResult:
    key = start_key(start)
    row = conn.execute("SELECT * FROM transactions WHERE owner = ? AND start_key = ?", (owner, key)).fetchone()
    if row is not None:
        result = StartResult(int(row["id"]), created=False, record=_transaction(row))
    else:
        cursor = conn.execute(
            "INSERT INTO transactions (owner, station, connector_id, id_tag, parent_id_tag, meter_start,"
            " start_timestamp, reservation_id, start_id_tag_info, start_key, status, anomalies,"
            " tariff_version, git_revision, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                owner,
                start.station,
                start.connector_id,
                start.id_tag,
                start.parent_id_tag,
                start.meter_start,
                start.timestamp,
                start.reservation_id,
                start.id_tag_info,
                key,
                str(TransactionStatus.ACTIVE),
                flags_to_db(start.anomalies),
                start.tariff_version,
                start.git_revision,
                now,
            ),
        )
        assert cursor.lastrowid is not None
        stored = conn.execute("SELECT * FROM transactions WHERE id = ?", (cursor.lastrowid,)).fetchone()
        result = StartResult(cursor.lastrowid, created=True, record=_transaction(stored))
    if start.frame is not None:
        insert_frames(conn, owner, [start.frame], result.transaction_id)
    return result


def stop_transaction(conn: sqlite3.Connection, owner: str, stop: StopRequest, now: str) -> StopResult:
    key = stop_key(stop)
    frames = [stop.frame] if stop.frame is not None else []
    row = conn.execute("SELECT * FROM transactions WHERE owner = ? AND stop_key = ?", (owner, key)).fetchone()
    if row is not None:  # re-sent stop: answer as the first time
        record = _transaction(row)
        insert_frames(conn, owner, frames, record.id)
        return StopResult(record, duplicate=True, orphan=record.status is TransactionStatus.ORPHAN)

    row = conn.execute(
        "SELECT * FROM transactions WHERE owner = ? AND id = ? AND status != 'orphan'",
        (owner, stop.transaction_id),
    ).fetchone()
    if row is None or row["station"] != stop.station:
        flag = UNKNOWN_TRANSACTION if row is None else STATION_MISMATCH
        cursor = conn.execute(
            "INSERT INTO transactions (owner, station, id_tag, status, meter_stop, stop_timestamp,"
            " stop_reason, stop_id_tag, stop_id_tag_info, stop_key, claimed_transaction_id, anomalies,"
            " created_at, stopped_at) VALUES (?, ?, ?, 'orphan', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                owner,
                stop.station,
                stop.id_tag,
                stop.meter_stop,
                stop.timestamp,
                stop.reason,
                stop.id_tag,
                stop.id_tag_info,
                key,
                stop.transaction_id,
                flags_to_db([*stop.anomalies, flag]),
                now,
                now,
            ),
        )
        assert cursor.lastrowid is not None
        orphan_id = cursor.lastrowid
        insert_frames(conn, owner, frames, orphan_id)
        insert_meter_values(conn, owner, stop.meter_values, transaction_id=orphan_id)
        record = _reload(conn, owner, orphan_id)
        return StopResult(record, duplicate=False, orphan=True)

    current = _transaction(row)
    insert_frames(conn, owner, frames, current.id)
    if current.status is TransactionStatus.STOPPED:  # a second stop with other values: keep the first
        flag_transaction(conn, owner, current.id, [SECOND_STOP_DIFFERS])
        record = _reload(conn, owner, current.id)
        return StopResult(record, duplicate=True, orphan=False)

    conn.execute(
        "UPDATE transactions SET status = 'stopped', meter_stop = ?, stop_timestamp = ?, stop_reason = ?,"
        " stop_id_tag = ?, stop_id_tag_info = ?, stop_key = ?, anomalies = ?, stopped_at = ?"
        " WHERE owner = ? AND id = ?",
        (
            stop.meter_stop,
            stop.timestamp,
            stop.reason,
            stop.id_tag,
            stop.id_tag_info,
            key,
            flags_to_db([*current.anomalies, *stop.anomalies]),
            now,
            owner,
            current.id,
        ),
    )
    insert_meter_values(conn, owner, stop.meter_values, transaction_id=current.id)
    record = _reload(conn, owner, current.id)
    return StopResult(record, duplicate=False, orphan=False)


def flag_transaction(conn: sqlite3.Connection, owner: str, transaction_id: int, flags: Sequence[str]) -> bool:
    row = conn.execute(
        "SELECT anomalies FROM transactions WHERE owner = ? AND id = ?", (owner, transaction_id)
    ).fetchone()
    if row is None:
        return False
    merged = flags_to_db([*flags_from_db(row["anomalies"]), *flags])
    conn.execute("UPDATE transactions SET anomalies = ? WHERE owner = ? AND id = ?", (merged, owner, transaction_id))
    return True


def list_frames(conn: sqlite3.Connection, owner: str, station: str, limit: int) -> list[RawFrame]:
    rows = conn.execute(
        "SELECT * FROM (SELECT * FROM raw_frames WHERE owner = ? AND station = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
        (owner, station, limit),
    )
    return [
        RawFrame(
            station=row["station"],
            direction=FrameDirection(row["direction"]),
            action=row["action"],
            message_id=row["message_id"],
            text=row["text"],
            received_at=from_db_time(row["received_at"]),
        )
        for row in rows
    ]


def insert_meter_values(
    conn: sqlite3.Connection, owner: str, samples: Iterable[MeterSample], *, transaction_id: int | None = None
) -> int:
    """Batched insert; ``transaction_id`` (when given) overrides the samples' own."""
    rows = [
        (
            owner,
            s.station,
            s.connector_id,
            s.transaction_id if transaction_id is None else transaction_id,
            s.timestamp,
            s.measurand,
            s.phase,
            s.unit,
            s.value,
            s.context,
            s.location,
            s.format,
            s.signed_data,
            to_db_time(s.received_at),
        )
        for s in samples
    ]
    conn.executemany(
        "INSERT INTO meter_values (owner, station, connector_id, transaction_id, timestamp, measurand, phase,"
        " unit, value, context, location, format, signed_data, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def add_meter_values(
    conn: sqlite3.Connection, owner: str, samples: Sequence[MeterSample], frame: RawFrame | None
) -> int:
    count = insert_meter_values(conn, owner, samples)
    if frame is not None:
        ids = {s.transaction_id for s in samples}
        insert_frames(conn, owner, [frame], ids.pop() if len(ids) == 1 else None)
    return count


def list_meter_values(
    conn: sqlite3.Connection, owner: str, transaction_id: int | None, station: str | None, limit: int
) -> list[MeterSample]:
    rows = select_rows(conn, "meter_values", owner, {"transaction_id": transaction_id, "station": station}, limit)
    return [
        MeterSample(
            station=row["station"],
            connector_id=row["connector_id"],
            transaction_id=row["transaction_id"],
            timestamp=row["timestamp"],
            value=row["value"],
            received_at=from_db_time(row["received_at"]),
            measurand=row["measurand"],
            phase=row["phase"],
            unit=row["unit"],
            context=row["context"],
            location=row["location"],
            format=row["format"],
            signed_data=row["signed_data"],
        )
        for row in rows
    ]


def purge_meter_values_chunk(conn: sqlite3.Connection, owner: str, older_than: str, chunk: int,
                             table: str = "meter_values") -> int:
    """Delete at most ``chunk`` rows received before ``older_than`` (short writer jobs) from a telemetry
    table: meter values, the connector status history, or the raw frames of MeterValues (those of
    transaction starts and stops are kept: they are the evidence of a bill)."""
    only = {"meter_values": "", "connector_status_history": "",
            "raw_frames": " AND action = 'MeterValues'"}  # (the condition of its partial index by age)
    if table not in only:
        raise ValueError(f"not a telemetry table: {table}")
    cursor = conn.execute(
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE owner = ?{only[table]} AND received_at < ?"
        " LIMIT ?)",
        (owner, older_than, chunk),
    )
    return cursor.rowcount
