"""DirectorySource on a real directory with real file writes (watchdog, and the polling fallback)."""

from __future__ import annotations

import asyncio
import errno
import time
from pathlib import Path

from controller.runtime.sources import DirectorySource, RevisionEvent, offer_to, read_snapshot
from controller.runtime.sources.directory import WatchObserver
from controller.runtime.state import DesiredHolder

from .kit import drain, next_event, run, station, tiny_repo, write_files

Queue = asyncio.Queue[RevisionEvent]


def test_start_loads_the_directory_with_a_content_hash_revision(tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(tmp_path, q, debounce=0.05, settle=0.02) as src:
            (ev,) = drain(q)
            assert ev.revision.startswith("dir:") and ev.revision == read_snapshot(tmp_path).revision
            assert ev.ok and ev.result.desired is not None and ev.result.desired.revision == ev.revision
            assert src.status.ok and src.status.mode == "watchdog" and src.status.revision == ev.revision

    run(main())


def test_a_change_is_loaded_an_invalid_one_is_kept_out_and_rewriting_the_same_bytes_is_no_revision(
        tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())

    async def main() -> None:
        q: Queue = asyncio.Queue()
        holder = DesiredHolder()
        offer = offer_to(holder)

        async def sink(ev: RevisionEvent) -> None:
            await offer(ev)
            await q.put(ev)

        async with DirectorySource(tmp_path, sink, debounce=0.05, settle=0.02):
            first = await next_event(q)
            write_files(tmp_path, {"stations/st-2.yaml": station("st-2")})
            second = await next_event(q)
            assert second.ok and holder.revision == second.revision != first.revision
            write_files(tmp_path, {"stations/st-2.yaml": station("st-2", plan="no-such-plan")})
            bad = await next_event(q)
            assert not bad.ok and holder.revision == second.revision
            assert holder.last_failure is not None and holder.last_failure.revision == bad.revision
            write_files(tmp_path, {"stations/st-2.yaml": station("st-2")})  # back to the good content
            assert (await next_event(q)).revision == second.revision
            write_files(tmp_path, {"stations/st-2.yaml": station("st-2")})  # same bytes again
            await asyncio.sleep(0.3)
            assert q.empty()

    run(main())


def test_a_half_written_file_is_not_loaded_until_two_reads_agree(tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())
    text = station("st-2")
    half = len(text) // 2

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(tmp_path, q, debounce=0.05, settle=0.4) as src:
            await next_event(q)
            with (tmp_path / "stations" / "st-2.yaml").open("w") as f:
                f.write(text[:half])
                f.flush()  # the first read, after the debounce, sees half a file...
                await asyncio.sleep(0.15)
                f.write(text[half:])  # ...the second read, after `settle`, the whole one
            ev = await next_event(q)
            assert ev.ok, [d.message for d in ev.result.diagnostics]
            assert ev.revision == read_snapshot(tmp_path).revision
            await asyncio.sleep(0.2)
            assert q.empty() and src.loads == 2

    run(main())


def test_many_quick_writes_are_debounced_into_one_load(tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(tmp_path, q, debounce=0.2, settle=0.02) as src:
            await next_event(q)
            for i in range(20):
                write_files(tmp_path, {"stations/st-2.yaml": station("st-2", identity=f"ST-2-{i}")})
                await asyncio.sleep(0.01)
            ev = await next_event(q)
            await asyncio.sleep(0.3)
            assert q.empty() and src.loads == 2
            assert ev.result.desired is not None and "ST-2-19" in ev.result.desired.stations_by_identity

    run(main())


def test_hidden_folders_and_other_files_do_not_trigger_loads(tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())
    (tmp_path / ".git" / "objects").mkdir(parents=True)

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(tmp_path, q, debounce=0.05, settle=0.02) as src:
            await next_event(q)
            write_files(tmp_path, {".git/objects/x.yaml": "broken: [", "notes.txt": "hi", ".hidden.yaml": "x: ["})
            await asyncio.sleep(0.3)
            assert q.empty() and src.loads == 1

    run(main())


class _NoInotify:
    """An observer that cannot start, as when the inotify watch limit is reached."""

    def __init__(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_when_watchdog_cannot_start_the_source_polls(tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())

    def failing() -> WatchObserver:
        return _NoInotify()  # type: ignore[return-value]

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(tmp_path, q, debounce=0.05, settle=0.02, poll_interval=0.05,
                                   observer_factory=failing) as src:
            await next_event(q)
            assert src.status.mode == "polling"
            started = time.monotonic()
            write_files(tmp_path, {"stations/st-2.yaml": station("st-2")})
            ev = await next_event(q)
            assert ev.ok and time.monotonic() - started < 2

    run(main())


def test_starting_on_an_invalid_directory_falls_back_to_the_last_good_copy(tmp_path: Path) -> None:
    repo, keep = tmp_path / "repo", tmp_path / "c.db.last-good"
    repo.mkdir()
    write_files(repo, tiny_repo())

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(repo, q, debounce=0.05, settle=0.02, last_good=keep):
            (good,) = drain(q)
        assert good.ok and (keep / ".revision").read_text().strip() == good.revision
        assert read_snapshot(keep).revision == good.revision  # the same bytes under the same names

        write_files(repo, {"stations/st-2.yaml": station("st-2", plan="no-such-plan")})  # broken while down
        holder = DesiredHolder()
        offer = offer_to(holder)
        seen: list[RevisionEvent] = []

        async def sink(ev: RevisionEvent) -> None:
            await offer(ev)
            seen.append(ev)

        async with DirectorySource(repo, sink, debounce=0.05, settle=0.02, last_good=keep):
            assert [ev.ok for ev in seen] == [True, False]  # the last good copy first, then the error
            assert holder.revision == good.revision
            assert holder.last_failure is not None and holder.last_failure.revision == seen[1].revision
            assert (keep / ".revision").read_text().strip() == good.revision  # an invalid one is never kept
            write_files(repo, {"stations/st-2.yaml": station("st-2")})  # fixed: taken as usual
            for _ in range(100):
                if holder.revision not in (None, good.revision):
                    break
                await asyncio.sleep(0.05)
            assert holder.revision != good.revision and holder.last_failure is None
            assert (keep / ".revision").read_text().strip() == holder.revision

    run(main())


def test_without_a_last_good_copy_an_invalid_directory_gives_only_the_error(tmp_path: Path) -> None:
    write_files(tmp_path, tiny_repo())
    write_files(tmp_path, {"stations/st-2.yaml": station("st-2", plan="no-such-plan")})

    async def main() -> None:
        q: Queue = asyncio.Queue()
        async with DirectorySource(tmp_path, q, debounce=0.05, settle=0.02, last_good=tmp_path / "none"):
            (ev,) = drain(q)
            assert not ev.ok
        assert not (tmp_path / "none").exists()

    run(main())
