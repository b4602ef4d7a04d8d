"""Per-station status, always written: sync and health kept apart (Argo CD style), revisions, errors.

- sync: Synced (online, observed, nothing to change), OutOfSync (changes pending), Unknown (offline or
  not observed yet: an offline charger is Unknown, never "drifted").
- health, an ordered enum (worst last): Healthy < Progressing < Degraded < Offline < Missing
  (Missing = declared but never connected).

Boundary: data only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import IntEnum, StrEnum
from typing import Any


class Sync(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class Health(IntEnum):
    HEALTHY = 0
    PROGRESSING = 1
    DEGRADED = 2
    OFFLINE = 3
    MISSING = 4

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclasses.dataclass
class StationStatus:
    identity: str
    name: str | None = None
    sync: Sync = Sync.UNKNOWN
    health: Health = Health.MISSING
    online: bool = False
    removed: bool = False
    suspended: bool = False
    held: bool = False  # removal held until confirmed
    last_applied_revision: str | None = None
    last_attempted_revision: str | None = None
    last_error: str | None = None
    stalled: bool = False  # permanent error: waits for the desired state or the charger to change
    next_retry_at: dt.datetime | None = None
    next_look_at: dt.datetime | None = None
    last_look_at: dt.datetime | None = None
    pending_changes: int = 0
    waiting_for_wave: int | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    converged_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sync"] = self.sync.value
        d["health"] = self.health.label
        for k in ("next_retry_at", "next_look_at", "last_look_at", "converged_at"):
            v = getattr(self, k)
            d[k] = v.isoformat() if v else None
        return {_camel(k): v for k, v in d.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)
