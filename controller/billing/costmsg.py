"""California Pricing driver messages (OCA "OCPP & California Pricing Requirements", OCPP 1.6 part).

Only for chargers whose configuration, as last read back into the store, has
`CustomDisplayCostAndPrice` = true. DataTransfer, vendorId `org.openchargealliance.costmsg`:
- `SetUserPrice` after an accepted Authorize: ``{"idToken", "priceText"}``, the price for that driver's
  group (a group price, "Free" for a free group; otherwise the tariff's text for the window in force);
- `RunningCost` after MeterValues of a transaction: ``{"transactionId", "timestamp", "meterValue" (Wh,
  the register), "cost" (so far, tax included, from the cost engine), "state" ("Charging" | "Idle")}``;
- `FinalCost` at StopTransaction: ``{"transactionId", "cost", "priceText"}`` (the billing record's total
  when there is one, else priced the same way).
Decimals are written exactly (`ocppj.dumps` through `ChargerPort.data_transfer`).

Flow: the hooks only queue; one worker task per charger sends, one call at a time, with priority.
Per charger at most `MAX_QUEUED` SetUserPrice / FinalCost messages wait (the oldest is dropped), and at
most one RunningCost: only the latest matters, so a newer one replaces the one waiting while another
is in flight. A charger answering UnknownVendorId or Rejected (or a NotImplemented / NotSupported
CALLERROR) gets no more cost messages until it boots again; UnknownMessageId mutes that message only.
Offline: what waits is dropped (a display message is worth nothing later).

Boundary: hooks -> DataTransfer calls; prices from `session` / the cost engine, texts from the tariff.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from ocpp.v16.enums import DataTransferStatus

from controller.authorize import IdTagInfo
from controller.config import model as m
from controller.config.effective import effective_station
from controller.config.pricing_display import default_text
from controller.hw.errors import ChargerRejected, ChargerUnavailable
from controller.hw.handlers import SessionListener
from controller.hw.ocppj import format_datetime, parse_datetime
from controller.hw.port import ChargerPort
from controller.pricing import station_zone, window_at
from controller.pricing.engine import group_price
from controller.pricing.money import minor_unit
from controller.runtime.state import DesiredHolder
from controller.store.api import Store
from controller.store.errors import StoreError
from controller.store.records import MeterSample, TransactionRecord, TransactionStatus

from .records import body_of, latest
from .session import price_transaction

log = logging.getLogger("chargeops.billing.costmsg")
VENDOR = "org.openchargealliance.costmsg"
SET_USER_PRICE = "SetUserPrice"
RUNNING_COST = "RunningCost"
FINAL_COST = "FinalCost"
MAX_QUEUED = 8
_MUTING = frozenset({DataTransferStatus.unknown_vendor_id, DataTransferStatus.rejected})
_MUTING_ERRORS = frozenset({"NotImplemented", "NotSupported"})
Clock = Callable[[], dt.datetime]
PortFor = Callable[[str], ChargerPort | None]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class _Lane:
    """What waits to be sent to one charger."""

    queue: deque[tuple[str, Any]] = dataclasses.field(default_factory=lambda: deque(maxlen=MAX_QUEUED))
    running: tuple[int, dt.datetime | None] | None = None  # (transaction id, time of the latest sample)
    task: asyncio.Task[None] | None = None

    def next(self) -> tuple[str, Any] | None:
        if self.queue:
            return self.queue.popleft()
        if self.running is not None:
            item, self.running = self.running, None
            return RUNNING_COST, item
        return None

    def clear(self) -> None:
        self.queue.clear()
        self.running = None


def user_price_text(desired: m.DesiredState, identity: str, id_tag: str, now: dt.datetime) -> str | None:
    """The price a driver pays at a station, as one line of text; None without a station."""
    st = desired.station_for_identity(identity)
    if st is None:
        return None
    eff = effective_station(desired, st, None)
    names = sorted({e.tariff for e in eff.evses if e.tariff})
    name = eff.tariff or (names[0] if names else None)
    tariff = desired.tariffs.get(name) if name else None
    if tariff is None:
        return "Free"
    gp = group_price(tariff, tuple(desired.card_groups.get(id_tag.upper(), ())))
    if gp is not None:
        return "Free" if gp.free else default_text(tariff, gp.price)
    window = window_at(tariff.windows, now, station_zone(st, desired.owner))
    if window is not None:
        return default_text(tariff, window.price.over(tariff.price))
    return tariff.display_text or default_text(tariff, tariff.price)


def final_text(currency: str, total: Decimal, energy_wh: Decimal, seconds: float, provisional: bool) -> str:
    minutes = int(seconds // 60)
    kwh = (energy_wh / 1000).quantize(Decimal("0.001"))
    text = f"Total {currency} {total}: {kwh} kWh, {minutes // 60}:{minutes % 60:02d} h"
    return text + (" (idle fee until unplug still running)" if provisional else "")


class CostMessages(SessionListener):
    def __init__(self, store: Store, holder: DesiredHolder, port_for: PortFor, *, clock: Clock = _utc_now,
                 timeout: float | None = None) -> None:
        self.store = store
        self.holder = holder
        self.port_for = port_for
        self.clock = clock
        self.timeout = timeout
        self.muted: set[str] = set()  # upper-case identities that refused the vendor
        self.muted_messages: set[tuple[str, str]] = set()
        self._capable: dict[str, bool] = {}
        self._lanes: dict[str, _Lane] = {}

    # ------------------------------------------------------------------------------------ hooks

    def connected(self, identity: str, reason: str) -> None:
        key = identity.upper()
        self._capable.pop(key, None)  # the configuration may be read again
        if reason == "boot":
            self.muted.discard(key)
            self.muted_messages = {(s, msg) for s, msg in self.muted_messages if s != key}

    def authorized(self, identity: str, id_tag: str, info: IdTagInfo) -> None:
        if info.status == "Accepted":
            self._push(identity, (SET_USER_PRICE, id_tag))

    def meter_values(self, identity: str, transaction_id: int | None, samples: Sequence[MeterSample]) -> None:
        if transaction_id is None or not self._maybe(identity):
            return
        times = [t for t in (parse_datetime(s.timestamp) for s in samples) if t is not None]
        lane = self._lanes.setdefault(identity.upper(), _Lane())
        lane.running = (transaction_id, max(times) if times else None)  # replaces one still waiting
        self._start(identity, lane)

    async def transaction_stopped(self, identity: str, record: TransactionRecord, duplicate: bool) -> None:
        if duplicate or record.status is TransactionStatus.ORPHAN:
            return
        lane = self._lanes.get(identity.upper())
        if lane is not None and lane.running is not None and lane.running[0] == record.id:
            lane.running = None  # no running cost after the final one
        self._push(identity, (FINAL_COST, record.id))

    # ----------------------------------------------------------------------------------- queueing

    def _maybe(self, identity: str) -> bool:
        key = identity.upper()
        return key not in self.muted and self._capable.get(key, True)

    def _push(self, identity: str, item: tuple[str, Any]) -> None:
        if not self._maybe(identity):
            return
        lane = self._lanes.setdefault(identity.upper(), _Lane())
        if len(lane.queue) == lane.queue.maxlen:
            log.info("station %s: %s dropped, %d cost messages waiting", identity, lane.queue[0][0], MAX_QUEUED)
        lane.queue.append(item)
        self._start(identity, lane)

    def _start(self, identity: str, lane: _Lane) -> None:
        if lane.task is None:
            lane.task = asyncio.get_running_loop().create_task(self._drain(identity, lane))

    async def _enabled(self, identity: str) -> bool:
        key = identity.upper()
        if key in self.muted:
            return False
        if key in self._capable:
            return self._capable[key]
        rec = await self.store.get_station(identity)
        if rec is None or rec.configuration_read_at is None:
            return False  # not read yet: ask again next time
        item = rec.config_value("CustomDisplayCostAndPrice")
        self._capable[key] = item is not None and (item.value or "").strip().lower() == "true"
        return self._capable[key]

    async def _drain(self, identity: str, lane: _Lane) -> None:
        key = identity.upper()
        try:
            while (item := lane.next()) is not None:
                try:
                    if not await self._enabled(identity):
                        lane.clear()
                        return
                    message = await self._build(identity, *item)
                except StoreError as exc:
                    log.debug("station %s: %s not sent (%s)", identity, item[0], exc)
                    continue
                except Exception:  # a display message must never take anything else down
                    log.exception("station %s: %s could not be built", identity, item[0])
                    continue
                port = self.port_for(identity)
                if port is None:
                    lane.clear()
                    return
                if message is None or (key, message[0]) in self.muted_messages:
                    continue
                if not await self._send(identity, port, *message):
                    lane.clear()
                    return
        finally:
            lane.task = None

    async def _send(self, identity: str, port: ChargerPort, message_id: str, data: dict[str, Any]) -> bool:
        """Send one message; False when nothing more should be sent now."""
        key = identity.upper()
        try:
            result = await port.data_transfer(VENDOR, message_id, data, priority=True, timeout=self.timeout)
        except ChargerUnavailable:
            return False
        except ChargerRejected as exc:
            if exc.code in _MUTING_ERRORS:
                self.muted.add(key)
                log.info("station %s: DataTransfer %s not supported: no more cost messages", identity, VENDOR)
                return False
            return True
        if result.status in _MUTING:
            self.muted.add(key)
            log.info("station %s: %s answered %s: no more cost messages until it boots again", identity,
                     message_id, result.status.value)
            return False
        if result.status is DataTransferStatus.unknown_message_id:
            self.muted_messages.add((key, message_id))
        return True

    # ----------------------------------------------------------------------------------- messages

    async def _build(self, identity: str, message_id: str, arg: Any) -> tuple[str, dict[str, Any]] | None:
        desired = self.holder.desired
        if desired is None:
            return None
        if message_id == SET_USER_PRICE:
            text = user_price_text(desired, identity, str(arg), self.clock())
            return None if text is None else (SET_USER_PRICE, {"idToken": str(arg), "priceText": text})
        if message_id == RUNNING_COST:
            tx_id, until = arg
            tx = await self.store.get_transaction(tx_id)
            if tx is None or tx.status is not TransactionStatus.ACTIVE:
                return None
            at = until or self.clock()
            priced = await price_transaction(self.store, desired, tx, until=at)
            cost = priced.breakdown.total if priced.breakdown is not None else Decimal(0).quantize(
                minor_unit(priced.currency))
            wh = priced.latest_wh if priced.latest_wh is not None else Decimal(tx.meter_start or 0)
            return RUNNING_COST, {"transactionId": tx.id, "timestamp": format_datetime(at), "meterValue": int(wh),
                                  "cost": cost, "state": priced.state}
        return await self._final(desired, int(arg))

    async def _final(self, desired: m.DesiredState, tx_id: int) -> tuple[str, dict[str, Any]] | None:
        rows = latest(await self.store.billing_records(tx_id)).get(tx_id)
        if rows is not None:
            body = body_of(rows)
            total = Decimal(rows.total)
            text = final_text(rows.currency, total, Decimal(str(body.get("energyWh", "0"))),
                              float(body.get("durationSeconds", 0.0)), not rows.final)
        else:
            tx = await self.store.get_transaction(tx_id)
            if tx is None:
                return None
            priced = await price_transaction(self.store, desired, tx, now=self.clock())
            b = priced.breakdown
            total = b.total if b is not None else Decimal(0).quantize(minor_unit(priced.currency))
            text = final_text(priced.currency, total, priced.energy.wh, (priced.stop - priced.start).total_seconds(),
                              b is not None and b.provisional)
        return FINAL_COST, {"transactionId": tx_id, "cost": total, "priceText": text}

    async def close(self) -> None:
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
