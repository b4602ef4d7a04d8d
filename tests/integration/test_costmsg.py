"""California Pricing driver messages over real websockets: SetUserPrice, RunningCost and FinalCost reach a
charger that reports CustomDisplayCostAndPrice=true and never a basic one; only the latest RunningCost
is sent while one is in flight; a charger answering UnknownVendorId gets no more until it boots."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from controller.billing.costmsg import VENDOR, CostMessages
from controller.billing.history import record_revision
from controller.billing.listener import BillingListener
from controller.hw.server import utc_now
from controller.hw.simulator import SimulatedCharger
from tests.config.ownerrepo import card, group, owner, station, tariff

from .harness import Harness, csms, desired_of, run, wait_until


def _repo():  # type: ignore[no-untyped-def]
    return desired_of(
        owner(),
        group("drivers", card("CARD-0001", "drv-1"), card("CARD-0002", "drv-2")),
        group("employees", card("EMP-0001", "emp-1")),
        tariff("standard", price={"sessionFee": "0.50", "perKwh": "0.35"}, displayText="0.35 EUR/kWh + 0.50",
               groupPrices=[{"group": "employees", "free": True}]),
        station("ca-1", tariff="standard"),
        station("basic-1", tariff="standard"),
    )


@contextlib.asynccontextmanager
async def features(h: Harness) -> AsyncIterator[CostMessages]:
    await record_revision(h.store, h.holder.desired, utc_now() - dt.timedelta(days=1))
    billing = BillingListener(h.store, h.holder)
    messages = CostMessages(h.store, h.holder, h.central.port_for)
    h.central.csms.listeners.extend([billing, messages])
    try:
        yield messages
    finally:
        await messages.close()
        await billing.close()


async def configuration_read(h: Harness, identity: str) -> None:
    async def read() -> bool:
        rec = await h.store.get_station(identity)
        return rec is not None and rec.config_value("CustomDisplayCostAndPrice") is not None

    await wait_until(read, 5, f"the configuration of {identity} read back")


def shown(cp: SimulatedCharger, kind: str) -> list[Any]:
    return [m.content for m in cp.display if m.kind == kind]


def cost_calls(cp: SimulatedCharger) -> list[str]:
    return [c.payload.get("messageId", "") for c in cp.calls("DataTransfer")]


def test_price_messages_reach_a_california_charger_and_never_a_basic_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, features(h), h.charger("CA-1", model="california") as ca, \
                h.charger("BASIC-1") as basic:
            for cp in (ca, basic):
                await cp.wait_online(5)
                await configuration_read(h, cp.identity)
            # one card each: a card runs one session at a time (maxConcurrentSessions 1), so the same card on both
            # would get ConcurrentTx on whichever StartTransaction arrives second, and that session would stop
            for cp, id_tag in ((ca, "CARD-0001"), (basic, "CARD-0002")):
                await cp.plug_in(1)
                assert await cp.present_card(id_tag) == "Accepted"
            await ca.wait_for(lambda: bool(shown(ca, "SetUserPrice")), 5, "SetUserPrice")
            assert shown(ca, "SetUserPrice")[0] == {"idToken": "CARD-0001", "priceText": "0.35 EUR/kWh + 0.50"}
            ca.faults.answer_delay = 0.5  # a slow display: meter values pile up while a RunningCost is in flight
            await ca.wait_for(lambda: len(ca.sent_calls("MeterValues")) >= 4, 6, "four meter values")
            ca.faults.answer_delay = 0.0
            await ca.wait_for(lambda: bool(shown(ca, "RunningCost")), 5, "RunningCost")
            tx = ca.transactions[0].transaction_id
            assert tx is not None
            running = shown(ca, "RunningCost")[-1]
            assert running["transactionId"] == tx and running["state"] in ("Charging", "Idle")
            assert isinstance(running["meterValue"], int) and Decimal(str(running["cost"])) >= Decimal("0.50")
            assert len(shown(ca, "RunningCost")) < len(ca.sent_calls("MeterValues"))  # only the latest was kept
            for cp in (ca, basic):
                await cp.stop_transaction(1)
                await cp.drained(5)
            await ca.wait_for(lambda: bool(shown(ca, "FinalCost")), 5, "FinalCost")
            [record] = (await h.store.billing_records(tx))[-1:]
            final = next(c for c in ca.calls("DataTransfer") if c.payload.get("messageId") == "FinalCost")
            assert json.loads(final.payload["data"])["transactionId"] == tx
            assert f'"cost":{record.total}' in final.payload["data"]  # the exact decimal, never a float
            assert final.payload["vendorId"] == VENDOR
            # an employee is told the session is free
            await ca.plug_in(2)
            assert await ca.present_card("EMP-0001", 2) == "Accepted"
            await ca.wait_for(lambda: len(shown(ca, "SetUserPrice")) == 2, 5, "the employee's price")
            assert shown(ca, "SetUserPrice")[1]["priceText"] == "Free"
            assert basic.calls("DataTransfer") == []

    run(scenario(), timeout=25)


def test_a_charger_answering_unknown_vendor_id_gets_no_more_cost_messages_until_it_boots(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, features(h) as messages, \
                h.charger("CA-1", model="california") as ca:
            await ca.wait_online(5)
            await configuration_read(h, "CA-1")
            ca.config.set_internal("CustomDisplayCostAndPrice", "false")  # firmware that stopped supporting it
            await ca.plug_in(1)
            assert await ca.present_card("CARD-0001") == "Accepted"
            await wait_until(lambda: "CA-1" in messages.muted, 5, "the charger muted")
            await ca.wait_for(lambda: len(ca.sent_calls("MeterValues")) >= 2, 5, "meter values")
            await ca.stop_transaction(1)
            await ca.drained(5)
            assert cost_calls(ca) == ["SetUserPrice"]  # answered UnknownVendorId: nothing after it
            ca.config.set_internal("CustomDisplayCostAndPrice", "true")  # a firmware update, then a boot
            await ca.reboot()
            await ca.wait_online(5)
            await wait_until(lambda: "CA-1" not in messages.muted, 5, "unmuted at the boot")
            await ca.plug_in(2)
            assert await ca.present_card("CARD-0001", 2) == "Accepted"
            await ca.wait_for(lambda: bool(shown(ca, "SetUserPrice")), 5, "SetUserPrice after the boot")

    run(scenario())
