"""Desired state from a git repository: follow a branch (newest commit wins) or a tag.

Each check runs `gitfetch.py` in a short-lived child process with a timeout (GitPython is never
imported into the controller: it leaks and blocks). The child fetches the ref into a bare mirror kept in
`workdir` (force-updating it, so a force-push or a moved tag is followed) and returns the YAML files of
the commit's tree; the files are validated in a worker thread and published as a `RevisionEvent`
whose revision is the commit SHA, only when the SHA differs from the last one seen.

Checks run every `interval` seconds ± `jitter` (a share of the interval), and at once on `trigger()`
(a push webhook). A failed check (remote unreachable, timeout, ref gone) publishes nothing: the last
revision stays in force, and the failure shows in `status` until a check succeeds again. A controller
that starts while the remote is unreachable loads the commit its mirror holds from an earlier run (the
failure is reported all the same), rather than waiting for the remote with nothing in force.

Boundary: fetching and reading commits; what a revision means is the receiver's business.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import random
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controller.config.loader import FileCache, validate_sources

from .events import RevisionEvent, Sink, SourceStatus, deliver, redact_url, utc_now

log = logging.getLogger("chargeops.runtime.sources.git")

CHILD = Path(__file__).with_name("gitfetch.py")
# Never wait for a password prompt or an unknown host key in an unattended process.
_CHILD_ENV = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}


class FetchError(Exception):
    """A check did not produce a commit (unreachable remote, timeout, unknown ref, broken mirror)."""


@dataclasses.dataclass(frozen=True, slots=True)
class GitRef:
    kind: str  # "branch" | "tag"
    name: str

    @property
    def full(self) -> str:
        return f"refs/{'heads' if self.kind == 'branch' else 'tags'}/{self.name}"

    @property
    def refspec(self) -> str:
        return f"+{self.full}:{self.full}"  # "+": take force-pushes and moved tags

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def _check_ref_name(name: str) -> str:
    bad = not name or name.startswith(("-", "/")) or name.endswith(("/", ".lock")) or ".." in name
    if bad or any(c.isspace() or c in "~^:?*[\\" for c in name):
        raise ValueError(f"invalid git ref name {name!r}")
    return name


class GitSource:
    """Follows one branch or tag of a git repository. `await start()` checks once, then keeps checking."""

    def __init__(self, url: str, workdir: str | os.PathLike[str], sink: Sink, *, branch: str | None = None,
                 tag: str | None = None, path: str = "", interval: float = 60.0, jitter: float = 0.2,
                 timeout: float = 30.0, env: Mapping[str, str] | None = None,
                 clock: Callable[[], dt.datetime] = utc_now, rng: random.Random | None = None):
        if branch is not None and tag is not None:
            raise ValueError("follow a branch or a tag, not both")
        if url.startswith("-"):
            raise ValueError(f"invalid git URL {redact_url(url)!r}")
        self.url = url
        self.ref = GitRef("tag", _check_ref_name(tag)) if tag is not None else \
            GitRef("branch", _check_ref_name(branch or "main"))
        self.subdir = path.strip().strip("/").removeprefix("./")
        self.workdir = Path(workdir)
        self.sink = sink
        self.interval = interval
        self.jitter = jitter
        self.timeout = timeout
        self.env = dict(env or {})
        self.clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._sha: str | None = None
        self.file_cache = FileCache()  # unchanged files are not parsed and built again (one check at a time)
        self.fetches = 0  # child processes run (for tests and metrics)
        self.status = SourceStatus(kind="git", location=redact_url(url), ref=str(self.ref), mode="interval")

    @property
    def mirror(self) -> Path:
        return self.workdir / "mirror.git"

    async def start(self) -> None:
        """Check once (publishing the current revision if the remote answers), then check periodically."""
        await self.check()
        self._task = asyncio.create_task(self._run(), name=f"source-git-{self.ref.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> GitSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def trigger(self) -> None:
        """Check now (e.g. on a push webhook); calls during a check coalesce into one more check.

        Call it from the event loop's thread.
        """
        self._wake.set()

    async def check(self) -> SourceStatus:
        """Fetch and, if the ref moved, load and publish the new commit. Returns the status after it."""
        async with self._lock:
            await self._check()
        return self.status

    # -- internals --------------------------------------------------------------------------------

    def _next_delay(self) -> float:
        spread = self.interval * self.jitter
        return max(0.01, self.interval + self._rng.uniform(-spread, spread))

    async def _run(self) -> None:
        while True:
            delay = self._next_delay()
            self.status = dataclasses.replace(self.status,
                                              next_check_at=self.clock() + dt.timedelta(seconds=delay))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            await self.check()

    async def _check(self) -> None:
        self.status = dataclasses.replace(self.status, last_attempt_at=self.clock())
        try:
            reply = await self._fetch(fallback=self._sha is None)
            sha = str(reply["sha"])
            files = reply.get("files")
            committed = dt.datetime.fromtimestamp(int(reply["committed_at"]), dt.UTC)
            result = None
            if files is not None and sha != self._sha:
                sources = [(str(name), base64.b64decode(data)) for name, data in files]
                result = await asyncio.to_thread(validate_sources, sources, revision=sha, cache=self.file_cache)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc if isinstance(exc, FetchError) else FetchError(f"{type(exc).__name__}: {exc}"))
            return
        stale = reply.get("stale")
        if stale:  # starting up while the remote is unreachable: the mirror's commit, failure reported
            self._failed(FetchError(f"{stale} (loaded {sha[:12]} from the local mirror of an earlier fetch)"),
                         keeping=sha)
            self.status = dataclasses.replace(self.status, revision=sha)
        else:
            was_failing = self.status.consecutive_failures > 0
            self.status = dataclasses.replace(self.status, last_success_at=self.clock(), consecutive_failures=0,
                                              revision=sha)
            if was_failing:
                log.info("%s: %s reachable again", self.status.location, self.ref)
        if result is None:
            return
        self._sha = sha
        log.info("%s %s: commit %s (%d files, %s)", self.status.location, self.ref, sha[:12], len(files or ()),
                 "valid" if result.desired is not None else f"{len(result.errors)} error(s)")
        await deliver(self.sink, RevisionEvent(sha, result, "git", committed))

    def _failed(self, exc: FetchError, keeping: str | None = None) -> None:
        s = self.status
        message = redact_url(str(exc)).replace(self.url, s.location)
        if s.consecutive_failures == 0 or message != s.last_error:
            log.warning("%s %s: %s (keeping revision %s)", s.location, self.ref, message, keeping or self._sha)
        self.status = dataclasses.replace(s, last_error=message, last_error_at=self.clock(),
                                          consecutive_failures=s.consecutive_failures + 1)

    async def _fetch(self, *, fallback: bool = False) -> dict[str, Any]:
        """Run the child for one fetch; raise FetchError on failure or timeout (with `fallback`, a failed
        fetch still answers with the mirror's commit, if it has one, and says why in `stale`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        request = {"url": self.url, "mirror": str(self.mirror), "refspec": self.ref.refspec,
                   "ref": self.ref.full, "subdir": self.subdir, "known": self._sha, "fallback": fallback}
        env = {**os.environ, **_CHILD_ENV, **self.env}
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        self.fetches += 1
        # -P: do not put this package's folder on the child's sys.path (its modules would shadow others).
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-P", str(CHILD), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), self.timeout)
        except BaseException as exc:
            await self._kill(proc)
            if isinstance(exc, TimeoutError):
                raise FetchError(f"git fetch timed out after {self.timeout:g}s") from None
            raise
        try:
            reply: dict[str, Any] = json.loads(out)
        except ValueError:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            raise FetchError(f"git child process failed: {tail[0]}") from None
        if not reply.get("ok"):
            raise FetchError(str(reply.get("error") or "git fetch failed"))
        return reply

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        """Kill the child and everything it started (git, ssh), then clear locks a killed fetch leaves."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await asyncio.to_thread(_clear_stale_locks, self.mirror)


def _clear_stale_locks(mirror: Path) -> None:
    """Only one fetch runs per mirror and it was just killed, so every lock file in it is stale."""
    if not mirror.is_dir():
        return
    candidates = [mirror / "packed-refs.lock", mirror / "shallow.lock", mirror / "config.lock",
                  mirror / "HEAD.lock", *(mirror / "refs").rglob("*.lock")]
    for lock in candidates:
        with contextlib.suppress(OSError):
            lock.unlink()
