"""Keeping the cyclic garbage collector off the controller's long-lived state.

A controller holds a lot of state that lives for hours: the desired state of every revision in force,
one record, bookkeeping and status per station, a connection per charger. CPython's cyclic collector
scans every tracked object on each full (generation 2) collection, and a full collection runs whenever
the objects promoted since the last one reach a quarter of the old ones — which a fleet-wide change does:
measured with 1,000 chargers, full collections took ~30 % of the controller's CPU during a change
(~160 ms each, `bench/bench_fleet_change.py` prints the time per generation).

So the controller *settles* its heap: it collects the young generations and then moves everything alive
into the permanent generation (`gc.freeze()`), which collections skip. It settles when a revision has
been taken and every `settle_every` seconds; objects created afterwards are collected as usual, and the
survivors of every full collection the interpreter runs on its own are frozen right after it (a `gc`
callback): otherwise each of the several full collections during a 10,000-station change rescanned every
record created since the last settle (1.2-1.4 s of such a change's ~7 s of CPU). Frozen
objects that later become unreachable are still freed by reference counting; only garbage *cycles*
among them wait for the periodic full pass (`full_every`: unfreeze, collect everything, freeze again),
which bounds what can accumulate.

Young collections: the interpreter collects generation 0 every 700 allocations of tracked objects. A
look keeps its plan, its calls and their futures alive across awaits for milliseconds, so with 100
applies in flight most of what a young collection scans is still alive: it is promoted, scanned again by
the next generation-1 collections and counts towards the next full one. Collecting the young generation
every `young_threshold` (20,000) allocations lets most of that die by reference counting first:
measured in the 1,000-charger fleet change, 73-83 young and 6-7 middle collections (29-39 ms) per change
became 0-1 young and 2 middle ones (18-25 ms). A garbage cycle waits at most that many allocations
longer to be freed.

Middle collections and the periodic settle: a middle (generation 1) collection scans everything promoted
since the last one; the interpreter runs one every 10 young collections, which at 20,000 allocations each
landed in the middle of fleet-wide changes - 160-190 ms at 1,000 chargers, 140-520 ms at 10,000, a pause for
every call in flight and a third of such a change's CPU at 1,000 (`bench/bench_fleet_change.py` prints the
time per generation). `middle_threshold` 100 makes the interpreter's own rare; the settles collect only the
youngest generation before freezing (what survived a young collection is mostly long-lived; garbage cycles
among it wait for the full pass), and a periodic settle waits while the controller is applying (`busy`: an
apply slot is held or looks are queued), up to `max_defer` seconds, so it runs between rollouts rather than during them.

Surges: a revision enqueues a look for every station it touches, and each look holds its observed state,
coroutines and futures until an apply slot frees up: a 10,000-station change grows the heap by ~140,000
objects in its first half second, all alive, so the young collections of that burst (6-8 of them) scan and
promote every one of them - 120-260 ms of CPU per change (`bench/bench_fleet_change.py` prints the time per
generation), for objects that die by reference counting seconds later, when their look is done. From a
revision taken until the controller is no longer busy (at most `surge_max` seconds) the young threshold is
`surge_threshold`, so the burst passes without a collection; then the thresholds are put back and what
survived it (the stations' new records, status and bookkeeping: long-lived) is frozen without a scan -
collecting it first took 87-109 ms per 10,000-station change. Garbage cycles made during a surge (an
exception's traceback, say) wait for the periodic full pass (`full_every`), which bounds them. A long surge
(a rollout against slow chargers takes a minute at 10,000) freezes what it has made whenever it reaches half
the threshold, rather than letting it end in one young collection of 200,000 objects (a 251 ms pause
measured in the 10,000-charger change with latency); a periodic settle that waited its longest (`max_defer`)
while a surge still runs freezes without a scan too (its young collection of up to 100,000 objects took
196 ms in that change).

`stop()` unfreezes and puts the thresholds back, so a stopped controller leaves the interpreter's
collector as it found it (tests start many controllers in one process).

Boundary: process-wide `gc` state; no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("chargeops.runtime.gc")


@dataclasses.dataclass(frozen=True)
class GcSettings:
    freeze: bool = True  # settle the heap into the permanent generation (see the module docstring)
    settle_every: float = 10.0  # seconds between settles (also done when a revision is taken)
    freeze_after_full: bool = True  # freeze the survivors of the interpreter's own full collections
    full_every: float = 3600.0  # seconds between full collections of everything, frozen objects included
    # allocations between young (generation 0) collections while the controller runs; the interpreter's
    # default is 700 (see the module docstring); 0 keeps the interpreter's setting
    young_threshold: int = 20_000
    # young collections between middle (generation 1) collections; the interpreter's default is 10, which at
    # 20,000 allocations made a middle collection of everything promoted since the last settle (100-500 ms at
    # 1,000-10,000 chargers) land in the middle of fleet-wide changes; the settles freeze what survives instead
    # (see the module docstring). 0 keeps the interpreter's setting
    middle_threshold: int = 100
    # a periodic settle waits while the controller is busy applying (`GcPolicy.busy`), up to this many
    # seconds: out of the way of a rollout's calls, and never put off for long
    max_defer: float = 60.0
    # allocations between young collections while a revision just taken is being applied (`GcPolicy.surge`:
    # until the controller is no longer busy, at most `surge_max` seconds); 0: no surge
    surge_threshold: int = 200_000
    surge_max: float = 120.0


# The thresholds are process-wide, and controllers may overlap in one process (tests): the interpreter's
# are saved when the first running policy sets its own and put back when the last one stops.
_interpreter_thresholds: tuple[int, ...] | None = None
_threshold_holders = 0


def _hold_thresholds(young: int, middle: int) -> None:
    global _interpreter_thresholds, _threshold_holders
    if _threshold_holders == 0:
        _interpreter_thresholds = gc.get_threshold()
    _threshold_holders += 1
    assert _interpreter_thresholds is not None
    interpreter = _interpreter_thresholds
    gc.set_threshold(_young_in_force(young), middle or interpreter[1], *interpreter[2:])


def _young_in_force(young: int) -> int:
    """The young threshold a running policy sets: its own, or (0) the interpreter's."""
    assert _interpreter_thresholds is not None
    return young or _interpreter_thresholds[0]


