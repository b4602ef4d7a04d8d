"""The global limit on concurrent applies, and slots given back by applies stuck on an unanswered call.

Boundary: asyncio only (no store, no OCPP). The reconciler holds one slot per apply; the applier wraps each
call to the charger in `Slot.waiting_for_answer()`.

`limit` applies are at work at most. An apply whose call has gone unanswered for `release_after` seconds is
waiting on a charger that has most likely lost the call (it keeps waiting, up to the call timeout, and a
late answer is still taken): its slot goes to the next station, so a lost call does not keep a slot idle
for the whole timeout. At most a quarter of the limit (at least one) is given back this way at a time, so
at most the limit and a quarter are in flight: enough for the few calls a fleet loses at any moment, while
an overloaded controller (whose answers only look late) or a fleet of slow chargers adds at most a quarter
more work, not a feedback loop.

How long "unanswered" is: a fixed `release_after`, or (`adaptive`) the fleet's own round-trip times, as TCP
times out a segment (RFC 6298): a smoothed round trip plus four times its mean deviation, over the answers
to applies' calls, never under `ADAPTIVE_FLOOR_S` nor over `release_after`. Chargers answering within
0.1-0.5 s give a slot back after ~0.7 s instead of a third of a 3-s timeout; a fleet on slow links raises it
by itself. Waits are judged against the value in force when their deadline is checked, so deadlines stay in
the order the waits began (one timer serves them all, see `_Waiting`).

Urgent looks (a retry, a station that connected, a follow-up) take the next free slot ahead of the bulk of a
revision: a station that lost a call is retried among the bulk, not after the last of 10,000 stations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

_TIMER_SLACK_S = 0.001  # a timer may fire this early (the event loop's clock resolution)
# the shortest adaptive wait: below it, the controller's own event-loop lag under load would read as a charger
# that lost the call, and slots would go round while nothing is lost
ADAPTIVE_FLOOR_S = 0.5


class _Gate:
    """A semaphore whose urgent waiters go first (FIFO within each class)."""

    __slots__ = ("_free", "_loop", "_waiters")

    def __init__(self, value: int) -> None:
        self._free = value
        self._waiters: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())
        self._loop: asyncio.AbstractEventLoop | None = None  # asked once: `get_running_loop` is a getpid call

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits (no coroutine: most acquisitions)."""
        if self._free > 0 and not self._waiters[0] and not self._waiters[1]:
            self._free -= 1
            return True
        return False

    async def acquire(self, urgent: bool) -> None:
        if self.try_acquire():
            return
        queue = self._waiters[0 if urgent else 1]
        loop = self._loop
        if loop is None or not loop.is_running():  # (the first wait, or a gate used again on a new loop)
            loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over just as the waiter was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(fut)
            raise

    @property
    def free(self) -> int:
        return self._free

    def release(self) -> None:
        for queue in self._waiters:
            while queue:
                fut = queue.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self._free += 1


class Slot:
    """One apply's slot: given back at the end of the apply, or earlier while a call goes unanswered."""

    __slots__ = ("_held", "_owner", "_straggler")

    def __init__(self, owner: ApplySlots) -> None:
        self._owner = owner
        self._held = True
        self._straggler = False  # gave its slot back while waiting; still in flight

    @property
    def held(self) -> bool:
        return self._held

    def _end(self) -> None:
        if self._held:
            self._held = False
            self._owner._work.release()
        elif self._straggler:
            self._straggler = False
            self._owner.stragglers -= 1

    def _given_back_waiting(self) -> None:
        owner = self._owner
        if self._held and owner.stragglers < owner.spare:
            self._held, self._straggler = False, True
            owner.stragglers += 1
            owner.given_back += 1
            owner._work.release()

    def waiting_for_answer(self) -> _Waiting:
        """Around one call to the charger (``with slot.waiting_for_answer():``): past `release_after` seconds
        without an answer, the slot goes (unless a quarter of the limit is already out that way)."""
        return _Waiting(self)


class _Waiting:
    """The context manager of `Slot.waiting_for_answer` (a class: it wraps every call of every apply).

    No timer of its own: every open wait is judged against the same wait in force (`ApplySlots.wait`, read
    when the timer fires), so deadlines come in the order the waits began, and one timer for the oldest open
    wait serves them all (`ApplySlots._watch`); a timer that fires early for a wait that grew re-arms, one
    armed for a wait that shrank since is armed again for the new wait's deadline. A timer
    per call (a `call_later` and a `cancel` around every call of every apply) cost more than the rest of this
    module."""

    __slots__ = ("_began", "_open", "_slot")

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self._open = False
        self._began = 0.0

    def __enter__(self) -> None:
        slot = self._slot
        owner = slot._owner
        wait = owner._wait
        if slot._held and wait is not None:
            loop = owner._loop
            if loop is None:  # (asked once: asyncio.get_running_loop is a getpid system call each time)
                loop = owner._loop = asyncio.get_running_loop()
            self._began = began = loop.time()
            self._open = True
            owner._watch.append(self)
            deadline = began + wait
            timer = owner._timer
            if timer is None or owner._timer_at > deadline + _TIMER_SLACK_S:  # none, or armed for a longer wait
                if timer is not None:
                    timer.cancel()
                owner._arm(loop, deadline)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if self._began:
            owner = self._slot._owner
            if exc_type is None and owner.adaptive and owner._loop is not None:  # answered (late ones too)
                owner.answered(owner._loop.time() - self._began)
            if self._open:
                self._open = False
                watch = owner._watch
                while watch and not watch[0]._open:  # waits mostly end in the order they began: keep it short
                    watch.popleft()


