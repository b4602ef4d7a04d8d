"""Plugs reservations into the controller: importing this module (``controller.runtime.features`` does)
registers a listener factory that builds and starts the `ReservationScheduler` — it stops with the
controller — and the reservations API routes, served by that same scheduler.

Boundary: registration and wiring only.
"""

from __future__ import annotations

import weakref

from controller.hw.handlers import SessionListener
from controller.hw.server import utc_now
from controller.runtime.api import EXTRA_ROUTES
from controller.runtime.controller import LISTENER_FACTORIES, ApiSettings, Controller
from controller.runtime.http import Route

from . import api
from .scheduler import ReservationScheduler

_SCHEDULERS: weakref.WeakKeyDictionary[Controller, ReservationScheduler] = weakref.WeakKeyDictionary()


def scheduler_of(ctl: Controller) -> ReservationScheduler | None:
    return _SCHEDULERS.get(ctl)


def _listener(ctl: Controller) -> SessionListener:
    assert ctl.store is not None and ctl.central is not None, "built once the store and central system exist"
    scheduler = ReservationScheduler(ctl.desired, ctl.store, ctl.central.port_for, utc_now,
                                     retry_after=min(15.0, ctl.settings.server.call_timeout))
    _SCHEDULERS[ctl] = scheduler
    ctl.closers.append(scheduler.close)
    scheduler.start()
    return scheduler


def _routes(ctl: Controller, settings: ApiSettings) -> list[Route]:
    scheduler = _SCHEDULERS.get(ctl)
    return api.routes(scheduler, settings.tokens) if scheduler is not None else []


LISTENER_FACTORIES.append(_listener)
EXTRA_ROUTES.append(_routes)
