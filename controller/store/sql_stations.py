"""SQL for the observed state of stations: boot, presence, configuration read back, connector status,
local-list version and snapshot, credentials and confirmed security profile.

Boundary: synchronous functions of a connection, run by the engine; filtered by ``owner``.

Local lists are content-addressed: a snapshot is the canonical JSON of the entries (sorted by
upper-case idTag, sorted keys, no spaces) and its key is the SHA-256 of that text. Stations sharing a
list share one snapshot row; a station row holds only its version and the hash.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence

from controller.config.ocpp16_keys import config_key
from controller.store.codec import canonical_json, from_db_time, opt_from_db_time, to_db_time
from controller.store.credentials import fingerprint
from controller.store.records import (
    BootInfo,
    ConfigKey,
    ConnectorStatus,
    Credentials,
    LocalListEntry,
    StationRecord,
)
from controller.store.sql_ops import many_rows


def ensure_station(conn: sqlite3.Connection, owner: str, station: str) -> None:
    conn.execute("INSERT INTO stations (owner, identity) VALUES (?, ?) ON CONFLICT DO NOTHING", (owner, station))


def record_boot(
    conn: sqlite3.Connection, owner: str, station: str, boot: BootInfo, registration_status: str, at: str
) -> None:
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET vendor = ?, model = ?, serial_number = ?, firmware_version = ?,"
        " registration_status = ?, last_boot_at = ?, last_seen = ?, online = 1 WHERE owner = ? AND identity = ?",
        (
            boot.vendor,
            boot.model,
            boot.serial_number,
            boot.firmware_version,
            registration_status,
            at,
            at,
            owner,
            station,
        ),
    )


def set_registration_status(conn: sqlite3.Connection, owner: str, station: str, status: str) -> None:
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET registration_status = ? WHERE owner = ? AND identity = ?", (status, owner, station)
    )


def record_seen(conn: sqlite3.Connection, owner: str, station: str, at: str) -> None:
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET last_seen = MAX(COALESCE(last_seen, ''), ?), online = 1 WHERE owner = ? AND identity = ?",
        (at, owner, station),
    )


def set_online(conn: sqlite3.Connection, owner: str, station: str, online: bool, at: str) -> None:
    ensure_station(conn, owner, station)
    if online:
        record_seen(conn, owner, station, at)
    else:
        conn.execute("UPDATE stations SET online = 0 WHERE owner = ? AND identity = ?", (owner, station))


# station, keys, read at (db time), complete (replaces every key), partial (some keys: the last full read's time
# stays; a fleet-wide change's read-backs, which then write no station row at all)
ConfigRecord = tuple[str, Sequence[ConfigKey], str, bool, bool]
_READ_AT = "UPDATE stations SET config_read_at = ? WHERE owner = ? AND identity = ?"


def record_configurations(conn: sqlite3.Connection, owner: str, records: Sequence[ConfigRecord]) -> None:
    """Record configuration reads, as if one by one in order: keys upserted by name and, unless `partial`, the
    read time set as the station's last full read; a `complete` read replaces every key of its station."""
    if any(r[3] for r in records):  # a replacement must come after the writes before it
        for record in records:
            _record_one_configuration(conn, owner, *record)
        return
    times = {station: at for station, _keys, at, _complete, partial in records if not partial}  # the later time
    if times and _set_read_at(conn, owner, times) != len(times):  # a station's first record
        for station in times:
            ensure_station(conn, owner, station)
        _set_read_at(conn, owner, times)
    only_partial = [station for station, _keys, _at, _complete, partial in records if partial and station not in times]
    if only_partial:  # (a station row that exists is left untouched: no page of the stations table written)
        many_rows(conn, "INSERT INTO stations (owner, identity) VALUES ", "(?, ?)",
                  [(owner, station) for station in dict.fromkeys(only_partial)], " ON CONFLICT DO NOTHING")
    _upsert_keys(conn, owner, [(station, keys, at) for station, keys, at, _complete, _partial in records])


def _set_read_at(conn: sqlite3.Connection, owner: str, times: dict[str, str]) -> int:
    """Set each station's configuration read time (station -> time), several stations to a statement
    (`many_rows`); the number of stations found."""
    return many_rows(conn, "UPDATE stations SET config_read_at = v.column1 FROM (VALUES ", "(?, ?)",
                     [(at, station) for station, at in times.items()],
                     ") AS v WHERE stations.owner = ? AND stations.identity = v.column2", after=(owner,))


