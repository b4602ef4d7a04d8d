"""Acknowledged writes survive a killed process; online backup gives a readable, consistent copy."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller.store import SqliteStore
from controller.store.errors import StoreClosed

from .helpers import OWNER, async_test, open_store, sample, start_req

_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from controller.store import SqliteStore
    from controller.store.records import StartRequest

    async def main() -> None:
        store = await SqliteStore.open(sys.argv[1], owner="acme")
        results = await asyncio.gather(*(
            store.start_transaction(StartRequest("CP1", 1, f"TAG{n}", n, "2024-05-01T10:00:00Z"))
            for n in range(300)
        ))
        print(" ".join(str(r.transaction_id) for r in results), flush=True)
        await asyncio.sleep(60)  # killed here, never closed

    asyncio.run(main())
    """
)


def test_everything_acknowledged_is_there_after_the_process_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    db = tmp_path / "chargeops.db"
    child = subprocess.Popen(
        [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    try:
        assert child.stdout is not None
        acknowledged = [int(part) for part in child.stdout.readline().split()]
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(acknowledged) == 300
    assert (tmp_path / "chargeops.db-wal").exists()  # not checkpointed by a clean close

    async def reopen() -> set[int]:
        store = await open_store(tmp_path)
        try:
            return {t.id for t in await store.list_transactions()}
        finally:
            await store.close()

    assert set(acknowledged) <= asyncio.run(reopen())


@async_test
async def test_an_online_backup_is_a_readable_single_file_copy(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.add_meter_values([sample(value=str(n)) for n in range(2000)])
    size_before = await store.size_bytes()
    backup = tmp_path / "backups" / "chargeops-backup.db"
    backup.parent.mkdir()

    writes = asyncio.gather(*(store.start_transaction(start_req(n)) for n in range(200)))
    await store.backup(backup)  # while writes keep committing
    await writes
    assert await store.size_bytes() >= size_before > 0

    copy = sqlite3.connect(backup)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert copy.execute("SELECT COUNT(*) FROM meter_values").fetchone()[0] == 2000
    copy.close()
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    await store.close()

    restored = await SqliteStore.open(backup, owner=OWNER)
    assert len(await restored.list_meter_values()) == 2000
    await restored.close()
    with pytest.raises(StoreClosed):
        await restored.backup(tmp_path / "late.db")
