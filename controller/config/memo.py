"""Caches of what depends only on a desired state (and hashable arguments), for the few most recent states.

A desired state is immutable, so anything computed from it alone can be kept while it is in force: the
effective settings of each station, and what thousands of stations share (local lists, revoked sets).
Entries are keyed by the state's identity and hold the state itself, so its id cannot be reused by another
object while cached; only the `states` most recently used are kept, so an old revision can be freed.

Boundary: pure bookkeeping; no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class PerDesiredState:
    def __init__(self, states: int = 3) -> None:
        self._states = states
        self._slots: OrderedDict[int, tuple[object, dict[Hashable, Any]]] = OrderedDict()
        # the slot asked for last: a look asks several times for the state in force, a revision's validation
        # once per station (read and replaced whole, so threads may share it)
        self._last: tuple[object, dict[Hashable, Any]] = (object(), {})

    def table(self, desired: object) -> dict[Hashable, Any]:
        """The cache for `desired` (created empty on first use)."""
        last = self._last
        if last[0] is desired:
            return last[1]
        slot = self._slots.get(id(desired))
        if slot is None or slot[0] is not desired:
            slot = (desired, {})
            self._slots[id(desired)] = slot
            while len(self._slots) > self._states:
                self._slots.popitem(last=False)
        else:
            self._slots.move_to_end(id(desired))
        self._last = slot
        return slot[1]
