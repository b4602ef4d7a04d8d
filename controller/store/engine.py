"""SQLite engine: one writer thread with group commit, a small pool of reader threads.

Boundary: connections, threads, transactions and durability. It knows no table; the SQL is in the
sql_*.py modules and the schema in schema.py. The event loop never touches a connection.

Writes: ``await engine.write(fn)`` queues ``fn(connection)``. The single writer thread takes
everything queued (up to ``max_batch``), runs it in ONE transaction (each job inside its own
SAVEPOINT) and COMMITs; only then are the awaiting futures resolved. While one commit is being
synced, new writes queue up and form the next batch: the cost of a sync is shared by every write
waiting for it (group commit), without any added delay. Bulk writes (a job whose ``fn`` has ``bulk = True``:
the reconciler's per-station batches, a fleet-wide change's thousand of them) may wait ``bulk_linger``
seconds for more to join their commit, unless a write that is not bulk comes (a transaction, an
authorization), which ends the wait at once: fewer, larger commits (a 1,000-station change: ~70 commits
became ~10, ~20 % less CPU for its writes - fewer syncs, WAL frames of the pages stations share, thread
hand-offs), while no driver-facing write waits for it. Consecutive jobs whose ``fn`` has the same
``merge_key`` run as the one job ``fn.merged(fns)`` makes of them, in one savepoint (dozens of small
batches of station writes: one statement per table); if that fails with an ordinary error, each runs
alone in its own savepoint, so only the failing one's awaiter gets the error.

Durability: WAL mode with ``synchronous=FULL``, so the WAL is fsynced at every COMMIT and an
acknowledged write survives a process kill *and* a power loss. ``NORMAL`` would be safe against a
process kill but, in WAL mode, may lose the last commits on power loss; we store money, and group
commit already amortises the sync, so FULL is cheap here.

Failures: a job that raises an ordinary error (a bug, a constraint) is rolled back to its savepoint
and only its awaiter gets the error. A failure that means the database cannot take the batch (disk
full, read-only, I/O error, locked, corrupt; see ``is_unavailable``) or a failing COMMIT rolls the
whole batch back and every awaiter of the batch gets ``StoreUnavailable``; the next batch starts
afresh (reconnecting when the rollback itself failed), so the store recovers once the condition
clears.

Test hook: ``engine.fault`` (None in production) runs in the writer thread on the write connection
just before COMMIT; raising there fails the batch exactly like a failing COMMIT. Tests prefer real
conditions (``PRAGMA max_page_count`` for disk-full, another connection holding the write lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from controller.store.errors import StoreClosed, StoreError, StoreUnavailable
from controller.store.records import CommitTiming, WriterStats
from controller.store.schema import migrate

log = logging.getLogger("chargeops.store")

T = TypeVar("T")
Fault = Callable[[sqlite3.Connection], None]

_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot take writes now (as opposed to a bug)."""
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return isinstance(exc, sqlite3.OperationalError)
    return (int(code) & 0xFF) in _UNAVAILABLE_CODES


DEFAULT_BULK_LINGER = 0.02


class _Job:
    __slots__ = ("fn", "future", "loop")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
    ) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future


def _kinds(batch: list[_Job]) -> tuple[tuple[str, int], ...]:
    """What wrote the jobs of a batch (a function's name, or a callable object's class), counted."""
    names: Counter[str] = Counter()
    for job in batch:
        fn: Any = job.fn
        fn = getattr(fn, "func", fn)  # (a functools.partial: the function it binds)
        names[getattr(fn, "__name__", None) or type(fn).__name__] += 1
    return tuple(names.most_common())


