"""Small helpers for the store tests: run async tests without pytest-asyncio, build requests, hold
the writer so that a known set of writes forms one batch."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from controller.store.records import FrameDirection, MeterSample, RawFrame, StartRequest, StopRequest
from controller.store.sqlite import SqliteStore

P = ParamSpec("P")
T = TypeVar("T")

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OWNER = "acme"


def async_test(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test in a fresh loop with a timeout, and fail if it leaks a task."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        async def checked() -> None:
            await asyncio.wait_for(fn(*args, **kwargs), timeout=20)
            leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert not leaked, f"tasks leaked: {leaked}"

        asyncio.run(checked())

    return wrapper


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def open_store(tmp_path: Path, **kwargs: Any) -> SqliteStore:
    kwargs.setdefault("owner", OWNER)
    kwargs.setdefault("clock", FakeClock())
    return await SqliteStore.open(tmp_path / "chargeops.db", **kwargs)


def frame(
    station: str = "CP1", action: str = "StartTransaction", message_id: str = "m1", text: str = "[2]"
) -> RawFrame:
    return RawFrame(station, FrameDirection.IN, action, message_id, text, T0)


def start_req(n: int = 0, *, station: str = "CP1", id_tag: str = "04A2B3C4", **kwargs: Any) -> StartRequest:
    kwargs.setdefault("frame", frame(station, message_id=f"start-{n}"))
    return StartRequest(
        station=station,
        connector_id=1,
        id_tag=id_tag,
        meter_start=1000 + n,
        timestamp=f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
        **kwargs,
    )


def stop_req(transaction_id: int, *, station: str = "CP1", meter_stop: int = 5000, **kwargs: Any) -> StopRequest:
    kwargs.setdefault("frame", frame(station, "StopTransaction", f"stop-{transaction_id}"))
    return StopRequest(
        station=station,
        transaction_id=transaction_id,
        meter_stop=meter_stop,
        timestamp="2024-05-01T11:00:00Z",
        reason="Local",
        **kwargs,
    )


def sample(
    transaction_id: int | None = 1, *, value: str = "1234.5", received_at: datetime = T0, station: str = "CP1"
) -> MeterSample:
    return MeterSample(
        station=station,
        connector_id=1,
        transaction_id=transaction_id,
        timestamp="2024-05-01T10:30:00Z",
        value=value,
        received_at=received_at,
        measurand="Energy.Active.Import.Register",
        unit="Wh",
        context="Sample.Periodic",
    )


async def count(store: SqliteStore, table: str) -> int:
    def query(conn: sqlite3.Connection) -> int:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    return await store.engine.read(query)


class HeldWriter:
    """Keep the writer thread busy inside one batch so that writes queued meanwhile form the next one."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._started = threading.Event()
        self._gate = threading.Event()
        self._task: asyncio.Task[bool] | None = None

    def _block(self, conn: sqlite3.Connection) -> bool:
        self._started.set()
        return self._gate.wait(10)

    async def __aenter__(self) -> HeldWriter:
        self._task = asyncio.create_task(self._store.engine.write(self._block))
        await asyncio.to_thread(self._started.wait, 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._gate.set()
        assert self._task is not None
        await self._task


async def queued(*writes: Awaitable[T]) -> list[asyncio.Task[T]]:
    """Start writes as tasks and let each reach the writer queue."""

    async def run(write: Awaitable[T]) -> T:
        return await write

    tasks = [asyncio.create_task(run(w)) for w in writes]
    await asyncio.sleep(0)
    return tasks