class _Hold:
    """The async context manager of `ApplySlots.hold` (a class: one per look of every station)."""

    __slots__ = ("_owner", "_slot", "_urgent")

    def __init__(self, owner: ApplySlots, urgent: bool) -> None:
        self._owner = owner
        self._urgent = urgent
        self._slot: Slot | None = None

    async def __aenter__(self) -> Slot:
        owner = self._owner
        self._slot = owner.take_now() or await owner.take(urgent=self._urgent)
        return self._slot

    async def __aexit__(self, *exc: object) -> None:
        if self._slot is not None:
            self._owner.give_back(self._slot)


class ApplySlots:
    def __init__(self, limit: int, release_after: float | None, *, adaptive: bool = False) -> None:
        if limit < 1:
            raise ValueError(f"the limit on concurrent applies must be at least 1, got {limit}")
        self.limit = limit
        self.release_after = release_after  # the wait before a slot goes (adaptive: the longest it may be)
        self.adaptive = adaptive and release_after is not None
        self._srtt = 0.0  # smoothed round trip of answered calls (0: none yet)
        self._rttvar = 0.0  # its smoothed mean deviation
        self._wait = release_after  # the wait in force
        self._work = _Gate(limit)
        self.spare = max(1, limit // 4)  # slots that applies waiting on an unanswered call may leave behind
        self.stragglers = 0  # applies in flight that gave their slot back
        self.given_back = 0  # slots given back by applies waiting on an unanswered call (a counter)
        self._watch: deque[_Waiting] = deque()  # open waits, oldest (earliest deadline) first
        self._timer: asyncio.TimerHandle | None = None  # armed for the oldest open wait's deadline
        self._timer_at = 0.0  # when it fires (the adaptive wait may have shrunk since it was armed)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the slots serve (known at the first wait)

    @property
    def wait(self) -> float | None:
        """How long a call goes unanswered before its apply's slot goes to the next station (None: never)."""
        return self._wait

    def answered(self, seconds: float) -> None:
        """A call answered after `seconds`: the adaptive wait follows (RFC 6298's estimator, its gains 1/8
        and 1/4, its RTO = SRTT + 4 x RTTVAR)."""
        srtt = self._srtt  # (no abs/min/max calls: this runs for every answered call of every apply)
        if srtt == 0.0:
            self._srtt, self._rttvar = seconds, seconds / 2
        else:
            self._rttvar += ((srtt - seconds if srtt > seconds else seconds - srtt) - self._rttvar) * 0.25
            self._srtt = srtt + (seconds - srtt) * 0.125
        ceiling = self.release_after
        if self.adaptive and ceiling is not None:  # (a fixed wait keeps the estimate only)
            rto = self._srtt + 4 * self._rttvar
            self._wait = ceiling if rto > ceiling else ADAPTIVE_FLOOR_S if rto < ADAPTIVE_FLOOR_S else rto

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._timer = loop.call_at(deadline, self._expire, loop)
        self._timer_at = deadline

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The oldest open wait's deadline: give back the slots of the waits past theirs, then re-arm."""
        self._timer = None
        watch, now, wait = self._watch, loop.time(), self._wait or 0.0
        while watch:
            waiting = watch[0]
            if waiting._open:
                deadline = waiting._began + wait
                if deadline > now + _TIMER_SLACK_S:
                    self._arm(loop, deadline)
                    return
                waiting._open = False
                waiting._slot._given_back_waiting()
            watch.popleft()

    @property
    def in_use(self) -> int:
        """Slots held now (applies that gave theirs back while waiting are not counted)."""
        return self.limit - self._work.free

    def take_now(self) -> Slot | None:
        """A slot at once if one is free and nobody waits for one (no coroutine), else None: then `take`.
        The caller gives it back with `give_back` (in a `finally`), as `hold` does for `async with`."""
        return Slot(self) if self._work.try_acquire() else None

    async def take(self, *, urgent: bool = False) -> Slot:
        """A slot, waiting for one (see `hold`)."""
        await self._work.acquire(urgent)
        return Slot(self)

    @staticmethod
    def give_back(slot: Slot) -> None:
        slot._end()

    def hold(self, *, urgent: bool = False) -> _Hold:
        """An apply slot (``async with slots.hold() as slot:``); `urgent` ones (a retry, a station that
        connected) go ahead of the bulk of a revision, so a station that lost a call is not sent to the back
        of a 10,000-station queue."""
        return _Hold(self, urgent)
