"""SQL for billing: tariff history, connector status history, billing records, adjustments, forgetting.

Boundary: synchronous functions of a connection, run by the engine; every statement is filtered by
``owner``. The JSON bodies are opaque here: ``controller.billing`` builds and reads them.

- Tariff history is content-addressed: each document (a tariff, the groups, the station assignments,
  the owner's terms) is stored once under the SHA-256 of its canonical JSON; a revision row holds only
  the manifest of hashes and the time the controller took it. Re-taking the revision already in force
  (a restart) adds no row.
- Billing records and adjustments are append-only; triggers in the schema refuse any change other than
  clearing the personal link (``driver_id``, ``card``) and any delete.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from controller.store.billing_records import (
    BillingAdjustment,
    BillingRow,
    ForgetResult,
    StatusChangeRecord,
    TariffRevision,
    TariffRevisionRef,
)
from controller.store.codec import from_db_time, to_db_time
from controller.store.redact import mask_id_tag

# -- tariff history --------------------------------------------------------------------------------


def _hashes(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _hashes(v)
    elif isinstance(value, list):
        for v in value:
            yield from _hashes(v)


def record_tariff_revision(conn: sqlite3.Connection, owner: str, revision: str, taken_at: str, manifest: str,
                           documents: Mapping[str, str]) -> bool:
    """Store the documents not stored yet and a revision row; False when that revision is already in force."""
    conn.executemany("INSERT INTO tariff_documents (owner, hash, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                     [(owner, h, body) for h, body in documents.items()])
    last = conn.execute("SELECT revision, manifest FROM tariff_revisions WHERE owner = ? ORDER BY id DESC LIMIT 1",
                        (owner,)).fetchone()
    if last is not None and last["revision"] == revision and last["manifest"] == manifest:
        return False
    conn.execute("INSERT INTO tariff_revisions (owner, revision, taken_at, manifest) VALUES (?, ?, ?, ?)",
                 (owner, revision, taken_at, manifest))
    return True


def _revision(conn: sqlite3.Connection, owner: str, row: sqlite3.Row | None) -> TariffRevision | None:
    if row is None:
        return None
    wanted = sorted(set(_hashes(json.loads(row["manifest"]))))
    docs: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for d in conn.execute(f"SELECT hash, body FROM tariff_documents WHERE owner = ? AND hash IN ({marks})",
                              (owner, *chunk)):
            docs[d["hash"]] = d["body"]
    return TariffRevision(row["revision"], from_db_time(row["taken_at"]), row["manifest"], docs)


def _row_at(conn: sqlite3.Connection, owner: str, at: str, columns: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {columns} FROM tariff_revisions WHERE owner = ? AND taken_at <= ?"
        " ORDER BY taken_at DESC, id DESC LIMIT 1", (owner, at)).fetchone()
    if row is None:
        row = conn.execute(f"SELECT {columns} FROM tariff_revisions WHERE owner = ? ORDER BY taken_at, id LIMIT 1",
                           (owner,)).fetchone()
    return row


def tariff_revision_at(conn: sqlite3.Connection, owner: str, at: str) -> TariffRevision | None:
    """The revision taken last at or before ``at``; the earliest known if none was taken by then."""
    return _revision(conn, owner, _row_at(conn, owner, at, "*"))


def tariff_revision_ref_at(conn: sqlite3.Connection, owner: str, at: str) -> TariffRevisionRef | None:
    """`tariff_revision_at` without its documents (cheap: the manifest names them by content hash)."""
    row = _row_at(conn, owner, at, "id, revision, taken_at, manifest")
    if row is None:
        return None
    return TariffRevisionRef(int(row["id"]), str(row["revision"]), from_db_time(row["taken_at"]), str(row["manifest"]))


def tariff_revision_by_ref(conn: sqlite3.Connection, owner: str, ref: int) -> TariffRevision | None:
    row = conn.execute("SELECT * FROM tariff_revisions WHERE owner = ? AND id = ?", (owner, ref)).fetchone()
    return _revision(conn, owner, row)


def latest_tariff_revision(conn: sqlite3.Connection, owner: str) -> TariffRevision | None:
    row = conn.execute("SELECT * FROM tariff_revisions WHERE owner = ? ORDER BY id DESC LIMIT 1",
                       (owner,)).fetchone()
    return _revision(conn, owner, row)


def known_owners(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT owner FROM tariff_revisions UNION SELECT owner FROM billing_records"
                        " UNION SELECT owner FROM transactions ORDER BY owner")
    return [r["owner"] for r in rows]


# -- connector status history ---------------------------------------------------------------------


def status_history(conn: sqlite3.Connection, owner: str, station: str, connector_id: int | None,
                   since: str, limit: int) -> list[StatusChangeRecord]:
    sql = "SELECT * FROM connector_status_history WHERE owner = ? AND station = ? AND received_at >= ?"
    args: list[object] = [owner, station, since]
    if connector_id is not None:
        sql += " AND connector_id = ?"
        args.append(connector_id)
    sql += " ORDER BY id LIMIT ?"
    args.append(limit)
    return [StatusChangeRecord(r["station"], r["connector_id"], r["status"], r["timestamp"],
                               from_db_time(r["received_at"])) for r in conn.execute(sql, args)]


# -- billing records -------------------------------------------------------------------------------


def _row(r: sqlite3.Row) -> BillingRow:
    return BillingRow(
        transaction_id=r["transaction_id"], version=r["version"], final=bool(r["final"]),
        booked_at=from_db_time(r["booked_at"]), station=r["station"], connector_id=r["connector_id"],
        driver_id=r["driver_id"], card=r["card"], group=r["grp"], currency=r["currency"], net=r["net"],
        tax=r["tax"], total=r["total"], under_review=bool(r["under_review"]), session_start=r["session_start"],
        body=r["body"])


def add_billing_record(conn: sqlite3.Connection, owner: str, row: BillingRow) -> tuple[BillingRow, bool]:
    """Insert a version unless that (transaction, version) exists; returns the stored one and whether new."""
    cursor = conn.execute(
        "INSERT INTO billing_records (owner, transaction_id, version, final, booked_at, station, connector_id,"
        " driver_id, card, grp, currency, net, tax, total, under_review, session_start, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (owner, row.transaction_id, row.version, int(row.final), to_db_time(row.booked_at), row.station,
         row.connector_id, row.driver_id, row.card, row.group, row.currency, row.net, row.tax, row.total,
         int(row.under_review), row.session_start, row.body))
    stored = conn.execute("SELECT * FROM billing_records WHERE owner = ? AND transaction_id = ? AND version = ?",
                          (owner, row.transaction_id, row.version)).fetchone()
    return _row(stored), cursor.rowcount == 1


def billing_records_of(conn: sqlite3.Connection, owner: str, transaction_id: int) -> list[BillingRow]:
    return [_row(r) for r in conn.execute(
        "SELECT * FROM billing_records WHERE owner = ? AND transaction_id = ? ORDER BY version",
        (owner, transaction_id))]


def provisional_billing(conn: sqlite3.Connection, owner: str, station: str) -> list[BillingRow]:
    """The latest version of each of the station's transactions, where that version is provisional."""
    return [_row(r) for r in conn.execute(
        "SELECT b.* FROM billing_records b WHERE b.owner = ? AND b.station = ? AND b.final = 0"
        " AND b.version = (SELECT MAX(version) FROM billing_records c"
        "                  WHERE c.owner = b.owner AND c.transaction_id = b.transaction_id)"
        " ORDER BY b.transaction_id", (owner, station))]


