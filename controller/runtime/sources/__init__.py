"""Desired-state sources: where revisions of the owner's repository come from (DESIGN.md §2 Git, §4).

- `DirectorySource`: a local directory, watched (debounced; loaded only when two reads agree);
  revision "dir:<content hash>".
- `GitSource`: a branch (newest commit wins, force-pushes included) or a tag of a git repository,
  fetched in a short-lived child process with a timeout; loaded from the commit's tree; revision = SHA.
- `verify_signature`: the shared-secret check for a push webhook that calls `GitSource.trigger()`.

Both sources validate each new revision off the event loop and publish a `RevisionEvent` (revision and
`LoadResult`, valid or not) to a sink: an async callback or an `asyncio.Queue`. `offer_to(holder)` is
the sink that keeps the last good revision in force. Each source exposes a `SourceStatus`.

Boundary: producing revisions; reconciling them is the runtime's job.
"""

from .directory import DirectorySource, Snapshot, read_snapshot
from .events import RevisionEvent, Sink, SourceStatus, offer_to, redact_url
from .gitsource import FetchError, GitRef, GitSource
from .webhook import SIGNATURE_HEADER, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "DirectorySource",
    "FetchError",
    "GitRef",
    "GitSource",
    "RevisionEvent",
    "Sink",
    "Snapshot",
    "SourceStatus",
    "offer_to",
    "read_snapshot",
    "redact_url",
    "sign",
    "verify_signature",
]
