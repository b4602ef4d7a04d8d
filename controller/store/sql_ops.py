"""SQL for reservations and the audit log.

Boundary: synchronous functions of a connection, run by the engine; filtered by ``owner``. Audit
details are redacted here (secrets removed, idTags masked) before they reach the disk, whatever the
caller passed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from controller.jsonenc import compact_encoder
from controller.store.codec import canonical_json, compact_json, from_db_time, to_db_time
from controller.store.records import (
    AuditEntry,
    AuditRecord,
    ReservationRecord,
    ReservationRequest,
    ReservationStatus,
)
from controller.store.redact import redact


def _reservation(row: sqlite3.Row) -> ReservationRecord:
    return ReservationRecord(
        id=row["id"],
        owner=row["owner"],
        station=row["station"],
        connector_id=row["connector_id"],
        id_tag=row["id_tag"],
        expiry=from_db_time(row["expiry"]),
        status=ReservationStatus(row["status"]),
        policy=row["policy"],
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
    )


def get_reservation(conn: sqlite3.Connection, owner: str, reservation_id: int) -> ReservationRecord | None:
    row = conn.execute("SELECT * FROM reservations WHERE owner = ? AND id = ?", (owner, reservation_id)).fetchone()
    return None if row is None else _reservation(row)


def create_reservation(
    conn: sqlite3.Connection, owner: str, request: ReservationRequest, now: str
) -> ReservationRecord:
    cursor = conn.execute(
        "INSERT INTO reservations (owner, station, connector_id, id_tag, expiry, status, policy, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            owner,
            request.station,
            request.connector_id,
            request.id_tag,
            to_db_time(request.expiry),
            str(request.status),
            request.policy,
            now,
            now,
        ),
    )
    assert cursor.lastrowid is not None
    record = get_reservation(conn, owner, cursor.lastrowid)
    assert record is not None
    return record


def update_reservation(
    conn: sqlite3.Connection,
    owner: str,
    reservation_id: int,
    status: ReservationStatus,
    expiry: datetime | None,
    now: str,
    connector_id: int | None = None,
    only_if: Collection[ReservationStatus] | None = None,
) -> ReservationRecord | None:
    sql = ("UPDATE reservations SET status = ?, expiry = COALESCE(?, expiry), connector_id = COALESCE(?, connector_id),"
           " updated_at = ? WHERE owner = ? AND id = ?")
    args: list[object] = [str(status), None if expiry is None else to_db_time(expiry), connector_id, now, owner,
                          reservation_id]
    if only_if is not None:
        wanted = sorted(str(s) for s in only_if)
        sql += f" AND status IN ({', '.join('?' * len(wanted))})" if wanted else " AND 0"
        args.extend(wanted)
    conn.execute(sql, args)
    return get_reservation(conn, owner, reservation_id)


def list_reservations(
    conn: sqlite3.Connection, owner: str, station: str | None, statuses: Collection[ReservationStatus] | None
) -> list[ReservationRecord]:
    sql = "SELECT * FROM reservations WHERE owner = ?"
    args: list[object] = [owner]
    if station is not None:
        sql += " AND station = ?"
        args.append(station)
    if statuses is not None:
        wanted = sorted(str(s) for s in statuses)
        sql += f" AND status IN ({', '.join('?' * len(wanted))})" if wanted else " AND 0"
        args.extend(wanted)
    return [_reservation(row) for row in conn.execute(sql + " ORDER BY id", args)]


def append_audit(conn: sqlite3.Connection, owner: str, entry: AuditEntry) -> None:
    append_audits(conn, owner, (entry,))


ROWS_PER_STATEMENT = 64
_MULTI_ROW: dict[tuple[str, str, str, int], str] = {}  # (head, row, tail, rows) -> the statement


def many_rows(conn: sqlite3.Connection, head: str, row: str, rows: Sequence[Sequence[object]], tail: str = "",
              after: Sequence[object] = ()) -> int:
    """`head + row + tail` for each of `rows` (then the parameters `after`), in order, as if by executemany - but
    several rows to a statement (`VALUES (...), (...), ...`); the rows changed. A fleet-wide change writes a row
    per station to each table, and a statement per row cost a third more (its step, reset and binding) and a GIL
    hand-off each, with the event loop's thread waiting on the other side. The rows go in chunks of
    `ROWS_PER_STATEMENT`, then of the powers of two below it (a commit of 21 rows: 16 + 4 + 1, three
    statements), so a handful of statement texts serve any count. Rows of one statement are inserted in their
    order, and a conflict with an earlier row of the same statement sees that row, as with executemany."""
    changed = 0
    for n, chunks in row_chunks(len(rows)):
        sql = _MULTI_ROW.get((head, row, tail, n))
        if sql is None:
            sql = _MULTI_ROW[(head, row, tail, n)] = head + ", ".join([row] * n) + tail
        changed += conn.executemany(sql, [[*(value for r in rows[i:i + n] for value in r), *after]
                                          for i in chunks]).rowcount
    return changed


def row_chunks(count: int) -> list[tuple[int, range]]:
    """(rows per statement, the start of each such statement), in row order: whole `ROWS_PER_STATEMENT` chunks
    first, then one chunk per power of two of the rest, largest first."""
    out: list[tuple[int, range]] = []
    whole = count - count % ROWS_PER_STATEMENT
    if whole:
        out.append((ROWS_PER_STATEMENT, range(0, whole, ROWS_PER_STATEMENT)))
    start, n = whole, ROWS_PER_STATEMENT // 2
    while start < count:
        if count - start >= n:
            out.append((n, range(start, start + 1)))
            start += n
        n //= 2
    return out


def append_audits(conn: sqlite3.Connection, owner: str, entries: Iterable[AuditEntry]) -> None:
    """Insert audit entries in order (ids ascending in that order)."""
    rows = [(to_db_time(e.at), owner, e.station, e.git_revision, e.action, detail_json(e.detail)) for e in entries]
    many_rows(conn, "INSERT INTO audit_log (at, owner, station, git_revision, action, detail) VALUES ",
              "(?, ?, ?, ?, ?, ?)", rows)


# A fleet-wide change audits the same detail at every station it reaches (the same phase, reason, result and
# old -> new): redacted and encoded once per distinct detail, not once per station. Only the writer thread
# uses it; bounded all the same.
_DETAIL_JSON: dict[object, str] = {}
_DETAIL_JSON_MAX = 1024


# A read-only detail (`controller.runtime.apply.audit_detail` hands one to every station of a fleet-wide change)
# found by identity first: its text without encoding a key. By id, with the detail held so the id stays its own.
_SHARED_DETAILS: dict[int, tuple[Mapping[str, object], str]] = {}
_DETAIL_KEY = compact_encoder(ensure_ascii=False)  # the cache's key: the detail as it is, unredacted


def detail_json(detail: Mapping[str, object]) -> str:
    """`detail` redacted (secrets removed, idTags masked) as canonical JSON, encoded once per distinct detail.

    The cache is keyed by the detail's own JSON text (C, a few microseconds): equal only for details that
    encode alike - same key order, and typed, since `True == 1 == 1.0` encode apart - and never kept beyond
    this cache (the key holds what redaction removes)."""
    shared = type(detail) is MappingProxyType  # read-only: its text is kept with it (see _SHARED_DETAILS)
    if shared:
        hit = _SHARED_DETAILS.get(id(detail))
        if hit is not None and hit[0] is detail:
            return hit[1]
    text = _detail_json(detail)
    if shared:
        if len(_SHARED_DETAILS) >= _DETAIL_JSON_MAX:
            _SHARED_DETAILS.clear()
        _SHARED_DETAILS[id(detail)] = (detail, text)  # (the detail held: its id is not reused while kept)
    return text


def _detail_json(detail: Mapping[str, object]) -> str:
    try:
        key = _DETAIL_KEY(detail if type(detail) is dict else dict(detail))
    except (TypeError, ValueError):  # something JSON cannot hold as it is: redacted and encoded every time
        return canonical_json(redact(dict(detail)))
    found = _DETAIL_JSON.get(key)
    if found is None:
        found = canonical_json(redact(dict(detail)))
        if len(_DETAIL_JSON) >= _DETAIL_JSON_MAX:
            _DETAIL_JSON.clear()
        _DETAIL_JSON[key] = found
    return found


def list_audit(conn: sqlite3.Connection, owner: str, station: str | None, limit: int) -> list[AuditRecord]:
    sql = "SELECT * FROM audit_log WHERE owner = ?"
    args: list[object] = [owner]
    if station is not None:
        sql += " AND station = ?"
        args.append(station)
    rows = conn.execute(f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT ?) ORDER BY id", [*args, limit])
    return [
        AuditRecord(
            id=row["id"],
            owner=row["owner"],
            at=from_db_time(row["at"]),
            station=row["station"],
            git_revision=row["git_revision"],
            action=row["action"],
            detail=json.loads(row["detail"]),
        )
        for row in rows
    ]


def put_state(conn: sqlite3.Connection, owner: str, key: str, value: object, at: datetime) -> None:
    put_states(conn, owner, ((key, value, at),))


def put_states(conn: sqlite3.Connection, owner: str, items: Iterable[tuple[str, object, datetime]]) -> None:
    """Upsert (key, value, at) items in order: of two items with the same key, the later one stays."""
    many_rows(conn, "INSERT INTO controller_state (owner, key, value, updated_at) VALUES ", "(?, ?, ?, ?)",
              [(owner, key, compact_json(value), to_db_time(at)) for key, value, at in items],
              " ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")


def delete_state(conn: sqlite3.Connection, owner: str, key: str) -> None:
    conn.execute("DELETE FROM controller_state WHERE owner = ? AND key = ?", (owner, key))


def get_state(conn: sqlite3.Connection, owner: str, prefix: str) -> dict[str, object]:
    rows = conn.execute(
        "SELECT key, value FROM controller_state WHERE owner = ? AND key >= ? AND key < ? ORDER BY key",
        (owner, prefix, prefix + "\uffff"),
    ).fetchall()
    return {row["key"]: json.loads(row["value"]) for row in rows}
