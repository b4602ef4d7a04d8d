"""The global limit on concurrent applies, and slots given back by applies stuck on an unanswered call.

Boundary: asyncio only (no store, no OCPP). The reconciler holds one slot per apply; the applier wraps each
call to the charger in `Slot.waiting_for_answer()`.

`limit` applies are at work at most. An apply whose call has gone unanswered for `release_after` seconds is
waiting on a charger that has most likely lost the call (it keeps waiting, up to the call timeout, and a
late answer is still taken): its slot goes to the next station, so a lost call does not keep a slot idle
for the whole timeout. A second cap bounds the applies in flight (at work or waiting) to the limit plus a
quarter: enough for the few calls a fleet loses at any moment, while an overloaded controller (whose
answers only look late) or a fleet of slow chargers adds at most a quarter more work, not a feedback loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator


class Slot:
    """One apply's slot: given back at the end of the apply, or earlier while a call goes unanswered."""

    __slots__ = ("_held", "_owner", "_release_after", "_sem")

    def __init__(self, sem: asyncio.Semaphore, release_after: float | None, owner: ApplySlots) -> None:
        self._sem = sem
        self._release_after = release_after
        self._held = True
        self._owner = owner

    @property
    def held(self) -> bool:
        return self._held

    def give_back(self) -> None:
        if self._held:
            self._held = False
            self._sem.release()

    def _given_back_waiting(self) -> None:
        if self._held:
            self._owner.given_back += 1
            self.give_back()

    @contextlib.contextmanager
    def waiting_for_answer(self) -> Iterator[None]:
        """Around one call to the charger: past `release_after` seconds without an answer, the slot goes."""
        if not self._held or self._release_after is None:
            yield
            return
        handle = asyncio.get_running_loop().call_later(self._release_after, self._given_back_waiting)
        try:
            yield
        finally:
            handle.cancel()


class ApplySlots:
    def __init__(self, limit: int, release_after: float | None) -> None:
        if limit < 1:
            raise ValueError(f"the limit on concurrent applies must be at least 1, got {limit}")
        self.limit = limit
        self.release_after = release_after
        self._work = asyncio.Semaphore(limit)
        self.spare = max(1, limit // 4)  # slots that applies waiting on an unanswered call may leave behind
        self._flight = asyncio.Semaphore(limit + self.spare)
        self.given_back = 0  # slots given back by applies waiting on an unanswered call

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[Slot]:
        async with self._flight:
            await self._work.acquire()
            slot = Slot(self._work, self.release_after, self)
            try:
                yield slot
            finally:
                slot.give_back()
