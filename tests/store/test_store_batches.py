"""Batches waiting for the writer together are written as one (a statement per table), each still all or
nothing, with the same outcome as committing them one after the other."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from controller.store.errors import StoreClosed
from controller.store.records import AuditEntry, ConfigKey
from controller.store.sqlite import SqliteStore

from .helpers import T0, async_test, open_store


def _key(value: str) -> ConfigKey:
    return ConfigKey("HeartbeatInterval", value, False)


async def _written_together(store: SqliteStore,
                            *commits: Callable[[], Awaitable[None]]) -> tuple[list[object], list[str]]:
    """Queue the commits while the writer is busy (on a job that waits), then let it go, so that all of them
    reach it at once. Returns their outcomes and the writer's statements from then on."""
    statements: list[str] = []
    go = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)
        go.wait(10)

    held = asyncio.ensure_future(store.engine.write(hold))
    await asyncio.sleep(0.05)
    tasks = [asyncio.ensure_future(c()) for c in commits]
    for _ in range(3):
        await asyncio.sleep(0)  # every commit reaches the writer's queue
    go.set()
    await held
    results = await asyncio.gather(*tasks, return_exceptions=True)
    seen = list(statements)
    await store.engine.write(lambda conn: conn.set_trace_callback(None))
    return results, seen


@async_test
async def test_batches_waiting_together_are_written_as_one_and_all_stored(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    batches = []
    for n in range(40):
        b = store.batch()
        b.audit(AuditEntry("ChangeConfiguration", T0, {"result": "Accepted", "n": n}, station=f"CP{n}"))
        b.record_configuration(f"CP{n}", [_key(str(300 + n))], T0)  # stations never seen: created
        b.put_state(f"ext/CP{n}", {"n": n})
        batches.append(b)
    results, statements = await _written_together(store, *(b.commit for b in batches))
    assert results == [None] * 40
    savepoints = [s for s in statements if s.startswith("SAVEPOINT")]
    assert savepoints == ["SAVEPOINT merged"]  # one job, not 40
    audit = await store.list_audit(limit=100)
    assert [a.detail["n"] for a in audit] == list(range(40))  # in commit order
    for n in (0, 17, 39):
        st = await store.get_station(f"CP{n}")
        assert st is not None and st.config_value("HEARTBEATINTERVAL") == _key(str(300 + n))
        assert st.configuration_read_at == T0
    states = await store.get_state("ext/")
    assert len(states) == 40 and states["ext/CP17"] == {"n": 17}
    await store.close()


@async_test
async def test_one_bad_batch_fails_alone_and_the_others_written_with_it_are_stored(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    good, bad, other = store.batch(), store.batch(), store.batch()
    good.put_state("ext/A", {"ok": 1})
    good.audit(AuditEntry("ChangeConfiguration", T0, {"result": "Accepted"}, station="A"))
    bad.put_state("ext/B", {"ok": 1})
    bad.put_state("ext/B2", {"not json": object()})  # a bug's value: the writer cannot encode it
    bad.record_configuration("B", [_key("1")], T0)
    other.record_configuration("C", [_key("2")], T0)
    results, statements = await _written_together(store, good.commit, bad.commit, other.commit)
    assert [s for s in statements if s.startswith("SAVEPOINT")] == ["SAVEPOINT merged", *["SAVEPOINT job"] * 3]
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], TypeError)
    assert await store.get_state("ext/") == {"ext/A": {"ok": 1}}  # nothing of the bad batch, not even ext/B
    assert await store.get_station("B") is None
    c = await store.get_station("C")
    assert c is not None and c.config_value("HeartbeatInterval") == _key("2")
    assert [a.station for a in await store.list_audit()] == ["A"]
    await store.close()


