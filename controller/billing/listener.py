"""Flex Billing at run time: every finished session becomes an immutable billing record.

`BillingListener` hooks into the OCPP handlers (`SessionListener`):
- `transaction_stopped` (awaited before the StopTransaction is answered, re-sent stops included): when
  the transaction has no record yet and the owner's billing was enabled at the session's start, the
  session is priced (`session.price_transaction`) and version 1 is written. It is durable before the
  answer; a store that cannot commit raises `StoreUnavailable`, the stop stays unanswered and the
  charger re-sends it (then `duplicate=True` finds the record, or writes it now). Records are keyed by
  the transaction id, so a re-sent stop never bills twice. Late offline sessions are booked now (the
  open period) with their own charger dates and the tariff of their own start.
- `status_changed` (a connector became Available) and `connected` (a charger is back: statuses may have
  arrived while we were down) schedule finalisation: a provisional record (idle fee until unplug)
  whose plug-out is now known gets its final version 2. Append-only: version 1 stays as it was.
A pricing failure (a bug) never loses the session: a zero-amount record under review is written instead.

Boundary: hooks -> store writes; pricing in `session`, record shape in `records`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from controller.hw.handlers import SessionListener
from controller.runtime.state import DesiredHolder
from controller.store.api import Store
from controller.store.billing_records import BillingRow
from controller.store.errors import StoreError, StoreUnavailable
from controller.store.records import ConnectorStatus, TransactionRecord

from .history import record_in_force
from .records import build_row, failed_row
from .session import price_transaction

log = logging.getLogger("chargeops.billing")
Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BillingListener(SessionListener):
    def __init__(self, store: Store, holder: DesiredHolder, *, clock: Clock = _utc_now) -> None:
        self.store = store
        self.holder = holder
        self.clock = clock
        self._tasks: set[asyncio.Task[Any]] = set()
        self._finalising: set[str] = set()  # stations with a finalisation running
        self._again: set[str] = set()  # ... and asked for again meanwhile

    # ------------------------------------------------------------------------------------ hooks

    async def transaction_stopped(self, identity: str, record: TransactionRecord, duplicate: bool) -> None:
        if duplicate and await self.store.billing_records(record.id):
            return  # billed already (a re-sent stop; a stop recorded just now has no record yet, and version 1
            # is written only if absent whatever happens: one read less before the answer of every new stop)
        await self._ensure_history()
        row = await self._build(record, version=1)
        if row is None:
            return
        stored, created = await self.store.add_billing_record(row)
        if created:
            log.info("station %s: transaction %d billed %s %s%s%s", identity, record.id, stored.total,
                     stored.currency, "" if stored.final else " (provisional until unplug)",
                     " - under review" if stored.under_review else "")

    def status_changed(self, identity: str, status: ConnectorStatus) -> None:
        if status.status.strip().lower() == "available":
            self._finalise_soon(identity)

    def connected(self, identity: str, reason: str) -> None:
        self._finalise_soon(identity)

    # ---------------------------------------------------------------------------------- records

    async def _ensure_history(self) -> None:
        """The revision in force is in the history (the controller records each it takes; this covers a
        store that could not take it then)."""
        await record_in_force(self.store, self.holder, self.clock())  # (nothing once the controller did)

    async def _build(self, record: TransactionRecord, *, version: int) -> BillingRow | None:
        desired = self.holder.desired
        try:
            priced = await price_transaction(self.store, desired, record, now=self.clock())
        except StoreError:
            raise
        except Exception as exc:  # never lose a session to a pricing bug: record it for review
            log.exception("transaction %d could not be priced; recorded under review", record.id)
            currency = desired.owner.currency if desired is not None else "EUR"
            return failed_row(record, version=version, booked_at=self.clock(), currency=currency,
                              error=f"{type(exc).__name__}: {exc}")
        if version == 1 and not priced.billing_enabled:
            return None
        return build_row(priced, version=version, booked_at=self.clock())

    # ------------------------------------------------------------------------------- finalising

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finalise_soon(self, identity: str) -> None:
        if identity in self._finalising:
            self._again.add(identity)
            return
        self._finalising.add(identity)
        self._spawn(self._finalise_loop(identity))

    async def _finalise_loop(self, identity: str) -> None:
        try:
            while True:
                self._again.discard(identity)
                try:
                    await self.finalise(identity)
                except StoreError as exc:
                    log.warning("station %s: provisional records not finalised now (%s); retried at the next"
                                " status or connect", identity, exc)
                if identity not in self._again:
                    return
        finally:
            self._finalising.discard(identity)

    async def finalise(self, identity: str) -> int:
        """Write the final version of the station's provisional records whose plug-out is known."""
        done = 0
        for row in await self.store.provisional_billing_records(identity):
            tx = await self.store.get_transaction(row.transaction_id)
            if tx is None:
                continue
            final = await self._build(tx, version=row.version + 1)
            if final is None or not final.final:
                continue
            stored, created = await self.store.add_billing_record(final)
            if created:
                done += 1
                log.info("station %s: transaction %d final at unplug: %s %s", identity, tx.id, stored.total,
                         stored.currency)
        return done

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, StoreUnavailable, Exception):
                await task