def list_billing_records(conn: sqlite3.Connection, owner: str, booked_from: str, booked_to: str) -> list[BillingRow]:
    """Every version of the transactions whose first version was booked in [from, to)."""
    return [_row(r) for r in conn.execute(
        "SELECT * FROM billing_records WHERE owner = ? AND transaction_id IN"
        " (SELECT transaction_id FROM billing_records WHERE owner = ? AND version = 1"
        "  AND booked_at >= ? AND booked_at < ?) ORDER BY transaction_id, version",
        (owner, owner, booked_from, booked_to))]


def add_adjustment(conn: sqlite3.Connection, owner: str, adj: BillingAdjustment) -> BillingAdjustment:
    cursor = conn.execute(
        "INSERT INTO billing_adjustments (owner, transaction_id, amount, currency, reason, created_at, created_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (owner, adj.transaction_id, adj.amount, adj.currency, adj.reason, to_db_time(adj.created_at),
         adj.created_by))
    assert cursor.lastrowid is not None
    return BillingAdjustment(cursor.lastrowid, adj.transaction_id, adj.amount, adj.currency, adj.reason,
                             adj.created_at, adj.created_by)


def list_adjustments(conn: sqlite3.Connection, owner: str, created_from: str, created_to: str,
                     transaction_id: int | None) -> list[BillingAdjustment]:
    sql = "SELECT * FROM billing_adjustments WHERE owner = ? AND created_at >= ? AND created_at < ?"
    args: list[object] = [owner, created_from, created_to]
    if transaction_id is not None:
        sql += " AND transaction_id = ?"
        args.append(transaction_id)
    return [BillingAdjustment(r["id"], r["transaction_id"], r["amount"], r["currency"], r["reason"],
                              from_db_time(r["created_at"]), r["created_by"])
            for r in conn.execute(sql + " ORDER BY id", args)]


