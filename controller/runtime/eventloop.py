"""The event loop the controller runs on: uvloop where it is installed, the standard asyncio loop otherwise.

uvloop (libuv, the loop of Node.js, wrapped in Cython) runs the same asyncio code with the loop, its
selector, socket transports and TLS in C. Measured on this project's machine (README, Benchmarks) it takes
~10-20 % of the controller's CPU per OCPP round trip in a fleet-wide change, shortens the p99 of
StartTransaction and StopTransaction in the steady state, and keeps TLS connections smaller. Its own
server accepts one connection per loop iteration (libuv >= 1.45), which made reconnect storms slow (94-126 s
to all Synced with 10,000 chargers); the central system accepts connections itself, in batches
(`controller.hw.listener`), so storms are faster on uvloop than on the standard loop.

uvloop is a dependency on Linux and macOS (not on Windows). Choose with `--event-loop` on `chargeops run` /
`demo`, or the environment variable CHARGEOPS_EVENT_LOOP: `auto` (default: uvloop if installed, else
asyncio), `uvloop` (an error if it is not installed) or `asyncio`.

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

CHOICES = ("auto", "asyncio", "uvloop")
DEFAULT = "auto"
ENV = "CHARGEOPS_EVENT_LOOP"


class EventLoopError(ValueError):
    """The event loop asked for cannot be used."""


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: str | None = None) -> str:
    """`asyncio` or `uvloop`: the loop `choice` (else $CHARGEOPS_EVENT_LOOP, else the default) names;
    `auto` is uvloop where it is installed."""
    raw = choice if choice is not None else os.environ.get(ENV) or DEFAULT
    wanted = raw.strip().lower()
    if wanted not in CHOICES:
        raise EventLoopError(f"event loop {raw!r} is not one of {', '.join(CHOICES)}"
                             + (f" (from {ENV})" if choice is None else ""))
    if wanted == "auto":
        return "uvloop" if uvloop_available() else "asyncio"
    if wanted == "uvloop" and not uvloop_available():
        raise EventLoopError("event loop 'uvloop' asked for, but uvloop is not installed "
                             "(pip install uvloop; it is not available on Windows), or choose 'asyncio'")
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