@async_test
async def test_batches_written_together_end_as_if_committed_one_after_the_other(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    t1 = T0 + timedelta(seconds=1)
    await store.record_configuration("CP1", [_key("300"), ConfigKey("MeterValueSampleInterval", "60", False)], T0)
    first, second, third = store.batch(), store.batch(), store.batch()
    first.record_configuration("CP1", [_key("600")], T0)
    first.put_state("ext/CP1", {"v": 1})
    second.record_configuration("CP1", [ConfigKey("ConnectionTimeOut", "90", False)], t1, complete=True)
    second.put_state("ext/CP1", {"v": 2})
    third.record_configuration("CP1", [ConfigKey("connectiontimeout", "120", False)], t1)
    results, statements = await _written_together(store, first.commit, second.commit, third.commit)
    assert results == [None] * 3
    assert "SAVEPOINT merged" in statements
    st = await store.get_station("CP1")
    assert st is not None  # the complete read replaced what came before it, the later read updated it
    assert st.configuration == (ConfigKey("connectiontimeout", "120", False),)
    assert st.configuration_read_at == t1
    assert await store.get_state("ext/") == {"ext/CP1": {"v": 2}}
    await store.close()


@async_test
async def test_a_cancelled_commit_is_stored_all_the_same_and_a_closed_store_refuses(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    b = store.batch()
    b.put_state("ext/A", {"ok": 1})
    task = asyncio.ensure_future(b.commit())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    other = store.batch()
    other.put_state("ext/B", {"ok": 2})
    await other.commit()  # committed after the cancelled one: both are durable once it returns
    assert await store.get_state("ext/") == {"ext/A": {"ok": 1}, "ext/B": {"ok": 2}}
    await store.close()
    late = store.batch()
    late.put_state("ext/C", {})
    with pytest.raises(StoreClosed):
        await late.commit()


@async_test
async def test_of_two_reads_of_one_station_written_together_the_later_one_stays(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.record_configuration("CP1", [_key("300")], T0)
    t1 = T0 + timedelta(seconds=5)
    first, second = store.batch(), store.batch()
    first.record_configuration("CP1", [_key("600")], t1)
    first.put_state("ext/CP1", {"v": 1})
    second.record_configuration("CP1", [_key("900")], T0)  # read later, with an earlier clock: still the later one
    second.put_state("ext/CP1", {"v": 2})
    results, statements = await _written_together(store, first.commit, second.commit)
    assert results == [None, None] and "SAVEPOINT merged" in statements
    st = await store.get_station("CP1")
    assert st is not None and st.configuration == (_key("900"),) and st.configuration_read_at == T0
    assert await store.get_state("ext/") == {"ext/CP1": {"v": 2}}
    await store.close()


@async_test
async def test_more_rows_than_one_statement_holds_keep_their_order_and_the_later_of_two_equal_keys_stays(
        tmp_path: Path) -> None:
    from controller.store.sql_ops import ROWS_PER_STATEMENT

    n = 2 * ROWS_PER_STATEMENT + 5  # two full statements of rows and a remainder
    store = await open_store(tmp_path)
    batch = store.batch()
    for i in range(n):
        batch.audit(AuditEntry("ChangeConfiguration", T0 + timedelta(seconds=i), {"n": i}, station=f"CP{i % 3}"))
        batch.put_state(f"k{i % (ROWS_PER_STATEMENT + 1)}", {"n": i})  # keys repeat within and across statements
    keys = [ConfigKey(f"Key{i:03d}", str(i), False) for i in range(n)]
    batch.record_configuration("CP1", [*keys, ConfigKey("KEY007", "later", False)], T0)
    await batch.commit()
    audit = await store.list_audit(limit=10 * n)
    assert [a.detail["n"] for a in audit] == list(range(n)) and [a.id for a in audit] == sorted(a.id for a in audit)
    state = await store.get_state("k")
    assert len(state) == ROWS_PER_STATEMENT + 1
    assert all(state[f"k{j}"] == {"n": max(i for i in range(n) if i % (ROWS_PER_STATEMENT + 1) == j)}
               for j in range(ROWS_PER_STATEMENT + 1))
    rec = await store.get_station("CP1")
    assert rec is not None and len(rec.configuration) == n
    assert rec.config_value("Key007") == ConfigKey("KEY007", "later", False)
    assert rec.config_value("Key100") == ConfigKey("Key100", "100", False)
    await store.close()


@pytest.mark.parametrize("count", [1, 2, 3, 21, 63, 64, 65, 130])
def test_rows_go_in_order_and_in_a_few_statements_whatever_their_count(tmp_path: Path, count: int) -> None:
    from controller.store.sql_ops import ROWS_PER_STATEMENT, many_rows, row_chunks

    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT UNIQUE, v INTEGER)")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(f"k{i % 50}", i) for i in range(count)]  # keys repeat past 50: the later row must win
    many_rows(conn, "INSERT INTO t (k, v) VALUES ", "(?, ?)", rows,
                " ON CONFLICT (k) DO UPDATE SET v = excluded.v")
    conn.set_trace_callback(None)
    got = dict(conn.execute("SELECT k, v FROM t").fetchall())
    assert got == {f"k{j}": max(i for i in range(count) if i % 50 == j) for j in range(min(count, 50))}
    whole, rest = divmod(count, ROWS_PER_STATEMENT)
    assert len(statements) == whole + bin(rest).count("1")  # one statement per chunk, not per row
    assert sum(n * len(starts) for n, starts in row_chunks(count)) == count


@async_test
async def test_configuration_reads_of_many_stations_set_each_read_time_once_the_later_of_two(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.record_configuration("OLD-1", [_key("1")], T0)  # a known station; the others are new
    batch = store.batch()
    for i in range(21):
        batch.record_configuration(f"CP{i}", [_key(str(i))], T0 + timedelta(seconds=i))
    batch.record_configuration("OLD-1", [_key("2")], T0 + timedelta(minutes=1))
    batch.record_configuration("CP3", [_key("33")], T0 + timedelta(minutes=2))  # read twice: the later one stays
    await batch.commit()
    for i in range(21):
        rec = await store.get_station(f"CP{i}")
        assert rec is not None
        expected = T0 + (timedelta(minutes=2) if i == 3 else timedelta(seconds=i))
        assert rec.configuration_read_at == expected
        assert rec.config_value("HeartbeatInterval") == _key("33" if i == 3 else str(i))
    old = await store.get_station("OLD-1")
    assert old is not None and old.configuration_read_at == T0 + timedelta(minutes=1)
    assert old.config_value("HeartbeatInterval") == _key("2")
    await store.close()


@async_test
async def test_bulk_batches_wait_a_moment_for_others_and_share_their_commit(tmp_path: Path) -> None:
    store = await open_store(tmp_path, bulk_linger=0.3)
    commits0 = store.engine.stats().commits
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = store.batch()
    first.record_configuration("CP1", [_key("1")], T0)
    done_first = first.commit()
    await asyncio.sleep(0.05)  # the writer took the first batch and lingers
    second = store.batch()
    second.record_configuration("CP2", [_key("2")], T0)
    await asyncio.gather(done_first, second.commit())
    assert store.engine.stats().commits - commits0 == 1  # one commit for both
    assert loop.time() - started >= 0.25  # the first waited (most of) the linger for company
    assert (await store.get_station("CP2")) is not None
    await store.close()


@async_test
async def test_a_write_that_is_not_bulk_ends_the_linger_at_once(tmp_path: Path) -> None:
    store = await open_store(tmp_path, bulk_linger=5.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    bulk = store.batch()
    bulk.record_configuration("CP1", [_key("1")], T0)
    done_bulk = bulk.commit()
    await asyncio.sleep(0.05)
    await store.put_state("k", {"v": 1})  # an ordinary write: never delayed by a lingering bulk one
    await done_bulk
    assert loop.time() - started < 2.0
    assert await store.get_state("k") == {"k": {"v": 1}}
    bulk = store.batch()
    bulk.record_configuration("CP1", [_key("2")], T0)
    done_bulk = bulk.commit()
    await asyncio.sleep(0.05)
    closing = loop.time()
    await store.close()  # closing does not wait out a linger either
    assert done_bulk.done() and loop.time() - closing < 2.0


@async_test
async def test_a_partial_read_back_keeps_the_time_of_the_last_full_read_and_updates_no_station_row(
        tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.record_configuration("OLD-1", [_key("1"), ConfigKey("MeterValueSampleInterval", "60", False)], T0,
                                     complete=True)

    async def read_backs() -> None:
        batch = store.batch()
        batch.record_configuration("OLD-1", [_key("2")], T0 + timedelta(minutes=1), partial=True)
        batch.record_configuration("NEW-1", [_key("3")], T0 + timedelta(minutes=1), partial=True)  # no row yet
        await batch.commit()

    async def full_read() -> None:
        batch = store.batch()
        batch.record_configuration("OTHER", [_key("4")], T0 + timedelta(minutes=2))
        await batch.commit()

    outcomes, statements = await _written_together(store, read_backs, full_read)
    assert outcomes == [None, None]
    old = await store.get_station("OLD-1")
    assert old is not None and old.configuration_read_at == T0  # still the full read's time
    assert old.config_value("HeartbeatInterval") == _key("2") and old.config_value("MeterValueSampleInterval")
    new = await store.get_station("NEW-1")
    assert new is not None and new.configuration_read_at is None and new.config_value("HeartbeatInterval")
    other = await store.get_station("OTHER")
    assert other is not None and other.configuration_read_at == T0 + timedelta(minutes=2)
    updates = [s for s in statements if s.startswith("UPDATE stations")]
    assert updates and all("'OLD-1'" not in s and "'NEW-1'" not in s for s in updates)  # only OTHER's time
    await store.close()
