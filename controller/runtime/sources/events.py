"""What a desired-state source hands to the controller: revision events, and the source's own status.

A source (a watched directory, a followed git branch or tag) publishes a `RevisionEvent` each time it
sees a new revision: the revision id and the `LoadResult` of validating that revision's files, valid or
not. Deciding what to do with it is the receiver's job; `offer_to(holder)` is the usual receiver and
keeps the last good revision in force when a new one is invalid (`DesiredHolder.offer`).

`SourceStatus` says how the source itself is doing (remote unreachable, timeouts, watch mode), apart
from whether the revision it found is valid.

Boundary: plain data and delivery helpers; no I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Literal

from controller.config.loader import LoadResult
from controller.runtime.state import DesiredHolder

log = logging.getLogger("chargeops.runtime.sources")

SourceKind = Literal["git", "directory"]


@dataclasses.dataclass(frozen=True, slots=True)
class RevisionEvent:
    """A newly seen revision: a commit SHA, or "dir:<content hash>", and its validation result."""

    revision: str
    result: LoadResult
    source: SourceKind
    committed_at: dt.datetime | None = None  # commit time (git only), for "time from commit to converged"

    @property
    def ok(self) -> bool:
        return self.result.desired is not None


@dataclasses.dataclass(frozen=True, slots=True)
class SourceStatus:
    """How a source is doing. Replaced as a whole on every change, so a reader sees one consistent view."""

    kind: SourceKind
    location: str  # a path, or a git URL with any credentials redacted
    ref: str | None = None  # "branch main" / "tag v1.2" (git only)
    mode: str = ""  # "watchdog" / "polling" (directory), "interval" (git)
    revision: str | None = None  # the last revision seen (valid or not)
    last_attempt_at: dt.datetime | None = None
    last_success_at: dt.datetime | None = None
    last_error: str | None = None  # the most recent error, kept after recovery (see `ok`)
    last_error_at: dt.datetime | None = None
    consecutive_failures: int = 0
    next_check_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        """The last attempt succeeded."""
        return self.last_success_at is not None and self.consecutive_failures == 0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.isoformat() if isinstance(v, dt.datetime) else v
        out["ok"] = self.ok
        return out


# An async callback, or a queue the controller reads from.
Sink = Callable[[RevisionEvent], Awaitable[None]] | asyncio.Queue[RevisionEvent]


async def deliver(sink: Sink, event: RevisionEvent) -> None:
    """Hand an event to the sink; a failing callback is logged, never allowed to stop the source."""
    try:
        if isinstance(sink, asyncio.Queue):
            await sink.put(event)
        else:
            await sink(event)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the receiver of revision %s failed", event.revision)


def offer_to(holder: DesiredHolder) -> Callable[[RevisionEvent], Awaitable[None]]:
    """A sink that offers each revision to `holder`: a valid one replaces the state in force, an invalid
    one is recorded as the last failure and changes nothing."""

    async def offer(event: RevisionEvent) -> None:
        holder.offer(event.result.desired, event.revision, event.result.errors)

    return offer


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """Hide credentials in URLs (https://user:token@host/… → https://***@host/…) for logs and status."""
    return _USERINFO.sub("***@", text)
