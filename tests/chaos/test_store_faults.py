"""The store cannot commit — a full disk (a real SQLITE_FULL, from `PRAGMA max_page_count`) or a database
turned read-only (a real SQLITE_READONLY, from `PRAGMA query_only`) — while chargers run sessions with meter
values flowing.

Transaction messages are then not answered: the central system closes the socket and the charger keeps
them queued and sends them again. The condition is logged (the failed commits and each message left
unanswered) and counted in the writer's statistics. A charger without sessions keeps being answered
(heartbeats, Authorize). When the disk recovers, every queued message is delivered, and the store holds
each session once, with nothing lost.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from controller.store.errors import StoreUnavailable
from controller.store.sqlite import SqliteStore
from tests.config.ownerrepo import card, group, owner, profile, station
from tests.integration.harness import csms, desired_of, run, wait_until

from .kit import FAST_RECONCILE, FAST_SERVER, drive, end_sessions, nothing_lost_nothing_twice

CARDS = [f"CARD-{i:04}" for i in range(6)]


def _repo():  # type: ignore[no-untyped-def]
    return desired_of(
        owner(rollout={"waves": [100]}), group("drivers", *(card(c, f"drv-{c}") for c in CARDS)),
        profile("fast-meters", {"ocppConfiguration": {"MeterValueSampleInterval": 10,
                                                      "MeterValuesSampledData": "Energy.Active.Import.Register,"
                                                      "Power.Active.Import,Current.Import,Voltage,SoC"}},
                selector={"labels": {"fleet": "a"}}),
        *(station(n, labels={"fleet": "a"}, offlineAuthorization=True) for n in ("st-1", "st-2", "st-3")))


async def _fill_the_disk(store: SqliteStore) -> Callable[[], Awaitable[None]]:
    """The database may not grow by a single page: SQLITE_FULL as soon as a write needs one."""
    await store.engine.write(lambda conn: conn.execute("PRAGMA max_page_count = 1").fetchone())

    async def free_space() -> None:
        for _ in range(100):  # the pragma may share a batch with writes that fail: repeat until it commits
            try:
                await store.engine.write(lambda conn: conn.execute("PRAGMA max_page_count = 1073741823").fetchone())
                return
            except StoreUnavailable:
                await asyncio.sleep(0.01)
        raise AssertionError("could not give the store its disk back")

    return free_space


async def _make_read_only(store: SqliteStore) -> Callable[[], Awaitable[None]]:
    """The writer's connection turned read-only (`PRAGMA query_only`): every later batch fails at its BEGIN
    with a real SQLITE_READONLY, as on a file or mount turned read-only."""
    def turn_read_only(conn: sqlite3.Connection) -> None:  # (the engine's hook: runs in the writer thread)
        conn.execute("PRAGMA query_only = 1")  # from the next batch on; this one still commits
        store.engine.fault = None

    store.engine.fault = turn_read_only
    await store.engine.write(lambda conn: None)

    async def writable() -> None:
        conn = store.engine._conn  # the writer thread's own connection (serialized: safe from this thread)
        assert conn is not None
        conn.execute("PRAGMA query_only = 0")

    return writable


@pytest.mark.parametrize("condition", ["disk full", "read-only"])
def test_a_store_that_cannot_commit_leaves_transaction_messages_unanswered_and_loses_nothing_when_it_recovers(
        tmp_path: Path, condition: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        async with csms(tmp_path, _repo(), settings=FAST_SERVER, reconcile=FAST_RECONCILE) as h:
            a, b, idle = (h.charger(i, call_timeout=2.0) for i in ("ST-1", "ST-2", "ST-3"))
            cps = [a, b]
            stop = asyncio.Event()
            drivers: list[asyncio.Task[None]] = []
            try:
                for cp in (a, b, idle):
                    await cp.start()
                    await cp.wait_online(10)
                await wait_until(lambda: a.config.get("MeterValueSampleInterval") == "10"
                                 and b.config.get("MeterValueSampleInterval") == "10", 10, "fast meters")
                drivers = [asyncio.create_task(drive(cp, (CARDS[2 * k], CARDS[2 * k + 1]), stop))
                           for k, cp in enumerate(cps)]
                await asyncio.sleep(0.5)
                failed_before = h.store.writer_stats().failed_batches
                connects = [cp.connect_count for cp in cps]
                caplog.clear()

                recover = await (_fill_the_disk(h.store) if condition == "disk full" else _make_read_only(h.store))
                # transaction messages are left unanswered: the socket closes, the chargers keep them
                await wait_until(lambda: all(cp.connect_count >= n + 2 for cp, n in zip(cps, connects)), 10,
                                 "transaction messages refused by closing the socket")
                await wait_until(lambda: all(cp.tx_queue for cp in cps), 5, "messages kept by the chargers")
                assert h.store.writer_stats().failed_batches > failed_before
                logged = caplog.text
                assert "store commit failed" in logged
                assert "closing without answering" in logged and "store unavailable" in logged
                # the store is down for writes, not the central system: a charger without sessions is answered
                t0 = time.perf_counter()
                assert (await idle.send("Authorize", {"idTag": CARDS[0]}))["idTagInfo"]["status"] in (
                    "Accepted", "ConcurrentTx")
                assert "currentTime" in await idle.send("Heartbeat", {})
                assert time.perf_counter() - t0 < 1.0 and idle.connect_count == 1
                await asyncio.sleep(0.5)  # sessions go on meanwhile, the chargers queue their messages
                assert not any(cp.discarded for cp in cps)

                await recover()
                stop.set()
                await asyncio.gather(*drivers)
                await end_sessions(cps)
                sessions, _, samples = await nothing_lost_nothing_twice(h.store, cps)
                assert sessions >= 4 and samples > 0
                print(f"\n{condition}: {h.store.writer_stats().failed_batches - failed_before} failed commits, "
                      f"{sessions} sessions and {samples} answered samples all stored once")
            finally:
                stop.set()
                for task in drivers:
                    task.cancel()
                await asyncio.gather(*drivers, return_exceptions=True)
                for cp in (a, b, idle):
                    await cp.stop()

    run(scenario(), timeout=45)
