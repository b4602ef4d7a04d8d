"""The event loop the controller runs on: uvloop where it is installed, else the standard asyncio loop.

uvloop (libuv, the loop of Node.js, wrapped in Cython) runs the same asyncio code with the loop, its
selector, socket transports and TLS in C: measured with bench/bench_fleet_change.py it takes a tenth or
more of the controller's CPU per OCPP round trip, and its TLS transport holds far less memory per
connection than the standard library's (bench/bench_memory.py). It is a dependency on the platforms it
supports (not Windows); `auto` falls back to the standard loop where it is missing.

Choose with `--event-loop` on `chargeops run` / `demo`, or the environment variable CHARGEOPS_EVENT_LOOP:
`auto` (default), `uvloop` (an error if it is not installed) or `asyncio` (the standard loop).

Boundary: picks a loop factory and runs one coroutine on it; nothing else of the controller depends on
which loop runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

CHOICES = ("auto", "uvloop", "asyncio")
ENV = "CHARGEOPS_EVENT_LOOP"


class EventLoopError(ValueError):
    """The event loop asked for cannot be used."""


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: str | None = None) -> str:
    """`uvloop` or `asyncio`: the loop `choice` (else $CHARGEOPS_EVENT_LOOP, else `auto`) stands for."""
    raw = choice if choice is not None else os.environ.get(ENV) or "auto"
    wanted = raw.strip().lower()
    if wanted not in CHOICES:
        raise EventLoopError(f"event loop {raw!r} is not one of {', '.join(CHOICES)}"
                             + (f" (from {ENV})" if choice is None else ""))
    if wanted == "auto":
        return "uvloop" if uvloop_available() else "asyncio"
    if wanted == "uvloop" and not uvloop_available():
        raise EventLoopError("event loop 'uvloop' asked for, but uvloop is not installed "
                             "(pip install uvloop, or choose 'asyncio')")
    return wanted


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    if resolve(choice) == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.DefaultEventLoopPolicy().new_event_loop  # the standard loop, whatever policy is installed


def run(main: Coroutine[Any, Any, T], choice: str | None = None, *, debug: bool | None = None) -> T:
    """`asyncio.run(main)` on the chosen loop (see the module's docstring)."""
    try:
        factory = loop_factory(choice)
    except EventLoopError:
        main.close()  # never awaited: no "coroutine was never awaited" warning on top of the error
        raise
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


def name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """`uvloop` or `asyncio`: what the running (or given) loop is, for logs and benchmarks."""
    loop = loop or asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
