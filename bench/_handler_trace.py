"""What a driver-facing answer waited for, await by await (``bench_steady_state.py --trace``).

Every coroutine method of `SqliteStore` is wrapped, in this benchmark process only, to add its wall time to
the answer being handled (a context variable set around the `StationHandlers` methods of Authorize,
StartTransaction and StopTransaction; tasks those handlers spawn inherit it, so their store calls are listed
too). At the end: per action, each store call's count and p50 / p99 / max, and the slowest answers with their
awaits in order; the rest of an answer's time ("other") is CPU on the event loop or waiting for it.

Diagnosis only: the wrapping costs a few microseconds per store call, so the figures of a traced run are not
the benchmark's figures (run it without ``--trace`` for those)."""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from controller.hw import handlers
from controller.store.sqlite import SqliteStore

ACTIONS = {"Authorize": "authorize", "StartTransaction": "start_transaction", "StopTransaction": "stop_transaction"}
_current: contextvars.ContextVar[list[tuple[str, float]] | None] = contextvars.ContextVar("answer", default=None)


class HandlerTrace:
    def __init__(self) -> None:
        self.on = False
        self.answers: dict[str, list[tuple[float, list[tuple[str, float]]]]] = {a: [] for a in ACTIONS}
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        for name, fn in list(vars(SqliteStore).items()):
            if inspect.iscoroutinefunction(fn):
                self._patch(SqliteStore, name, _timed_store_call(name, fn))
        for action, name in ACTIONS.items():
            self._patch(handlers.StationHandlers, name, self._timed_answer(action, getattr(handlers.StationHandlers,
                                                                                           name)))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _patch(self, owner: type, name: str, fn: Any) -> None:
        before = vars(owner)[name]
        setattr(owner, name, fn)
        self._undo.append(lambda: setattr(owner, name, before))

    def _timed_answer(self, action: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def timed(handler: Any, call: Any) -> Any:
            awaits: list[tuple[str, float]] = []
            token = _current.set(awaits)
            began = time.perf_counter()
            try:
                return await fn(handler, call)
            finally:
                _current.reset(token)
                if self.on:
                    self.answers[action].append((time.perf_counter() - began, awaits))

        return timed

    def lines(self, slowest: int = 6) -> list[str]:
        out: list[str] = []
        for action, answers in self.answers.items():
            if not answers:
                continue
            total = sorted(t for t, _ in answers)
            out.append(f"{action}: {len(total)} answers, handler p50 / p99 / max {_ms(_pct(total, 50))} /"
                       f" {_ms(_pct(total, 99))} / {_ms(total[-1])} ms")
            calls: dict[str, list[float]] = {}
            for _, awaits in answers:
                for name, seconds in awaits:
                    calls.setdefault(name, []).append(seconds)
            for name, times in sorted(calls.items(), key=lambda kv: -sum(kv[1])):
                times.sort()
                out.append(f"    {name:<28} {len(times):>6} calls, p50 / p99 / max {_ms(_pct(times, 50))} /"
                           f" {_ms(_pct(times, 99))} / {_ms(times[-1])} ms")
            for seconds, awaits in sorted(answers, key=lambda a: -a[0])[:slowest]:
                other = seconds - sum(s for _, s in awaits)  # (spawned tasks' calls overlap: may go below 0)
                out.append(f"    slow: {_ms(seconds)} ms = " + ", ".join(f"{n} {_ms(s)}" for n, s in awaits)
                           + f", other {_ms(other)}")
        return out


def _timed_store_call(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        awaits = _current.get()
        began = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            if awaits is not None:
                awaits.append((name, time.perf_counter() - began))

    return timed


def _pct(values: list[float], pct: float) -> float:
    return values[min(len(values) - 1, int(len(values) * pct / 100))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"
