"""Registers Flex Billing and the California Pricing driver messages with the controller.

Importing this module (from `controller.runtime.features`) adds two listener factories: billing records
(`listener.BillingListener`, active while the owner's billing is enabled) and driver cost messages
(`costmsg.CostMessages`, for chargers with `CustomDisplayCostAndPrice`). Billing comes first, so a
FinalCost can show the billing record's total.

Boundary: wiring only.
"""

from __future__ import annotations

from controller.hw.handlers import SessionListener
from controller.hw.server import utc_now
from controller.runtime.controller import LISTENER_FACTORIES, Controller

from .costmsg import CostMessages
from .listener import BillingListener


def _on_stop(ctl: Controller, listener: BillingListener | CostMessages) -> None:
    closers = getattr(ctl, "closers", None)  # features' stop hooks, where the controller offers them
    if isinstance(closers, list):
        closers.append(listener.close)


def billing_listener(ctl: Controller) -> SessionListener:
    assert ctl.store is not None, "listeners are built once the store is open"
    listener = BillingListener(ctl.store, ctl.desired, clock=utc_now)
    _on_stop(ctl, listener)
    return listener


def cost_messages(ctl: Controller) -> SessionListener:
    assert ctl.store is not None and ctl.central is not None, "listeners are built once the central system exists"
    listener = CostMessages(ctl.store, ctl.desired, ctl.central.port_for, clock=utc_now)
    _on_stop(ctl, listener)
    return listener


LISTENER_FACTORIES.extend([billing_listener, cost_messages])