# -- forgetting a driver ---------------------------------------------------------------------------


def _in(ids: Sequence[int]) -> str:
    return ",".join("?" * len(ids))


def forget_driver(conn: sqlite3.Connection, owner: str, driver_id: str, id_tags: Sequence[str],
                  before: str | None) -> tuple[ForgetResult, list[int]]:
    """Clear the personal link of the driver's sessions that ended before ``before`` (None: all).

    The driver's sessions: those billed to ``driver_id`` and every session of the cards (idTags) seen on
    them or given. Cleared: driver id and masked card on billing records; idTags on transactions (and
    the start dedup key that holds one); idTags inside the raw frames of those sessions and in the
    driver's Authorize frames and reservations from before ``before``. Amounts are untouched.
    Returns what changed and the ids of the sessions kept because they are too recent.
    """
    billed = [r["transaction_id"] for r in conn.execute(
        "SELECT DISTINCT transaction_id FROM billing_records WHERE owner = ? AND driver_id = ?", (owner, driver_id))]
    tags = {t.upper() for t in id_tags if t}
    for i in range(0, len(billed), 500):
        chunk = billed[i:i + 500]
        for r in conn.execute(f"SELECT id_tag, stop_id_tag FROM transactions WHERE owner = ? AND id IN ({_in(chunk)})",
                              (owner, *chunk)):
            tags |= {t.upper() for t in (r["id_tag"], r["stop_id_tag"]) if t}
    sessions: dict[int, str] = {}
    for r in conn.execute("SELECT id, id_tag, stop_id_tag, COALESCE(stopped_at, created_at) AS ended"
                          " FROM transactions WHERE owner = ?", (owner,)):
        if r["id"] in billed or (r["id_tag"] or "").upper() in tags or (r["stop_id_tag"] or "").upper() in tags:
            sessions[r["id"]] = r["ended"]
    for tx in billed:
        sessions.setdefault(tx, "")
    old = sorted(t for t, ended in sessions.items() if before is None or ended < before)
    forgotten = set(old)
    kept = sorted(t for t in sessions if t not in forgotten)
    records = transactions = frames = reservations = 0
    pattern = re.compile("|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True)), re.IGNORECASE) \
        if tags else None
    for i in range(0, len(old), 500):
        chunk = old[i:i + 500]
        records += conn.execute(
            f"UPDATE billing_records SET driver_id = NULL, card = NULL WHERE owner = ? AND transaction_id IN"
            f" ({_in(chunk)}) AND (driver_id IS NOT NULL OR card IS NOT NULL)", (owner, *chunk)).rowcount
        transactions += conn.execute(
            f"UPDATE transactions SET id_tag = NULL, stop_id_tag = NULL,"
            f" start_key = CASE WHEN start_key IS NULL THEN NULL ELSE 'forgotten:' || id END"
            f" WHERE owner = ? AND id IN ({_in(chunk)}) AND (id_tag IS NOT NULL OR stop_id_tag IS NOT NULL)",
            (owner, *chunk)).rowcount
        if pattern is not None:
            rows = conn.execute(f"SELECT id, text FROM raw_frames WHERE owner = ? AND transaction_id IN ({_in(chunk)})",
                                (owner, *chunk)).fetchall()
            frames += _redact_frames(conn, rows, pattern)
    if pattern is not None:
        cutoff = before or "9999"
        rows = [r for r in conn.execute(
            "SELECT id, text FROM raw_frames WHERE owner = ? AND action = 'Authorize' AND received_at < ?",
            (owner, cutoff)) if pattern.search(r["text"])]
        frames += _redact_frames(conn, rows, pattern)
        for r in conn.execute("SELECT id, id_tag FROM reservations WHERE owner = ? AND updated_at < ?",
                              (owner, cutoff)).fetchall():
            if r["id_tag"].upper() in tags:
                conn.execute("UPDATE reservations SET id_tag = ? WHERE id = ?", (mask_id_tag(r["id_tag"]), r["id"]))
                reservations += 1
    return ForgetResult(records, transactions, frames, reservations), kept


def _redact_frames(conn: sqlite3.Connection, rows: Sequence[sqlite3.Row], pattern: re.Pattern[str]) -> int:
    changed = 0
    for r in rows:
        text = pattern.sub(lambda m: mask_id_tag(m.group(0)), r["text"])
        if text != r["text"]:
            conn.execute("UPDATE raw_frames SET text = ? WHERE id = ?", (text, r["id"]))
            changed += 1
    return changed
