"""Versioned migrations (schema.py): an old database is migrated at open, in one transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from controller.store.errors import SchemaTooNew
from controller.store.records import BootInfo
from controller.store.schema import LATEST_VERSION, MIGRATIONS, Migration, migrate, schema_version
from controller.store.sql_transactions import start_key

from .helpers import async_test, open_store, start_req


def _old_database(path: Path) -> None:
    """A database as the first release left it, with one running session."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, target=1)
    conn.execute(
        "INSERT INTO transactions (owner, station, connector_id, id_tag, meter_start, start_timestamp, start_key,"
        " status, created_at) VALUES ('acme', 'CP1', 1, '04A2B3C4', 1001, ?, ?, 'active', ?)",
        (start_req(1).timestamp, start_key(start_req(1)), "2024-05-01T12:00:00.000000Z"),
    )
    conn.close()


@async_test
async def test_an_old_database_is_migrated_at_open_and_keeps_its_data(tmp_path: Path) -> None:
    _old_database(tmp_path / "chargeops.db")
    store = await open_store(tmp_path)

    versions = await store.engine.read(lambda c: [r[0] for r in c.execute("SELECT version FROM schema_version")])
    assert versions == list(range(1, LATEST_VERSION + 1))
    record = await store.get_transaction(1)
    assert record is not None and record.tariff_version is None and record.meter_start == 1001
    # the session started before the upgrade still deduplicates a re-sent StartTransaction
    assert (await store.start_transaction(start_req(1)))[:2] == (1, False)
    await store.record_boot("CP1", BootInfo("ACME", "Wallbox"), "Accepted", record.created_at)  # a newer table
    assert await store.get_station("CP1") is not None
    await store.close()


def test_a_failing_migration_leaves_the_database_at_its_previous_version(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db", isolation_level=None)
    migrate(conn, target=1)
    broken = (*MIGRATIONS[:1], Migration(2, "broken", ("CREATE TABLE half_done (a)", "SELECT * FROM nowhere")))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, migrations=broken)
    assert schema_version(conn) == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchone() is None
    conn.close()


@async_test
async def test_a_database_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.close()
    conn = sqlite3.connect(tmp_path / "chargeops.db", isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (?, 'future')", (LATEST_VERSION + 1,))
    conn.close()
    with pytest.raises(SchemaTooNew, match="upgrade chargeops"):
        await open_store(tmp_path)
