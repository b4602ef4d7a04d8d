"""The reservation scheduler: books, holds at the charger, re-sends, and ends reservations.

Role: the imperative shell around `rules`. Everything is in the store, so a restarted controller picks up
where it left off: the reservation row (status, EVSE, idTag, booked end, the policy terms as JSON — billing
reads fee and noShowFee from it) and, as controller state under ``reservations/<id>``, the booking (start,
duration, pinned or not, every ReserveNow answer, why it failed, when it ended). A CancelReservation that could
not reach the charger yet is kept under ``reservation-cancels/<id>`` until it does.

Level-based: one loop task lists the live reservations and asks `rules.next_step` what each needs now; it
sleeps until the earliest next look or an event (a booking, a cancel, a charger connecting or booting, a
session starting). Work that talks to a charger runs in one task per reservation, so a slow charger delays
nobody else; ReserveNow and CancelReservation go out as priority calls (ahead of reconcile work). The
OCPP handler hooks only record the event and wake the loop — they never await a call.

- A ReserveNow answered Accepted makes the reservation ``accepted`` on that EVSE. Occupied, Faulted,
  Unavailable, Rejected (or a CALLERROR): the next EVSE that would take the booking is tried unless the
  driver asked for that EVSE; when none is left the reservation is ``rejected`` and its booking says why
  (every EVSE and its answer). Offline or no answer: tried again when the charger connects, or later.
- 1.6 cannot read reservations back: after every connect and boot each ``requested`` / ``accepted``
  reservation of that charger is sent again with the same reservationId (the charger replaces it).
- A holder starting a session ends the reservation (the OCPP handler marks it ``used`` from the
  reservationId; a charger that leaves the reservationId out is matched on card and EVSE here).

Boundary: reservation bookkeeping and the ReserveNow / CancelReservation calls; the HTTP routes are in
`controller.reservations.api`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import weakref
import zoneinfo
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from controller.config import model as m
from controller.config.effective import BootInfo as EffBootInfo
from controller.config.effective import EffectiveStation
from controller.hw.errors import ChargerRejected, ChargerUnavailable, UnavailableReason
from controller.hw.handlers import SessionListener
from controller.hw.port import ChargerPort
from controller.reconcilers.reservations import why_cancel
from controller.runtime.state import DesiredHolder
from controller.store.api import Store
from controller.store.errors import StoreClosed
from controller.store.records import (
    AuditEntry,
    ReservationRecord,
    ReservationRequest,
    ReservationStatus,
    StationRecord,
    TransactionRecord,
)

from .rules import (
    ANY_EVSE,
    AT_CHARGER,
    LIVE,
    Attempt,
    Booking,
    Refusal,
    Slot,
    Step,
    Terms,
    Wish,
    card_refusal,
    live_slots,
    next_step,
    place,
    targets,
)

log = logging.getLogger("chargeops.reservations")
BOOKING_PREFIX = "reservations/"
CANCEL_PREFIX = "reservation-cancels/"
ORPHAN_AFTER = dt.timedelta(minutes=1)  # a row with no booking this old was cut off while being created


def booking_key(reservation_id: int) -> str:
    return f"{BOOKING_PREFIX}{reservation_id:010d}"


def cancel_key(reservation_id: int) -> str:
    return f"{CANCEL_PREFIX}{reservation_id:010d}"


class Refused(Exception):
    """A booking or cancel the rules refuse; the API answers it as a JSON error."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """A reservation with its booking and terms, as the API shows it."""

    record: ReservationRecord
    booking: Booking | None
    terms: Terms
    station_name: str | None


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _zero_supported(rec: StationRecord | None) -> bool:
    key = rec.config_value("ReserveConnectorZeroSupported") if rec is not None else None
    return key is not None and (key.value or "").strip().lower() == "true"


def _code(answer: str) -> str:
    """A charger's answer as a refusal code: Occupied -> occupied, NotSupported -> not_supported."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(answer))


