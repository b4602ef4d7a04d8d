"""Rollout in waves: a revision that changes many stations goes to a canary share first, then the rest.

Stations are ordered deterministically for a revision (hash of revision + identity), and wave k admits
the first ceil(waves[k] % x N) of them (cumulative shares, the owner's `rollout.waves`, default
[10, 100]). A wave is finished when each of its stations has either converged or failed; when more than
`failureThresholdPercent` of the stations in the wave that needed changes were rejected or went offline,
the rollout pauses and says why, until resumed. Small changes (fewer than `minStationsForWaves` stations
declared) and `waves: [100]` apply at once. Data-phase work (local lists, ClearCache, price display) is
never held by a wave: a card block must reach every charger now.

The progress is persisted (controller state) so a restarted controller finishes the rollout where it
was, without re-sending what was accepted.

Boundary: pure bookkeeping over identities; the runtime reports outcomes and asks `admits`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any


@dataclasses.dataclass
class Rollout:
    revision: str
    waves: tuple[int, ...]
    threshold: Decimal
    order: list[str]  # identities in rollout order
    wave: int = 0
    paused: str | None = None
    converged: set[str] = dataclasses.field(default_factory=set)
    failed: set[str] = dataclasses.field(default_factory=set)
    changed: set[str] = dataclasses.field(default_factory=set)  # stations that needed changes

    @classmethod
    def start(cls, revision: str, identities: Iterable[str], waves: Iterable[int], threshold: Decimal,
              min_stations: int) -> Rollout:
        ids = sorted({i.upper() for i in identities},
                     key=lambda i: hashlib.sha256(f"{revision}|{i}".encode()).hexdigest())
        w = tuple(waves) or (100,)
        if len(ids) < min_stations:
            w = (100,)
        return cls(revision, w, threshold, ids)

    def wave_members(self, k: int) -> list[str]:
        n = math.ceil(len(self.order) * self.waves[min(k, len(self.waves) - 1)] / 100)
        return self.order[:n]

    @property
    def done(self) -> bool:
        return self.wave >= len(self.waves) - 1 and self._wave_finished(self.wave)

    def admits(self, identity: str) -> bool:
        key = identity.upper()
        if key not in self.order:
            return True  # not part of this rollout (e.g. added later): nothing to stage
        if self.paused is not None:
            return key in self.wave_members(self.wave) and key in self.converged
        return key in self.wave_members(self.wave)

    def wave_of(self, identity: str) -> int:
        key = identity.upper()
        for k in range(len(self.waves)):
            if key in self.wave_members(k):
                return k
        return len(self.waves) - 1

    def report(self, identity: str, *, converged: bool, failed: bool, had_changes: bool) -> None:
        key = identity.upper()
        if had_changes:
            self.changed.add(key)
        if converged:
            self.converged.add(key)
            self.failed.discard(key)
        elif failed:
            self.failed.add(key)
        self._advance()

    def _wave_finished(self, k: int) -> bool:
        return all(i in self.converged or i in self.failed for i in self.wave_members(k))

    def _advance(self) -> None:
        while self.paused is None and self.wave < len(self.waves) - 1 and self._wave_finished(self.wave):
            members = self.wave_members(self.wave)
            touched = [i for i in members if i in self.changed or i in self.failed]
            failed = [i for i in members if i in self.failed]
            if touched and Decimal(len(failed)) * 100 > self.threshold * len(touched):
                self.paused = (f"wave {self.wave + 1} of {len(self.waves)}: {len(failed)} of {len(touched)} "
                               f"station(s) rejected the change or went offline (threshold "
                               f"{self.threshold}%): {', '.join(sorted(failed)[:10])}")
                return
            self.wave += 1

    def resume(self) -> None:
        self.paused = None
        self.failed.clear()
        self._advance()

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "waves": list(self.waves), "threshold": str(self.threshold),
                "order": self.order, "wave": self.wave, "paused": self.paused,
                "converged": sorted(self.converged), "failed": sorted(self.failed), "changed": sorted(self.changed)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Rollout:
        return cls(d["revision"], tuple(d["waves"]), Decimal(d["threshold"]), list(d["order"]), d["wave"],
                   d.get("paused"), set(d.get("converged", ())), set(d.get("failed", ())),
                   set(d.get("changed", ())))

    def summary(self) -> dict[str, Any]:
        return {"revision": self.revision, "wave": self.wave + 1, "waves": list(self.waves),
                "paused": self.paused, "converged": len(self.converged), "failed": sorted(self.failed),
                "stations": len(self.order), "done": self.done}