def _record_one_configuration(conn: sqlite3.Connection, owner: str, station: str, keys: Sequence[ConfigKey], at: str,
                              complete: bool, partial: bool) -> None:
    if partial and not complete:
        ensure_station(conn, owner, station)
    elif conn.execute(_READ_AT, (at, owner, station)).rowcount == 0:  # first record of this station
        ensure_station(conn, owner, station)
        conn.execute(_READ_AT, (at, owner, station))
    if complete:  # keys the charger no longer reports go; the others are upserted (unchanged ones not rewritten)
        conn.execute("DELETE FROM station_config WHERE owner = ? AND station = ?"
                     " AND key_upper NOT IN (SELECT value FROM json_each(?))",
                     (owner, station, json.dumps([k.upper for k in keys])))
    _upsert_keys(conn, owner, ((station, keys, at),))


def _upsert_keys(conn: sqlite3.Connection, owner: str,
                 reads: Iterable[tuple[str, Sequence[ConfigKey], str]]) -> None:
    many_rows(
        conn, "INSERT INTO station_config (owner, station, key_upper, key, value, readonly, read_at) VALUES ",
        "(?, ?, ?, ?, ?, ?, ?)",
        [(owner, station, k.upper, k.key, k.value, int(k.readonly), at) for station, keys, at in reads for k in keys],
        " ON CONFLICT (owner, station, key_upper) DO UPDATE SET"
        " key = excluded.key, value = excluded.value, readonly = excluded.readonly, read_at = excluded.read_at"
        # a key read again with what it had is not rewritten (its read_at: when it was first read so): a
        # re-observation after a reconnect, ~50 keys, writes no page of this table when nothing changed
        " WHERE station_config.key IS NOT excluded.key OR station_config.value IS NOT excluded.value"
        " OR station_config.readonly IS NOT excluded.readonly",
    )


def record_connector_status(conn: sqlite3.Connection, owner: str, station: str, status: ConnectorStatus) -> None:
    ensure_station(conn, owner, station)
    conn.execute(
        "INSERT INTO connector_status (owner, station, connector_id, status, error_code, info,"
        " vendor_error_code, timestamp, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (owner, station, connector_id) DO UPDATE SET status = excluded.status,"
        " error_code = excluded.error_code, info = excluded.info, vendor_error_code = excluded.vendor_error_code,"
        " timestamp = excluded.timestamp, received_at = excluded.received_at",
        (
            owner,
            station,
            status.connector_id,
            status.status,
            status.error_code,
            status.info,
            status.vendor_error_code,
            status.timestamp,
            to_db_time(status.received_at),
        ),
    )
    conn.execute(  # the timeline billing needs (charging vs idle time, unplug); see sql_billing
        "INSERT INTO connector_status_history (owner, station, connector_id, status, timestamp, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (owner, station, status.connector_id, status.status, status.timestamp, to_db_time(status.received_at)),
    )


def snapshot_of(entries: Sequence[LocalListEntry]) -> tuple[str, str]:
    """(sha256 hex, canonical JSON text) of a local list's content."""
    ordered = sorted(entries, key=lambda e: (e.id_tag.upper(), e.id_tag))
    items = [
        {
            k: v
            for k, v in (
                ("idTag", e.id_tag),
                ("status", e.status),
                ("expiryDate", e.expiry_date),
                ("parentIdTag", e.parent_id_tag),
            )
            if v is not None
        }
        for e in ordered
    ]
    text = canonical_json(items)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), text


def record_local_list(
    conn: sqlite3.Connection, owner: str, station: str, version: int, entries: Sequence[LocalListEntry], now: str
) -> str:
    digest, text = snapshot_of(entries)
    conn.execute(
        "INSERT INTO local_list_snapshots (owner, hash, entries, entry_count, created_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (owner, digest, text, len(entries), now),
    )
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET local_list_version = ?, local_list_hash = ? WHERE owner = ? AND identity = ?",
        (version, digest, owner, station),
    )
    return digest


def record_local_list_ref(conn: sqlite3.Connection, owner: str, station: str, version: int, digest: str) -> bool:
    """Point the station at a snapshot already stored (False, and nothing written, when it is not)."""
    if conn.execute("SELECT 1 FROM local_list_snapshots WHERE owner = ? AND hash = ?", (owner, digest)).fetchone() \
            is None:
        return False
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET local_list_version = ?, local_list_hash = ? WHERE owner = ? AND identity = ?",
        (version, digest, owner, station),
    )
    return True


def record_local_list_version(conn: sqlite3.Connection, owner: str, station: str, version: int) -> None:
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET local_list_version = ?, local_list_hash = NULL WHERE owner = ? AND identity = ?",
        (version, owner, station),
    )