def _release_thresholds() -> None:
    global _interpreter_thresholds, _threshold_holders
    _threshold_holders -= 1
    if _threshold_holders == 0 and _interpreter_thresholds is not None:
        gc.set_threshold(*_interpreter_thresholds)
        _interpreter_thresholds = None


class GcPolicy:
    def __init__(self, settings: GcSettings | None = None):
        self.settings = settings or GcSettings()
        self._task: asyncio.Task[None] | None = None
        self._last_full = time.monotonic()
        self.settles = 0
        self.full_collections = 0
        self.collected_by_full = 0  # unreachable objects found among frozen ones (garbage cycles)
        self.frozen_after_full = 0  # the interpreter's own full collections whose survivors were frozen
        self._holds_thresholds = False
        self.busy: Callable[[], bool] | None = None  # the controller is applying: periodic settles wait
        self.deferred = 0  # periodic settles that waited for the controller to be idle
        self.surges = 0  # revisions whose applies ran with the young threshold raised (see `surge`)
        self._surge_task: asyncio.Task[None] | None = None
        self._surge_until = 0.0

    def settle(self, *, collect: bool = True) -> None:
        """Collect the youngest generation, then freeze what is alive.

        Only the youngest: what already survived a young collection is mostly long-lived state, and scanning
        it (a middle collection of everything promoted since the last settle) cost 100-190 ms per settle at
        1,000 chargers; garbage cycles among it wait for the periodic full pass. `collect=False` freezes
        without any scan: for a revision just taken, whose objects are all alive (scanning first cost
        ~15 ms per revision at 1,000 stations, ~4 % of the fleet change's CPU)."""
        if not self.settings.freeze:
            return
        if collect:
            gc.collect(0)
        gc.freeze()
        self.settles += 1

    def surge(self) -> None:
        """A revision was just taken: raise the young threshold until the controller is idle again (see the
        module's docstring). Only while this policy holds the thresholds (it started with its own)."""
        threshold = self.settings.surge_threshold
        if not self._holds_thresholds or threshold <= 0:
            return
        young, *rest = gc.get_threshold()
        if young < threshold:
            gc.set_threshold(threshold, *rest)
        self._surge_until = time.monotonic() + self.settings.surge_max
        if self._surge_task is None:
            self.surges += 1
            self._surge_task = asyncio.get_running_loop().create_task(self._end_surge(), name="gc-surge")

    async def _end_surge(self, step: float = 0.5) -> None:
        try:
            await asyncio.sleep(step)  # (the looks of the revision start)
            while self.busy is not None and self.busy() and time.monotonic() < self._surge_until:
                if gc.get_count()[0] >= self.settings.surge_threshold // 2:
                    self.settle(collect=False)  # a long surge: frozen as it goes, never one long young collection
                await asyncio.sleep(step)
        finally:
            self._surge_task = None
            self._restore_young()
        self.settle(collect=False)  # (what survived the burst is the fleet's new state: frozen, not scanned)

    def _restore_young(self) -> None:
        if self._holds_thresholds:
            gc.set_threshold(_young_in_force(self.settings.young_threshold), *gc.get_threshold()[1:])

    def full(self) -> int:
        """Unfreeze, collect everything, freeze again; returns the number of unreachable objects found."""
        gc.unfreeze()
        found = gc.collect()
        if self.settings.freeze:
            gc.freeze()
        self.full_collections += 1
        self.collected_by_full += found
        self._last_full = time.monotonic()
        return found

    def _after_collection(self, phase: str, info: dict[str, int]) -> None:
        """A `gc` callback: after a full collection, what survived it is long-lived: freeze it."""
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()
            self.frozen_after_full += 1

    def start(self) -> None:
        young, middle = self.settings.young_threshold, self.settings.middle_threshold
        if (young > 0 or middle > 0) and not self._holds_thresholds:
            _hold_thresholds(young, middle)
            self._holds_thresholds = True
        if self.settings.freeze and self._task is None:
            self.settle()
            if self.settings.freeze_after_full and self._after_collection not in gc.callbacks:
                gc.callbacks.append(self._after_collection)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gc-policy")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.settle_every)
            waited, step = 0.0, min(1.0, self.settings.settle_every)
            while (self._surge_task is not None or (self.busy is not None and self.busy())) \
                    and waited < self.settings.max_defer:  # (a surge ends by freezing what survived it)
                if waited == 0.0:
                    self.deferred += 1
                await asyncio.sleep(step)
                waited += step
            started = time.perf_counter()
            if self._surge_task is not None:  # waited its longest and the surge still runs: its young objects
                self.settle(collect=False)  # (up to half surge_threshold) are frozen, not scanned mid-rollout
            elif time.monotonic() - self._last_full >= self.settings.full_every:
                found = self.full()
                log.debug("gc: full collection found %d unreachable objects in %.0f ms", found,
                          (time.perf_counter() - started) * 1e3)
            else:
                self.settle()

    async def stop(self) -> None:
        if self._surge_task is not None:
            self._surge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._surge_task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._after_collection)
        if self._holds_thresholds:
            _release_thresholds()
            self._holds_thresholds = False
        if self.settings.freeze:
            gc.unfreeze()
