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
    # Derived, so that every question asked per station is O(1) at 10,000 stations: rank in `order`, the
    # size of each wave, and per wave how many of its stations have neither converged nor failed.
    _rank: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)
    _sizes: tuple[int, ...] = dataclasses.field(init=False, repr=False, compare=False)
    _unsettled: list[int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rank = {identity: n for n, identity in enumerate(self.order)}
        self._sizes = tuple(math.ceil(len(self.order) * share / 100) for share in self.waves)
        self._recount()

    def _recount(self) -> None:
        settled = [False] * len(self.order)
        for key in (*self.converged, *self.failed):
            rank = self._rank.get(key)
            if rank is not None:
                settled[rank] = True
        self._unsettled = [size - sum(settled[:size]) for size in self._sizes]

    def _settled(self, key: str) -> bool:
        return key in self.converged or key in self.failed

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
        return self.order[:self._sizes[min(k, len(self._sizes) - 1)]]

    def _in_wave(self, rank: int, k: int) -> bool:
        return rank < self._sizes[min(k, len(self._sizes) - 1)]

    @property
    def done(self) -> bool:
        return self.wave >= len(self.waves) - 1 and self._wave_finished(self.wave)

    def admits(self, identity: str) -> bool:
        key = identity.upper()
        rank = self._rank.get(key)
        if rank is None:
            return True  # not part of this rollout (e.g. added later): nothing to stage
        if self.paused is not None:
            return self._in_wave(rank, self.wave) and key in self.converged
        return self._in_wave(rank, self.wave)

    def wave_of(self, identity: str) -> int:
        rank = self._rank.get(identity.upper())
        if rank is not None:
            for k in range(len(self.waves)):
                if self._in_wave(rank, k):
                    return k
        return len(self.waves) - 1

    def report(self, identity: str, *, converged: bool, failed: bool, had_changes: bool) -> None:
        key = identity.upper()
        if had_changes:
            self.changed.add(key)
        before = self._settled(key)
        if converged:
            self.converged.add(key)
            self.failed.discard(key)
        elif failed:
            self.failed.add(key)
        rank = self._rank.get(key)
        if rank is not None and not before and self._settled(key):
            for k, size in enumerate(self._sizes):
                if rank < size:
                    self._unsettled[k] -= 1
        self._advance()

    def _wave_finished(self, k: int) -> bool:
        return self._unsettled[min(k, len(self._unsettled) - 1)] == 0

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
        self._recount()
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