def get_snapshot(conn: sqlite3.Connection, owner: str, digest: str) -> tuple[LocalListEntry, ...] | None:
    row = conn.execute(
        "SELECT entries FROM local_list_snapshots WHERE owner = ? AND hash = ?", (owner, digest)
    ).fetchone()
    if row is None:
        return None
    return tuple(
        LocalListEntry(
            id_tag=item["idTag"],
            status=item["status"],
            expiry_date=item.get("expiryDate"),
            parent_id_tag=item.get("parentIdTag"),
        )
        for item in json.loads(row["entries"])
    )


def prune_snapshots(conn: sqlite3.Connection, owner: str) -> int:
    cursor = conn.execute(
        "DELETE FROM local_list_snapshots WHERE owner = ? AND hash NOT IN"
        " (SELECT local_list_hash FROM stations WHERE owner = ? AND local_list_hash IS NOT NULL)",
        (owner, owner),
    )
    return cursor.rowcount


def set_pending_key(conn: sqlite3.Connection, owner: str, station: str, key: bytes, now: str) -> None:
    if not key:
        raise ValueError("an AuthorizationKey cannot be empty")
    ensure_station(conn, owner, station)
    conn.execute(
        "UPDATE stations SET pending_key = ?, pending_since = ? WHERE owner = ? AND identity = ?",
        (bytes(key), now, owner, station),
    )


def confirm_pending_key(conn: sqlite3.Connection, owner: str, station: str, at: str) -> bool:
    row = conn.execute("SELECT pending_key FROM stations WHERE owner = ? AND identity = ?", (owner, station)).fetchone()
    if row is None or row["pending_key"] is None:
        return False
    conn.execute(
        "UPDATE stations SET confirmed_fingerprint = ?, confirmed_at = ?, pending_key = NULL, pending_since = NULL"
        " WHERE owner = ? AND identity = ?",
        (fingerprint(bytes(row["pending_key"])), at, owner, station),
    )
    return True


def record_security_profile(conn: sqlite3.Connection, owner: str, station: str, profile: int) -> None:
    ensure_station(conn, owner, station)
    conn.execute("UPDATE stations SET security_profile = ? WHERE owner = ? AND identity = ?", (profile, owner, station))


def _station(row: sqlite3.Row, config: list[ConfigKey], connectors: list[ConnectorStatus]) -> StationRecord:
    has_boot = any(row[name] is not None for name in ("vendor", "model", "serial_number", "firmware_version"))
    boot = BootInfo(row["vendor"], row["model"], row["serial_number"], row["firmware_version"]) if has_boot else None
    pending = row["pending_key"]
    return StationRecord(
        identity=row["identity"],
        boot=boot,
        registration_status=row["registration_status"],
        last_boot_at=opt_from_db_time(row["last_boot_at"]),
        last_seen=opt_from_db_time(row["last_seen"]),
        online=bool(row["online"]),
        configuration=tuple(config),
        configuration_read_at=opt_from_db_time(row["config_read_at"]),
        local_list_version=row["local_list_version"],
        local_list_hash=row["local_list_hash"],
        connectors=tuple(sorted(connectors, key=lambda c: c.connector_id)),
        credentials=Credentials(
            pending_key=None if pending is None else bytes(pending),
            pending_since=opt_from_db_time(row["pending_since"]),
            confirmed_fingerprint=row["confirmed_fingerprint"],
            confirmed_at=opt_from_db_time(row["confirmed_at"]),
        ),
        security_profile=row["security_profile"],
    )


def list_stations(conn: sqlite3.Connection, owner: str, station: str | None = None,
                  configuration: bool = True) -> list[StationRecord]:
    where, args = ("owner = ?", [owner]) if station is None else ("owner = ? AND identity = ?", [owner, station])
    where_child = where.replace("identity", "station")
    config: defaultdict[str, list[ConfigKey]] = defaultdict(list)
    if configuration:
        for row in conn.execute(f"SELECT * FROM station_config WHERE {where_child} ORDER BY key_upper", args):
            config[row["station"]].append(config_key(row["key"], row["value"], bool(row["readonly"])))
    connectors: defaultdict[str, list[ConnectorStatus]] = defaultdict(list)
    for row in conn.execute(f"SELECT * FROM connector_status WHERE {where_child}", args):
        connectors[row["station"]].append(
            ConnectorStatus(
                connector_id=row["connector_id"],
                status=row["status"],
                error_code=row["error_code"],
                info=row["info"],
                timestamp=row["timestamp"],
                received_at=from_db_time(row["received_at"]),
                vendor_error_code=row["vendor_error_code"],
            )
        )
    return [
        _station(row, config[row["identity"]], connectors[row["identity"]])
        for row in conn.execute(f"SELECT * FROM stations WHERE {where} ORDER BY identity", args)
    ]
