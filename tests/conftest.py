"""The suite runs on the event loop `chargeops run` picks (controller.runtime.eventloop): uvloop where it is
installed, unless CHARGEOPS_EVENT_LOOP says otherwise, so that the tests prove the loop that runs in
production. `CHARGEOPS_EVENT_LOOP=asyncio python -m pytest` runs them on the standard loop.
"""

from __future__ import annotations

import asyncio

from controller.runtime import eventloop

if eventloop.resolve() == "uvloop":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