def _settle_all(outcomes: list[tuple[_Job, bool, Any]]) -> None:
    """Resolve a commit's futures, in order, with one wake-up per event loop (not one per job: a commit
    holds ~30 jobs in a fleet-wide change, and each wake-up is a syscall and a callback on the loop)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)

    def apply(items: list[tuple[_Job, bool, Any]]) -> None:
        for job, ok, value in items:
            if job.future.done():  # the awaiter was cancelled; the write itself stands
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)

    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(apply, items)


class Engine:
    def __init__(
        self,
        path: Path,
        *,
        readers: int = 4,
        busy_timeout: float = 5.0,
        max_batch: int = 1000,
        now_text: Callable[[], str] = lambda: "",
        checkpoint_interval: float = 1.0,
        bulk_linger: float = DEFAULT_BULK_LINGER,
    ) -> None:
        self.path = path
        self.bulk_linger = bulk_linger  # seconds a bulk write may wait for others (see the module's docstring)
        self._urgent = threading.Event()  # set when a write that is not bulk is queued, or on close
        # WAL checkpoints run in their own thread and connection (PASSIVE: never blocking the writer), not
        # inside a commit: SQLite's automatic checkpoint made every ~1,000th page of writes wait for a
        # checkpoint, the p99 of durable StopTransaction answers at fleet scale.
        self.checkpoint_interval = checkpoint_interval
        self.checkpointed_frames = 0
        self._checkpoint_stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="chargeops-store-checkpoint",
                                              daemon=True)
        self.fault: Fault | None = None
        self.live_version = 0  # bumped by the store after writes of live station state (see SqliteStore)
        self._busy_timeout = busy_timeout
        self._max_batch = max_batch
        self._now_text = now_text
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closing = False
        self._conn: sqlite3.Connection | None = None
        self._ready: ThreadFuture[None] = ThreadFuture()
        self._thread = threading.Thread(target=self._run, name="chargeops-store-writer", daemon=True)
        self._read_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="chargeops-store-read")
        self._idle_readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._writes = self._commits = self._failed = self._largest = 0
        self._slowest: CommitTiming | None = None  # since `slowest_commit(reset=True)`
        self._checkpointing = 0  # checkpoints running now (the checkpoint thread's, 0 or 1)
        self._checkpoints_begun = 0
        # the loop `start` ran on, which `submit` uses while it runs (asyncio.get_running_loop is a getpid system
        # call, and a fleet-wide change submits a write per station); once it stopped, writes from the next loop
        # (tests run several in turn) ask theirs. One running loop at a time writes to an engine
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the writer: create the file (0600), switch to WAL, migrate. Raises what open hit."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()
        try:
            await asyncio.wrap_future(self._ready)
        except BaseException:
            await asyncio.to_thread(self._thread.join)
            self._read_pool.shutdown(wait=True)
            raise
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while not self._checkpoint_stop.wait(self.checkpoint_interval):
            try:
                if conn is None:
                    conn = self._connect(readonly=False)
                self._checkpointing += 1
                self._checkpoints_begun += 1
                try:
                    _busy, _log, moved = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                finally:
                    self._checkpointing -= 1
                self.checkpointed_frames += max(int(moved), 0)
            except sqlite3.Error as exc:  # e.g. a full disk: the writer reports it; try again later
                log.debug("WAL checkpoint failed: %s", exc)
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        """Let the writer drain every queued write, then close all connections."""
        with self._lock:
            first = not self._closing
            self._closing = True
            if first:
                self._queue.put(None)
                self._urgent.set()  # a lingering writer takes the close at once
        self._checkpoint_stop.set()
        if self._checkpointer.is_alive():
            await asyncio.to_thread(self._checkpointer.join)
        await asyncio.to_thread(self._thread.join)
        if first:
            await asyncio.to_thread(self._close_readers)

    @property
    def closed(self) -> bool:
        return self._closing

    def stats(self) -> WriterStats:
        return WriterStats(self._writes, self._commits, self._failed, self._largest)

    def slowest_commit(self, *, reset: bool = False) -> CommitTiming | None:
        """The slowest successful commit since the last reset (None if none), timed in the writer thread: how
        long its jobs and its COMMIT took, what wrote, and whether a WAL checkpoint overlapped the COMMIT.
        For benchmarks and diagnosis of slow durable answers (a StopTransaction waits for its commit)."""
        slowest = self._slowest
        if reset:
            self._slowest = None
        return slowest

    # -- writes ------------------------------------------------------------------------------------
    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the writer thread; resolve once the batch holding it is durably committed."""
        return await self.submit(fn)

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`write` without its coroutine: the future that resolves once the batch holding `fn` is durably
        committed (raises StoreClosed at once, as `write` does)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closing:
                raise StoreClosed("the store is closed")
            self._queue.put(_Job(fn, loop, future))
            if not getattr(fn, "bulk", False):
                self._urgent.set()
        return future

    def _run(self) -> None:
        try:
            self._conn = self._connect_writer(migrate_schema=True)
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            if self.bulk_linger > 0 and getattr(first.fn, "bulk", False):
                self._urgent.wait(self.bulk_linger)  # (returns at once when a write that is not bulk waits)
            self._urgent.clear()  # a write queued after this is taken below or starts the next batch unwaited
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._commit(batch)
        self._close_writer()

    def _commit(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, bool, Any]] = []
        began = time.perf_counter()
        try:
            conn = self._writer_connection()
            conn.execute("BEGIN IMMEDIATE")
            keys = [getattr(job.fn, "merge_key", None) for job in batch]
            i = 0
            while i < len(batch):
                j = i + 1
                if keys[i] is not None:
                    while j < len(batch) and keys[j] == keys[i]:
                        j += 1
                if j - i > 1:
                    outcomes.extend(self._run_merged(conn, batch[i:j]))
                else:
                    outcomes.append(self._run_job(conn, batch[i]))
                i = j
            if self.fault is not None:
                self.fault(conn)
            running, begun = self._checkpointing, self._checkpoints_begun
            committing = time.perf_counter()
            conn.execute("COMMIT")
            ended = time.perf_counter()
            overlapped = bool(running or self._checkpointing or self._checkpoints_begun != begun)
        except Exception as exc:
            self._abort()
            self._failed += 1
            log.warning("store commit failed, %d writes not stored: %s", len(batch), exc)
            failed: list[tuple[_Job, bool, Any]] = []
            for job in batch:
                error = StoreUnavailable(f"the store could not commit ({exc}); nothing of this write was stored")
                error.__cause__ = exc
                failed.append((job, False, error))
            _settle_all(failed)
            return
        self._commits += 1
        self._writes += len(batch)
        self._largest = max(self._largest, len(batch))
        slowest = self._slowest
        if slowest is None or ended - began > slowest.seconds:
            self._slowest = CommitTiming(ended - began, ended - committing, len(batch), _kinds(batch), overlapped)
        _settle_all(outcomes)

    @staticmethod
    def _run_job(conn: sqlite3.Connection, job: _Job) -> tuple[_Job, bool, Any]:
        conn.execute("SAVEPOINT job")
        try:
            value = job.fn(conn)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            return job, False, exc
        conn.execute("RELEASE job")
        return job, True, value

    @classmethod
    def _run_merged(cls, conn: sqlite3.Connection, jobs: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        """Consecutive jobs with one `merge_key`, run as the one job their fn's `merged` makes of them (e.g. a
        statement per table for dozens of small batches); if that fails with an ordinary error, each alone,
        so that only the failing one's awaiter gets it."""
        conn.execute("SAVEPOINT merged")
        try:
            jobs[0].fn.merged([job.fn for job in jobs])(conn)  # type: ignore[attr-defined]
        except Exception as exc:
            if is_unavailable(exc):
                raise
            conn.execute("ROLLBACK TO merged")
            conn.execute("RELEASE merged")
            return [cls._run_job(conn, job) for job in jobs]
        conn.execute("RELEASE merged")
        return [(job, True, None) for job in jobs]

    def _abort(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.warning("store rollback failed; reconnecting for the next batch")
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            self._conn = None

    def _writer_connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect_writer(migrate_schema=False)
        return self._conn

    def _connect_writer(self, *, migrate_schema: bool) -> sqlite3.Connection:
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # pending keys live here
        conn = self._connect(readonly=False)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it (see __init__)
            if migrate_schema:
                migrate(conn, applied_at=self._now_text())
            # Statement journals in memory: every job runs in a SAVEPOINT, so SQLite keeps the original of
            # each page the job changes, and past 64 KiB it spilled them to a temporary file (created and
            # unlinked in /var/tmp) with a pwrite per page. A fleet-wide change's commit of ~250 stations
            # spilled megabytes: with this, 58 % fewer pwrite calls and ~30 % less writer CPU per station
            # (10,000 stations, the change's writes alone, alternating runs). Bounded: writer jobs are small
            # (purges go in chunks of 5,000 rows); set after the migration, whose statements may touch whole
            # tables.
            conn.execute("PRAGMA temp_store = MEMORY")
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_writer(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()
        self._conn = None

    def _connect(self, *, readonly: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        return conn

    # -- reads -------------------------------------------------------------------------------------
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction on a pooled connection, off the event loop."""
        if self._closing:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._read_sync, fn)

    def _read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn = self._idle_readers.get_nowait()
        except queue.Empty:
            try:
                conn = self._connect(readonly=True)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"the store cannot be read ({exc})") from exc
            with self._lock:
                self._all_readers.append(conn)
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if is_unavailable(exc):
                raise StoreUnavailable(f"the store cannot be read ({exc})") from exc
            raise
        finally:
            self._idle_readers.put(conn)

    def _close_readers(self) -> None:
        self._read_pool.shutdown(wait=True)
        with self._lock:
            readers, self._all_readers = self._all_readers, []
        for conn in readers:
            conn.close()

    # -- operations --------------------------------------------------------------------------------
    async def backup(self, target: Path) -> None:
        if self._closing:
            raise StoreClosed("the store is closed")
        await asyncio.to_thread(self._backup_sync, target)

    def _backup_sync(self, target: Path) -> None:
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY, 0o600))
        src = self._connect(readonly=True)
        try:
            dst = sqlite3.connect(partial, isolation_level=None)
            try:
                # pages=-1: one step under one read transaction, hence a consistent snapshot; in WAL
                # mode the writer keeps committing meanwhile.
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode = DELETE")  # a self-contained single file
            finally:
                dst.close()
        except sqlite3.Error as exc:
            partial.unlink(missing_ok=True)
            raise StoreUnavailable(f"backup to {target} failed ({exc})") from exc
        finally:
            src.close()
        os.replace(partial, target)

    def size_bytes(self) -> int:
        """Database file plus its WAL (the -shm index is not data)."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(FileNotFoundError):
                total += os.path.getsize(f"{self.path}{suffix}")
        return total
