"""The event loop the controller runs on: the standard asyncio loop by default, uvloop on request.

uvloop (libuv, the loop of Node.js, wrapped in Cython) runs the same asyncio code with the loop, its
selector, socket transports and TLS in C. Measured on this project's machine (README, Benchmarks) it takes
~10-20 % of the controller's CPU per OCPP round trip in a fleet-wide change and shortens the p99 of
StartTransaction and StopTransaction in the steady state; but since libuv 1.45 a listening socket accepts
ONE connection per loop iteration (libuv PR #3696), where asyncio accepts up to the listen backlog:
when 10,000 chargers reconnect at once the accept queue overflows for longer, the kernel drops SYNs, the
chargers wait for TCP's retransmission timers, and the storm took 94-126 s to all Synced instead of
62-65 s (both with a listen backlog of 100; the controller now listens with 1,024, measured on the
standard loop only). A central system's worst day is that storm (a power cut, a controller restart), so
the standard loop is the default and uvloop a choice for fleets that value CPU over storm recovery.

Choose with `--event-loop` on `chargeops run` / `demo`, or the environment variable CHARGEOPS_EVENT_LOOP:
`asyncio` (default) or `uvloop` (an error if it is not installed: `pip install 'chargeops[uvloop]'`).

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

CHOICES = ("asyncio", "uvloop")
DEFAULT = "asyncio"
ENV = "CHARGEOPS_EVENT_LOOP"


class EventLoopError(ValueError):
    """The event loop asked for cannot be used."""


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def resolve(choice: str | None = None) -> str:
    """`asyncio` or `uvloop`: the loop `choice` (else $CHARGEOPS_EVENT_LOOP, else the default) names."""
    raw = choice if choice is not None else os.environ.get(ENV) or DEFAULT
    wanted = raw.strip().lower()
    if wanted not in CHOICES:
        raise EventLoopError(f"event loop {raw!r} is not one of {', '.join(CHOICES)}"
                             + (f" (from {ENV})" if choice is None else ""))
    if wanted == "uvloop" and not uvloop_available():
        raise EventLoopError("event loop 'uvloop' asked for, but uvloop is not installed "
                             "(pip install 'chargeops[uvloop]', or choose 'asyncio')")
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
