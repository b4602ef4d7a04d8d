"""Test kit for the desired-state sources: a tiny valid owner repository, real git repositories driven
with the `git` CLI (a local bare repository as the remote), and an asyncio runner with a task-leak check.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from controller.runtime.sources import RevisionEvent

T = TypeVar("T")

# git isolated from the user's and the system's configuration.
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
_AUTHOR = {"GIT_AUTHOR_NAME": "Owner", "GIT_AUTHOR_EMAIL": "owner@example.com",
           "GIT_COMMITTER_NAME": "Owner", "GIT_COMMITTER_EMAIL": "owner@example.com"}

OWNER = """\
apiVersion: chargeops.io/v1
kind: Owner
metadata:
  name: tiny-owner
spec:
  displayName: Tiny Owner
  timezone: Europe/Amsterdam
  country: NL
  currency: EUR
  ocpi:
    countryCode: NL
    partyId: TNY
  plans:
    - name: standard
  billing:
    enabled: false
"""


def station(name: str = "st-1", identity: str | None = None, plan: str = "standard") -> str:
    return f"""\
apiVersion: chargeops.io/v1
kind: Station
metadata:
  name: {name}
spec:
  identity: {identity or name.upper()}
  activation:
    plan: {plan}
  evses:
    - id: 1
      plugs:
        - standard: IEC_62196_T2
          format: SOCKET
          powerType: AC_3_PHASE
          maxVoltage: 230
          maxAmperage: 16
"""


def tiny_repo(prefix: str = "") -> dict[str, str]:
    """A valid owner repository: the Owner and one Station."""
    return {f"{prefix}owner.yaml": OWNER, f"{prefix}stations/st-1.yaml": station()}


def write_files(root: Path, files: Mapping[str, str | None]) -> None:
    """Write (or, for None, delete) files under root."""
    for name, text in files.items():
        p = root / name
        if text is None:
            p.unlink()
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)


def git(*args: str | os.PathLike[str], cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV, **_AUTHOR}
    out = subprocess.run(["git", *map(str, args)], cwd=cwd, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Remote:
    """A bare repository standing in for the owner's remote, and a working clone that pushes to it."""

    def __init__(self, tmp: Path):
        self.bare = tmp / "remote.git"
        self.work = tmp / "work"
        git("init", "-q", "--bare", "-b", "main", self.bare)
        git("init", "-q", "-b", "main", self.work)
        git("remote", "add", "origin", self.bare, cwd=self.work)

    @property
    def url(self) -> str:
        return str(self.bare)

    def commit(self, files: Mapping[str, str | None], message: str = "change") -> str:
        """Commit these file changes on main and push them; returns the new commit's SHA."""
        write_files(self.work, files)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message, cwd=self.work)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def force_push(self, sha: str) -> None:
        """Reset main to `sha` (as `git push --force` of an older commit does)."""
        git("reset", "-q", "--hard", sha, cwd=self.work)
        git("push", "-q", "--force", "origin", "HEAD:refs/heads/main", cwd=self.work)

    def tag(self, name: str, sha: str) -> None:
        """Create or move an annotated tag at `sha` on the remote."""
        git("tag", "-f", "-a", "-m", name, name, sha, cwd=self.work)
        git("push", "-q", "--force", "origin", f"refs/tags/{name}", cwd=self.work)


def run(coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
    """asyncio.run with an overall timeout and a check that the test left no task running."""

    async def main() -> T:
        async with asyncio.timeout(timeout):
            result = await coro
        await asyncio.sleep(0)
        leaked = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        assert not leaked, f"tasks leaked: {leaked}"
        return result

    return asyncio.run(main())


async def next_event(queue: asyncio.Queue[RevisionEvent], timeout: float = 5.0) -> RevisionEvent:
    return await asyncio.wait_for(queue.get(), timeout)


def drain(queue: asyncio.Queue[RevisionEvent]) -> list[RevisionEvent]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out
