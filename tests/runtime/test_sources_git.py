"""GitSource against real repositories: a local bare repository is the remote, changed with the git CLI."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from controller.runtime.sources import GitSource, RevisionEvent, offer_to, redact_url
from controller.runtime.state import DesiredHolder

from .kit import GIT_ENV, Remote, drain, next_event, run, station, tiny_repo

Queue = asyncio.Queue[RevisionEvent]


def source(remote: Remote, tmp: Path, sink: Queue | DesiredHolder, **kw: Any) -> GitSource:
    target = offer_to(sink) if isinstance(sink, DesiredHolder) else sink
    return GitSource(remote.url, tmp / "mirror", target, env=GIT_ENV, timeout=10, **kw)


def test_the_first_check_loads_the_head_commit_from_its_tree_with_its_sha(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    sha = remote.commit(tiny_repo())
    (remote.work / "stations" / "st-1.yaml").write_text("uncommitted: [")  # a working tree is never read

    async def main() -> None:
        q: Queue = asyncio.Queue()
        src = source(remote, tmp_path, q)
        status = await src.check()
        ev = drain(q)
        assert [e.revision for e in ev] == [sha]
        assert ev[0].ok and ev[0].result.desired is not None and ev[0].result.desired.revision == sha
        assert ev[0].committed_at is not None
        assert status.ok and status.revision == sha and status.ref == "branch main"

    run(main())


def test_a_new_commit_is_published_once_and_an_unchanged_branch_not_at_all(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(tiny_repo())

    async def main() -> None:
        q: Queue = asyncio.Queue()
        src = source(remote, tmp_path, q)
        await src.check()
        sha2 = remote.commit({"stations/st-2.yaml": station("st-2")})
        await src.check()
        await src.check()
        ev = drain(q)
        assert [e.revision for e in ev[1:]] == [sha2]
        assert ev[1].result.desired is not None and len(ev[1].result.desired.stations) == 2

    run(main())


def test_an_invalid_commit_is_reported_with_file_and_line_and_the_last_good_revision_stays(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    good = remote.commit(tiny_repo())

    async def main() -> None:
        holder = DesiredHolder()
        src = source(remote, tmp_path, holder)
        await src.check()
        bad = remote.commit({"stations/st-1.yaml": station().replace("  evses:", "  evses: [\n")})
        status = await src.check()
        assert holder.revision == good
        assert holder.last_failure is not None and holder.last_failure.revision == bad
        err = holder.last_failure.errors[0]
        assert err.file == "stations/st-1.yaml" and err.line is not None
        assert status.ok and status.revision == bad  # the source works; the revision is what is wrong
        fixed = remote.commit({"stations/st-1.yaml": station(identity="ST-ONE")})
        await src.check()
        assert holder.revision == fixed and holder.last_failure is None

    run(main())


def test_a_force_push_to_an_older_commit_makes_that_commit_win(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    old = remote.commit(tiny_repo())
    remote.commit({"stations/st-2.yaml": station("st-2")})

    async def main() -> None:
        holder = DesiredHolder()
        src = source(remote, tmp_path, holder)
        await src.check()
        remote.force_push(old)
        await src.check()
        assert holder.revision == old
        assert holder.desired is not None and sorted(holder.desired.stations) == ["st-1"]

    run(main())


def test_a_tag_is_followed_and_moving_it_loads_the_commit_it_now_names(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    v1 = remote.commit(tiny_repo())
    remote.tag("prod", v1)
    v2 = remote.commit({"stations/st-2.yaml": station("st-2")})  # on main, not yet released

    async def main() -> None:
        q: Queue = asyncio.Queue()
        src = source(remote, tmp_path, q, tag="prod")
        await src.check()
        remote.tag("prod", v2)
        await src.check()
        assert [e.revision for e in drain(q)] == [v1, v2]
        assert src.status.ref == "tag prod"

    run(main())


def test_only_files_under_the_path_option_are_loaded_and_hidden_folders_are_skipped(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    sha = remote.commit({**tiny_repo("owners/garage/"), "owners/garage/.drafts/x.yaml": "broken: [",
                         "other/owner.yaml": "not: ours", "README.md": "hello"})

    async def main() -> None:
        q: Queue = asyncio.Queue()
        src = source(remote, tmp_path, q, path="owners/garage/")
        await src.check()
        (ev,) = drain(q)
        assert ev.revision == sha and ev.ok, [d.message for d in ev.result.diagnostics]
        assert ev.result.files == 2

    run(main())


def test_an_unreachable_remote_is_reported_keeps_the_revision_and_recovers(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    good = remote.commit(tiny_repo())

    async def main() -> None:
        holder = DesiredHolder()
        src = source(remote, tmp_path, holder)
        await src.check()
        remote.bare.rename(tmp_path / "moved.git")
        status = await src.check()
        assert not status.ok and status.consecutive_failures == 1
        assert status.last_error and "does not appear to be a git repository" in status.last_error
        assert status.revision == good and holder.revision == good
        (tmp_path / "moved.git").rename(remote.bare)
        newer = remote.commit({"stations/st-2.yaml": station("st-2")})
        status = await src.check()
        assert status.ok and status.revision == newer and holder.revision == newer
        assert status.last_error_at is not None and status.last_success_at is not None
        assert status.last_success_at > status.last_error_at

    run(main())


def test_the_interval_picks_up_commits_and_trigger_fetches_at_once(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(tiny_repo())

    async def main() -> None:
        q: Queue = asyncio.Queue()
        src = source(remote, tmp_path, q, interval=0.1, jitter=0.5)
        async with src:
            await next_event(q)
            sha2 = remote.commit({"stations/st-2.yaml": station("st-2")})
            assert (await next_event(q)).revision == sha2
        src = source(remote, tmp_path, q, interval=300)
        async with src:
            await next_event(q)  # the new source's first load
            assert src.status.next_check_at is not None
            sha3 = remote.commit({"stations/st-3.yaml": station("st-3")})
            src.trigger()
            assert (await next_event(q)).revision == sha3

    run(main())


def test_a_fetch_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        q: Queue = asyncio.Queue()
        hang = {**GIT_ENV, "GIT_SSH_COMMAND": "sh -c 'sleep 30' --", "GIT_SSH_VARIANT": "simple"}
        src = GitSource("ssh://git.example.invalid/owner.git", tmp_path / "m", q, timeout=0.5, env=hang)
        started = time.monotonic()
        status = await src.check()
        assert time.monotonic() - started < 3
        assert status.last_error == "git fetch timed out after 0.5s" and status.revision is None
        assert q.empty()

    run(main())


def test_credentials_in_the_url_never_show_in_status() -> None:
    src = GitSource("https://bot:s3cret@git.example.com/o/r.git", "/nonexistent", asyncio.Queue())
    assert src.status.location == "https://***@git.example.com/o/r.git"
    assert redact_url("fatal: https://u:p@h/x and git@h:y") == "fatal: https://***@h/x and git@h:y"
