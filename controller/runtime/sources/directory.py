"""Desired state from a local directory, watched with watchdog (polling if the watch cannot start).

How a change becomes a revision:
1. a file system event under the directory (hidden directories such as `.git` and non-YAML files are
   ignored) marks the source dirty; events are debounced: the load starts once `debounce` seconds pass
   without a new one, so a burst of writes gives one load;
2. every *.yaml / *.yml file is read into memory, and read again after `settle` seconds (default 0.1 s:
   the debounce already waited for quiet); the snapshot is taken only when two consecutive reads agree (same
   content hash), so a file that an editor is still writing is never loaded half-written;
3. revision = "dir:" + the content hash; when it differs from the last one, the files are validated
   (`validate_sources`, in a worker thread) and a `RevisionEvent` is published, valid or not.

If watchdog cannot start (inotify watch or instance limits), the source polls file names, sizes and
modification times every `poll_interval` seconds instead, and says so in its status.

Last good revision (`last_good`, a directory the controller owns): every valid revision's files are
copied there (the bytes that were validated, swapped in whole). A controller started while the
directory is invalid then starts on that copy — the same revision as before, reported with the error —
instead of not starting at all, as a git source falls back to the commit its mirror holds; the
directory is still followed, so fixing it takes effect as usual.

Boundary: reading and watching the directory; what a revision means is the receiver's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from controller.config.diagnostics import Diagnostic
from controller.config.loader import FileCache, LoadResult, validate_sources
from controller.config.source import YAML_SUFFIXES

from .events import RevisionEvent, Sink, SourceStatus, deliver, utc_now

log = logging.getLogger("chargeops.runtime.sources.directory")

# Events that change content; opening and closing without writing (our own reads) are not changes.
_CHANGE_EVENTS = frozenset({"created", "deleted", "modified", "moved", "closed"})


class WatchObserver(Protocol):
    """The part of a watchdog observer used here (lets tests inject one that fails to start)."""

    def schedule(self, event_handler: FileSystemEventHandler, path: str, *, recursive: bool = ...) -> object: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """The YAML files of a directory as read at one moment."""

    files: tuple[tuple[str, bytes], ...]  # (name as `chargeops validate DIR` shows it, content), sorted
    digest: str  # sha256 over relative names and contents
    problems: tuple[Diagnostic, ...] = ()  # files that exist but cannot be read

    @property
    def revision(self) -> str:
        return "dir:" + self.digest[:16]


def _is_hidden(rel_parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") for p in rel_parts)


def _yaml_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(Path(dirpath) / fn for fn in filenames
                     if fn.endswith(YAML_SUFFIXES) and not fn.startswith("."))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def read_snapshot(root: Path) -> Snapshot:
    """Read every YAML file under `root` (hidden directories and files skipped). Blocking.

    Raises FileNotFoundError if `root` is not a directory (any more).
    """
    if not root.is_dir():
        raise FileNotFoundError(2, "no such directory", str(root))
    h = hashlib.sha256()
    files: list[tuple[str, bytes]] = []
    problems: list[Diagnostic] = []
    for path in _yaml_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # deleted since the listing: a change, which the next read will see
        except OSError as exc:
            problems.append(Diagnostic("unreadable-file", f"cannot read file: {exc.strerror or exc}",
                                       file=path.as_posix()))
            h.update(f"{rel}\0!{exc.errno}\0".encode())
            continue
        files.append((path.as_posix(), data))
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return Snapshot(tuple(files), h.hexdigest(), tuple(problems))


def load_snapshot(snap: Snapshot, cache: FileCache | None = None) -> LoadResult:
    """Validate a snapshot (blocking: run it in a worker thread); `cache`: see `FileCache`."""
    result = validate_sources(snap.files, revision=snap.revision, cache=cache)
    if snap.problems:
        return LoadResult(None, [*snap.problems, *result.diagnostics], result.files, result.documents)
    return result


def save_last_good(target: Path, root: Path, snap: Snapshot) -> None:
    """Keep `snap`'s files (relative to `root`) in `target`, replacing what was there as a whole. Blocking."""
    staging = target.with_name(target.name + ".new")
    old = target.with_name(target.name + ".old")
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, data in snap.files:
        rel = Path(name).relative_to(root)
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (staging / ".revision").write_text(snap.revision + "\n", encoding="ascii")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def stat_signature(root: Path) -> tuple[tuple[str, int, int, int], ...]:
    """Names, sizes, modification times and inodes of the YAML files: what the polling fallback compares."""
    sig = []
    for path in _yaml_files(root):
        try:
            st = path.stat()
        except OSError:
            continue
        sig.append((path.as_posix(), st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(sig)


class _Handler(FileSystemEventHandler):
    """Runs in watchdog's thread: filters events and pokes the source on its event loop."""

    def __init__(self, root: Path, poke: Callable[[], None]):
        self._root = str(root)
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGE_EVENTS:
            return
        if any(self._relevant(os.fsdecode(p), event.is_directory) for p in (event.src_path, event.dest_path) if p):
            self._poke()

    def _relevant(self, path: str, is_directory: bool) -> bool:
        rel = os.path.relpath(path, self._root)
        if rel == ".":
            return is_directory
        if rel.startswith(".." + os.sep) or _is_hidden(tuple(Path(rel).parts)):
            return False
        return is_directory or path.endswith(YAML_SUFFIXES)


class DirectorySource:
    """Follows a local directory. `await start()` loads it once, then watches; `await stop()` ends it."""

    def __init__(self, path: str | os.PathLike[str], sink: Sink, *, debounce: float = 0.5,
                 settle: float | None = None, poll_interval: float = 2.0,
                 observer_factory: Callable[[], WatchObserver] | None = None,
                 clock: Callable[[], dt.datetime] = utc_now, last_good: str | os.PathLike[str] | None = None):
        self.root = Path(path)
        self.last_good = Path(last_good) if last_good is not None else None
        self.sink = sink
        self.debounce = debounce
        # the second read only confirms what the debounce (quiet for `debounce` seconds) already suggests
        self.settle = min(debounce, 0.1) if settle is None else settle
        self.poll_interval = poll_interval
        self.clock = clock
        self._observer_factory: Callable[[], WatchObserver] = observer_factory or Observer
        self._observer: WatchObserver | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty = asyncio.Event()
        self._last_change = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._revision: str | None = None
        self.loads = 0  # validations run (for tests and metrics)
        self.file_cache = FileCache()  # unchanged files are not parsed and built again (one load at a time)
        self.status = SourceStatus(kind="directory", location=self.root.as_posix())

    async def start(self) -> None:
        """Load the directory as it is now (publishing its revision), then follow changes."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root} is not a directory")
        self._loop = asyncio.get_running_loop()
        # Watch first, so that nothing written during the initial load goes unnoticed.
        mode = await asyncio.to_thread(self._start_observer)
        self.status = dataclasses.replace(self.status, mode=mode)
        baseline = await asyncio.to_thread(stat_signature, self.root) if mode == "polling" else ()
        await self._load_stable()
        self._tasks.append(asyncio.create_task(self._run(), name=f"source-dir-{self.root.name}"))
        if mode == "polling":
            self._tasks.append(asyncio.create_task(self._poll(baseline), name=f"source-dir-poll-{self.root.name}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        obs, self._observer = self._observer, None
        if obs is not None:
            await asyncio.to_thread(self._stop_observer, obs)

    async def __aenter__(self) -> DirectorySource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- watching ---------------------------------------------------------------------------------

    def _start_observer(self) -> str:
        try:
            obs = self._observer_factory()
            obs.schedule(_Handler(self.root, self._poke_threadsafe), str(self.root), recursive=True)
            obs.start()
        except OSError as exc:  # inotify limits (ENOSPC, EMFILE), or no inotify at all
            log.warning("cannot watch %s (%s); polling every %.1fs instead", self.root, exc, self.poll_interval)
            return "polling"
        self._observer = obs
        return "watchdog"

    @staticmethod
    def _stop_observer(obs: WatchObserver) -> None:
        obs.stop()
        with contextlib.suppress(RuntimeError):
            obs.join(timeout=5)

    def _poke_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        assert self._loop is not None
        self._last_change = self._loop.time()
        self._dirty.set()

    async def _poll(self, last: tuple[tuple[str, int, int, int], ...]) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            sig = await asyncio.to_thread(stat_signature, self.root)
            if sig != last:
                last = sig
                self._poke()

    # -- loading ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._loop is not None
        while True:
            await self._dirty.wait()
            while (quiet := self._last_change + self.debounce - self._loop.time()) > 0:
                await asyncio.sleep(quiet)
            self._dirty.clear()
            try:
                await self._load_stable()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("loading %s failed", self.root)
                self._failed(f"loading failed: {exc}")

    async def _load_stable(self) -> None:
        """Read until two consecutive reads agree, then publish the snapshot if its revision is new."""
        self.status = dataclasses.replace(self.status, last_attempt_at=self.clock())
        try:
            snap = await asyncio.to_thread(read_snapshot, self.root)
            while True:
                await asyncio.sleep(self.settle)
                again = await asyncio.to_thread(read_snapshot, self.root)
                if again.digest == snap.digest:
                    break
                log.debug("%s changed while being read; reading again", self.root)
                snap = again
        except OSError as exc:  # the directory itself vanished or became unreadable
            self._failed(f"cannot read {self.root}: {exc.strerror or exc}")
            return
        self.status = dataclasses.replace(self.status, last_success_at=self.clock(), consecutive_failures=0)
        if snap.revision == self._revision:
            return
        result = await asyncio.to_thread(load_snapshot, snap, self.file_cache)
        self.loads += 1
        first = self._revision is None
        self._revision = snap.revision
        self.status = dataclasses.replace(self.status, revision=snap.revision)
        log.info("%s: revision %s (%d files, %s)", self.root, snap.revision, len(snap.files),
                 "valid" if result.desired is not None else f"{len(result.errors)} error(s)")
        if result.desired is not None and self.last_good is not None:
            try:
                await asyncio.to_thread(save_last_good, self.last_good, self.root, snap)
            except OSError as exc:  # the copy is a fallback for the next start; losing it loses nothing now
                log.warning("cannot keep the last good revision in %s: %s", self.last_good, exc)
        elif result.desired is None and first:
            await self._fall_back()
        await deliver(self.sink, RevisionEvent(snap.revision, result, "directory"))

    async def _fall_back(self) -> None:
        """Starting on an invalid directory: publish the last good copy first, if there is a valid one."""
        if self.last_good is None or not self.last_good.is_dir():
            return
        try:
            snap = await asyncio.to_thread(read_snapshot, self.last_good)
        except OSError:
            return
        result = await asyncio.to_thread(load_snapshot, snap)
        if result.desired is None:
            return
        log.warning("%s is invalid: starting on the last good revision %s kept in %s", self.root, snap.revision,
                    self.last_good)
        await deliver(self.sink, RevisionEvent(snap.revision, result, "directory"))

    def _failed(self, message: str) -> None:
        s = self.status
        self.status = dataclasses.replace(s, last_error=message, last_error_at=self.clock(),
                                          consecutive_failures=s.consecutive_failures + 1)
        log.warning("%s", message)