def _observed(rec: StationRecord | None) -> dict[int, str]:
    return {c.connector_id: c.status for c in rec.connectors} if rec is not None else {}


class ReservationScheduler(SessionListener):
    def __init__(self, desired: DesiredHolder, store: Store, port_for: Callable[[str], ChargerPort | None],
                 clock: Callable[[], dt.datetime], *, retry_after: float = 15.0, max_sleep: float = 60.0) -> None:
        self._desired = desired
        self._store = store
        self._port_for = port_for
        self._clock = clock
        self._retry_after = dt.timedelta(seconds=retry_after)
        self._max_sleep = max_sleep
        self._bookings: dict[int, Booking] = {}
        self._resend: set[int] = set()  # ReserveNow again: the charger connected or booted since
        # reservation -> the connection (port) whose ReserveNow was accepted: a charger boots before it
        # connects, so a boot reported on that same connection lost nothing and needs no second ReserveNow
        # (one that reached the charger after the holder had presented the card was answered Occupied)
        self._held_on: weakref.WeakValueDictionary[int, ChargerPort] = weakref.WeakValueDictionary()
        self._reconnected: set[str] = set()  # upper-case identities that connected or booted
        self._retry_at: dict[int, dt.datetime] = {}  # reservation or cancel could not reach the charger
        self._cancel_retry_at: dict[int, dt.datetime] = {}
        self._backoff: dict[int, dt.datetime] = {}  # an action failed unexpectedly: leave it alone until then
        self._work: dict[int, asyncio.Task[None]] = {}  # one charger-facing task per reservation
        self._cancels: dict[int, asyncio.Task[None]] = {}
        self._side: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._closed = False

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the loop (it reloads every live reservation from the store first)."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="reservations")

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._loop, *self._work.values(), *self._cancels.values(), *self._side) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop = None

    def now(self) -> dt.datetime:
        return self._clock()

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._side.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._side.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, StoreClosed):
            log.error("reservations: %s failed: %r", task.get_name(), exc, exc_info=exc)
        self._wake.set()

    # ------------------------------------------------------------------------------ OCPP handler hooks

    def connected(self, identity: str, reason: str) -> None:
        self._reconnected.add(identity.upper())
        self._wake.set()

    def transaction_started(self, identity: str, record: TransactionRecord) -> None:
        if self._closed:
            return
        self._spawn(self._session_started(identity, record), f"reservation-used-{record.id}")

    async def _session_started(self, identity: str, record: TransactionRecord) -> None:
        now = self._clock()
        if record.reservation_id is not None:
            rec = await self._store.get_reservation(record.reservation_id)
        else:  # some chargers leave the reservationId out: the holder's card on the held EVSE ends it too
            st = self._desired.station(identity)
            rows = await self._store.list_reservations(station=st.identity if st else identity, statuses=AT_CHARGER)
            rec = next((r for r in rows if r.id_tag.upper() == (record.id_tag or "").upper()
                        and r.connector_id in (ANY_EVSE, record.connector_id)), None)
            if rec is not None:
                rec = await self._store.update_reservation(rec.id, ReservationStatus.USED, only_if=AT_CHARGER)
        if rec is None or rec.status is not ReservationStatus.USED:
            return
        booking = await self._booking(rec.id)
        if booking is not None and booking.ended_at is None:
            await self._save(rec.id, dataclasses.replace(booking, ended_at=now))
        log.info("station %s: reservation %d used by transaction %d", identity, rec.id, record.id)

    # ------------------------------------------------------------------------------------ bookings

    async def _booking(self, reservation_id: int) -> Booking | None:
        cached = self._bookings.get(reservation_id)
        if cached is not None:
            return cached
        key = booking_key(reservation_id)
        raw = (await self._store.get_state(key)).get(key)
        if not isinstance(raw, dict):
            return None
        booking = Booking.from_state(raw)
        self._bookings[reservation_id] = booking
        return booking

    async def _save(self, reservation_id: int, booking: Booking) -> None:
        await self._store.put_state(booking_key(reservation_id), booking.to_state())
        self._bookings[reservation_id] = booking

    async def _entry(self, rec: ReservationRecord) -> Entry:
        st = self._desired.station(rec.station)
        return Entry(rec, await self._booking(rec.id), Terms.from_json(rec.policy), st.name if st else None)

    def _lock(self, identity: str) -> asyncio.Lock:
        return self._locks.setdefault(identity.upper(), asyncio.Lock())

    def resolve(self, station: str) -> m.Station | None:
        """A station by name or by charge point identity."""
        desired = self._desired.desired
        if desired is None:
            return None
        return desired.stations.get(station) or desired.station_for_identity(station)

    async def _effective(self, identity: str) -> tuple[EffectiveStation | None, StationRecord | None]:
        rec = await self._store.get_station(identity)
        boot = rec.boot if rec is not None else None
        eff_boot = EffBootInfo(boot.vendor or "", boot.model or "", boot.firmware_version or "") if boot else None
        return self._desired.effective(identity, eff_boot), rec

    async def _slots(self, identity: str, *, besides: int | None = None) -> list[Slot]:
        rows = await self._store.list_reservations(station=identity, statuses=LIVE)
        return live_slots([(r.id, r.connector_id, await self._booking(r.id), Terms.from_json(r.policy),
                            r.created_at, r.expiry) for r in rows if r.id != besides])

    # ------------------------------------------------------------------------------ API operations

    async def create(self, station: str, wish: Wish) -> Entry:
        """Book `wish` at `station` (name or identity) or raise `Refused`."""
        desired = self._desired.desired
        st = self.resolve(station)
        if desired is None or st is None:
            raise Refused(Refusal("station_not_found", f"no station {station!r}"))
        now = self._clock()
        async with self._lock(st.identity):
            eff, rec = await self._effective(st.identity)
            if eff is None:
                raise Refused(Refusal("station_not_found", f"no station {station!r}"))
            found = place(desired, eff, wish, await self._slots(st.identity), now,
                          tz=_zone(desired.owner.timezone), zero_supported=_zero_supported(rec),
                          observed=_observed(rec))
            if isinstance(found, Refusal):
                raise Refused(found)
            booking = Booking(wish.start, wish.duration, pinned=wish.evse is not None)
            later = booking.hold_from(found.terms) > now
            row = await self._store.create_reservation(ReservationRequest(
                st.identity, found.evse, wish.id_tag, booking.end, found.terms.to_json(),
                ReservationStatus.SCHEDULED if later else ReservationStatus.REQUESTED))
            await self._save(row.id, booking)
        await self._audit("ReservationCreated", row, {"evse": found.evse, "start": wish.start.isoformat(),
                                                      "durationMinutes": wish.duration.total_seconds() / 60})
        log.info("station %s: reservation %d booked on EVSE %d from %s for %s", st.identity, row.id, found.evse,
                 wish.start.isoformat(), wish.duration)
        self._wake.set()
        return await self._entry(row)

    async def get(self, reservation_id: int) -> Entry | None:
        rec = await self._store.get_reservation(reservation_id)
        return None if rec is None else await self._entry(rec)

    async def find(self, station: str | None = None,
                   statuses: Collection[ReservationStatus] | None = None) -> list[Entry]:
        identity = None
        if station is not None:
            st = self.resolve(station)
            identity = st.identity if st is not None else station
        rows = await self._store.list_reservations(station=identity, statuses=statuses)
        return [await self._entry(r) for r in rows]

    async def cancel(self, reservation_id: int) -> Entry | None:
        """Cancel a live reservation (None: unknown id; `Refused` when it has already ended)."""
        rec = await self._store.get_reservation(reservation_id)
        if rec is None:
            return None
        if rec.status not in LIVE:
            raise Refused(Refusal("not_active", f"reservation {reservation_id} is already {rec.status.value}"))
        new = await self._store.update_reservation(reservation_id, ReservationStatus.CANCELLED, only_if=LIVE)
        assert new is not None
        if new.status is not ReservationStatus.CANCELLED:
            raise Refused(Refusal("not_active", f"reservation {reservation_id} is already {new.status.value}"))
        booking = await self._booking(reservation_id)
        if booking is not None:
            await self._save(reservation_id, dataclasses.replace(booking, ended_at=self._clock()))
        if rec.status in AT_CHARGER:
            await self._queue_cancel(new)
        await self._audit("ReservationCancelled", new, {"by": "api"})
        log.info("station %s: reservation %d cancelled", rec.station, reservation_id)
        return await self._entry(new)

    async def _queue_cancel(self, rec: ReservationRecord) -> None:
        """CancelReservation now, and again at the next connect until the charger has answered."""
        await self._store.put_state(cancel_key(rec.id), {"station": rec.station})
        self._start_cancel(rec.id, rec.station)

    def _start_cancel(self, reservation_id: int, station: str) -> None:
        if self._closed or reservation_id in self._cancels:
            return
        task = asyncio.create_task(self._send_cancel(reservation_id, station), name=f"cancel-{reservation_id}")
        self._cancels[reservation_id] = task
        task.add_done_callback(functools.partial(self._finished, self._cancels, reservation_id))

    def _finished(self, tasks: dict[int, asyncio.Task[None]], reservation_id: int, task: asyncio.Task[None]) -> None:
        if tasks.get(reservation_id) is task:
            del tasks[reservation_id]
        self._done(task)

    async def _send_cancel(self, reservation_id: int, station: str) -> None:
        port = self._port_for(station)
        try:
            if port is None:
                raise ChargerUnavailable(station, "CancelReservation", UnavailableReason.OFFLINE)
            answer = (await port.cancel_reservation(reservation_id)).value
        except ChargerUnavailable as exc:
            log.info("station %s: CancelReservation %d not sent yet (%s)", station, reservation_id, exc.reason)
            self._cancel_retry_at[reservation_id] = self._clock() + self._retry_after
            return
        except ChargerRejected as exc:
            answer = f"error {exc}"
        log.info("station %s: CancelReservation %d -> %s", station, reservation_id, answer)
        self._cancel_retry_at.pop(reservation_id, None)
        await self._store.delete_state(cancel_key(reservation_id))

    # ---------------------------------------------------------------------------------------- loop

    async def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            try:
                next_look = await self._pass()
            except StoreClosed:
                return
            except Exception:  # the loop must outlive any one bad row or store hiccup
                log.exception("reservations: pass failed; trying again shortly")
                next_look = self._clock() + self._retry_after
            delay = self._max_sleep
            if next_look is not None:
                delay = min(delay, max(0.0, (next_look - self._clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _pass(self) -> dt.datetime | None:
        now = self._clock()
        rows = await self._store.list_reservations(statuses=LIVE)
        cancels = await self._store.get_state(CANCEL_PREFIX)
        reconnected, self._reconnected = self._reconnected, set()
        earliest: dt.datetime | None = None

        def look_at(when: dt.datetime | None) -> None:
            nonlocal earliest
            if when is not None and (earliest is None or when < earliest):
                earliest = when

        for key, value in cancels.items():
            rid = int(key.removeprefix(CANCEL_PREFIX))
            station = str(value.get("station", "")) if isinstance(value, dict) else ""
            retry = self._cancel_retry_at.get(rid)
            if station.upper() in reconnected or retry is None or retry <= now:
                self._start_cancel(rid, station)
            else:
                look_at(retry)
        for r in rows:
            if r.station.upper() in reconnected and r.status in AT_CHARGER:
                self._resend.add(r.id)
            if r.id in self._work:
                continue  # in flight: its end wakes the loop
            backoff = self._backoff.get(r.id)
            if backoff is not None and backoff > now:
                look_at(backoff)
                continue
            booking = await self._booking(r.id)
            if booking is None:
                if now - r.created_at > ORPHAN_AFTER:
                    await self._store.update_reservation(r.id, ReservationStatus.REJECTED, only_if=LIVE)
                    log.warning("reservation %d has no booking (cut off while being created): rejected", r.id)
                else:
                    look_at(r.created_at + ORPHAN_AFTER)
                continue
            terms = Terms.from_json(r.policy)
            step, when = next_step(r.status, booking, terms, now, resend=r.id in self._resend,
                                   retry_at=self._retry_at.get(r.id))
            look_at(when)
            if step in (Step.ACTIVATE, Step.SEND, Step.NO_SHOW, Step.LAPSE):
                task = asyncio.create_task(self._act(r, booking, terms, step), name=f"reservation-{r.id}")
                self._work[r.id] = task
                task.add_done_callback(functools.partial(self._finished, self._work, r.id))
        return earliest

    async def _act(self, r: ReservationRecord, booking: Booking, terms: Terms, step: Step) -> None:
        try:
            await self._step(r, booking, terms, step)
            self._backoff.pop(r.id, None)
        except (asyncio.CancelledError, StoreClosed):
            raise
        except Exception:  # e.g. the store cannot commit: try again later, not in a tight loop
            self._backoff[r.id] = self._clock() + self._retry_after
            raise

    async def _step(self, r: ReservationRecord, booking: Booking, terms: Terms, step: Step) -> None:
        if step is Step.NO_SHOW:
            await self._no_show(r, booking, terms)
        elif step is Step.LAPSE:
            held = r.status is ReservationStatus.REQUESTED
            why = ("the charger did not confirm the reservation before its no-show deadline" if held else
                   "the hold was not placed before the no-show deadline (the controller was not running)")
            await self._fail(r, booking, Refusal("not_held", why))
        elif step is Step.ACTIVATE:
            refusal = await self._still_allowed(r)
            if refusal is not None:
                new = await self._store.update_reservation(r.id, ReservationStatus.CANCELLED,
                                                           only_if=[ReservationStatus.SCHEDULED])
                if new is not None and new.status is ReservationStatus.CANCELLED:
                    await self._save(r.id, dataclasses.replace(booking, failure=refusal, ended_at=self._clock()))
                    await self._audit("ReservationCancelled", new, {"by": "controller", "why": refusal.message})
                return
            new = await self._store.update_reservation(r.id, ReservationStatus.REQUESTED,
                                                       only_if=[ReservationStatus.SCHEDULED])
            if new is not None and new.status is ReservationStatus.REQUESTED:
                await self._send(new, booking, terms)
        else:
            await self._send(r, booking, terms)

    async def _still_allowed(self, r: ReservationRecord) -> Refusal | None:
        """The owner may have changed the repository since the booking: re-check before holding."""
        desired = self._desired.desired
        eff, _ = await self._effective(r.station)
        why = why_cancel(desired, eff, r.connector_id)
        if why is not None:
            return Refusal("no_longer_reservable", why)
        assert desired is not None
        now = self._clock()
        tz = _zone(desired.owner.timezone)
        return card_refusal(desired, r.id_tag, now.astimezone(tz).date(), now.astimezone(tz).date())

    async def _send(self, r: ReservationRecord, booking: Booking, terms: Terms) -> None:
        """ReserveNow on the EVSE held, then (not pinned) on every other EVSE that would take it."""
        resend = r.id in self._resend
        self._resend.discard(r.id)
        port = self._port_for(r.station)
        if port is None:
            self._retry_at[r.id] = self._clock() + self._retry_after  # and at the next connect
            return
        if resend and r.status is ReservationStatus.ACCEPTED and self._held_on.get(r.id) is port:
            return  # already held on this very connection
        desired = self._desired.desired
        eff, rec = await self._effective(r.station)
        order = [r.connector_id]
        if desired is not None and eff is not None:
            order = targets(desired, eff, r.connector_id, booking, terms, r.id_tag,
                            await self._slots(r.station, besides=r.id), self._clock(),
                            zero_supported=_zero_supported(rec), observed=_observed(rec)) or order
        attempts = list(booking.attempts)
        expiry = booking.deadline(terms)
        for evse in order:
            try:
                answer = (await port.reserve_now(evse, expiry, r.id_tag, r.id)).value
            except ChargerUnavailable as exc:
                log.info("station %s: ReserveNow %d not sent yet (%s)", r.station, r.id, exc.reason)
                self._retry_at[r.id] = self._clock() + self._retry_after
                await self._save(r.id, dataclasses.replace(booking, attempts=tuple(attempts)))
                return
            except ChargerRejected as exc:
                answer = exc.code or exc.status or "Rejected"
            attempts.append(Attempt(evse, answer, self._clock()))
            log.info("station %s: ReserveNow %d on EVSE %d -> %s", r.station, r.id, evse, answer)
            if answer == "Accepted":
                self._retry_at.pop(r.id, None)
                self._held_on[r.id] = port
                await self._held(r, dataclasses.replace(booking, attempts=tuple(attempts), failure=None), evse)
                return
            if answer == "NotSupported":
                break  # the charger has no Reservation profile: no other EVSE will do better
        self._retry_at.pop(r.id, None)
        tried = attempts[len(booking.attempts):]
        why = "; ".join(f"EVSE {a.evse} answered {a.answer}" for a in tried)
        if not booking.pinned and len(tried) == 1 and len(order) == 1:
            why += " (no other EVSE of the station would take it)"
        await self._fail(r, dataclasses.replace(booking, attempts=tuple(attempts)),
                         Refusal(_code(tried[-1].answer) if tried else "rejected", why))

    async def _held(self, r: ReservationRecord, booking: Booking, evse: int) -> None:
        new = await self._store.update_reservation(r.id, ReservationStatus.ACCEPTED, connector_id=evse,
                                                   only_if=AT_CHARGER)
        await self._save(r.id, booking)
        if new is None:
            return
        if new.status is ReservationStatus.CANCELLED:  # cancelled while the ReserveNow was out: undo it
            await self._queue_cancel(new)
        elif new.status is ReservationStatus.ACCEPTED and evse != r.connector_id:
            await self._audit("ReservationMoved", new, {"from": r.connector_id, "to": evse})

    async def _fail(self, r: ReservationRecord, booking: Booking, refusal: Refusal) -> None:
        new = await self._store.update_reservation(r.id, ReservationStatus.REJECTED, only_if=LIVE)
        if new is None or new.status is not ReservationStatus.REJECTED:
            return
        await self._save(r.id, dataclasses.replace(booking, failure=refusal, ended_at=self._clock()))
        await self._audit("ReservationFailed", new, {"code": refusal.code, "why": refusal.message})
        log.warning("station %s: reservation %d failed: %s", r.station, r.id, refusal.message)

    async def _no_show(self, r: ReservationRecord, booking: Booking, terms: Terms) -> None:
        new = await self._store.update_reservation(r.id, ReservationStatus.EXPIRED,
                                                   only_if=[ReservationStatus.ACCEPTED])
        if new is None or new.status is not ReservationStatus.EXPIRED:
            return
        await self._save(r.id, dataclasses.replace(booking, ended_at=self._clock()))
        await self._audit("ReservationNoShow", new, {"fee": str(terms.no_show_fee), "policy": terms.name,
                                                     "deadline": booking.deadline(terms).isoformat()})
        log.info("station %s: reservation %d expired unused (no-show)", r.station, r.id)

    async def _audit(self, action: str, rec: ReservationRecord, detail: dict[str, Any]) -> None:
        await self._store.audit(AuditEntry(action=action, at=self._clock(), station=rec.station,
                                           detail={"reservationId": rec.id, "idTag": rec.id_tag, **detail},
                                           git_revision=self._desired.revision))
