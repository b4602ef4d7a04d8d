"""The suite runs on the event loop `chargeops run` picks (controller.runtime.eventloop): uvloop where it
is installed, unless CHARGEOPS_EVENT_LOOP says otherwise; `CHARGEOPS_EVENT_LOOP=asyncio python -m pytest`
runs the whole suite on the standard loop (it passes there too).
"""

from __future__ import annotations

import asyncio

from controller.runtime import eventloop

if eventloop.resolve() == "uvloop":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
