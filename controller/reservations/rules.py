"""Reservation rules (pure): may this card book this EVSE, where does a booking go, what next.

- `place`: the checks a new booking passes, in this order — station activated; card known, not blocked,
  not expired (at the booked start either); then per EVSE: declared and operative, a reservable policy in
  force, access allows the card, the card's group is in the policy's allowedGroups (none listed = any
  card), duration within maxDurationMinutes, and no overlap with another live booking of that EVSE (the
  slot plus the buffer before it). Without an EVSE asked for, the first EVSE passing everything is taken
  (one reported Available first when the hold starts now); connector 0 ("any EVSE") is used instead when
  the charger reports ReserveConnectorZeroSupported and every EVSE of the station would take the booking.
  A refusal names the check that failed furthest along (an `overlap` tells more than a `not_reservable`).
- `targets`: where an activation (or a re-send) tries, in order: the EVSE the booking holds, then, unless
  the driver asked for that EVSE, every other EVSE that would still take it.
- `next_step`: what a reservation needs at `now` and when to look again.

Boundary: pure; desired state, effective station, bookings and observed connector statuses in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from controller.config import model as m
from controller.config.access import BLOCKED, EXPIRED, card_status, may_use
from controller.config.effective import EffectiveEvse, EffectiveStation
from controller.store.records import ReservationStatus

ANY_EVSE = 0
LIVE = frozenset({ReservationStatus.SCHEDULED, ReservationStatus.REQUESTED, ReservationStatus.ACCEPTED})
AT_CHARGER = frozenset({ReservationStatus.REQUESTED, ReservationStatus.ACCEPTED})

# Refusal codes, in the order the checks run per EVSE (a later one tells the driver more).
EVSE_CHECKS = ("evse_not_found", "evse_inoperative", "not_reservable", "access_denied", "group_not_allowed",
               "too_long", "overlap")


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class Terms:
    """The policy terms a booking was accepted under, stored with it (the `policy` column, as JSON)."""

    name: str
    fee: Decimal = Decimal(0)
    no_show_fee: Decimal = Decimal(0)
    grace_minutes: int = 15
    buffer_minutes: int = 10

    @classmethod
    def of(cls, policy: m.ReservationPolicy) -> Terms:
        return cls(policy.name, policy.fee, policy.no_show_fee, policy.grace_minutes, policy.buffer_minutes)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "fee": str(self.fee), "noShowFee": str(self.no_show_fee),
                           "graceMinutes": self.grace_minutes, "bufferMinutes": self.buffer_minutes},
                          separators=(",", ":"))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.to_json())
        return out

    @classmethod
    def from_json(cls, text: str) -> Terms:
        """Lenient: a row written with a bare policy name (or odd values) gets the defaults."""
        try:
            raw = json.loads(text)
        except ValueError:
            return cls(text)
        if not isinstance(raw, dict):
            return cls(text)
        defaults = cls(str(raw.get("name", "")))
        return cls(defaults.name, _decimal(raw.get("fee"), defaults.fee),
                   _decimal(raw.get("noShowFee"), defaults.no_show_fee),
                   _int(raw.get("graceMinutes"), defaults.grace_minutes),
                   _int(raw.get("bufferMinutes"), defaults.buffer_minutes))


def _decimal(value: object, default: Decimal) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else default
    except InvalidOperation:
        return default


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """One ReserveNow and the charger's answer."""

    evse: int
    answer: str
    at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Booking:
    """What was booked and what became of it, beyond the store row (kept as controller state)."""

    start: dt.datetime
    duration: dt.timedelta
    pinned: bool  # the driver asked for this EVSE: it is never moved
    attempts: tuple[Attempt, ...] = ()
    failure: Refusal | None = None  # why it failed, or why the controller cancelled it
    ended_at: dt.datetime | None = None

    @property
    def end(self) -> dt.datetime:
        return self.start + self.duration

    def hold_from(self, terms: Terms) -> dt.datetime:
        return self.start - dt.timedelta(minutes=terms.buffer_minutes)

    def deadline(self, terms: Terms) -> dt.datetime:
        """The no-show deadline: the holder must begin charging by then (also the charger's expiryDate)."""
        return self.start + min(dt.timedelta(minutes=terms.grace_minutes), self.duration)

    def to_state(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(), "durationSeconds": self.duration.total_seconds(),
            "pinned": self.pinned,
            "attempts": [{"evse": a.evse, "answer": a.answer, "at": a.at.isoformat()} for a in self.attempts],
            "failure": None if self.failure is None else {"code": self.failure.code, "message": self.failure.message},
            "endedAt": None if self.ended_at is None else self.ended_at.isoformat(),
        }

    @classmethod
    def from_state(cls, raw: Mapping[str, Any]) -> Booking:
        failure = raw.get("failure")
        ended = raw.get("endedAt")
        return cls(
            start=dt.datetime.fromisoformat(raw["start"]), duration=dt.timedelta(seconds=raw["durationSeconds"]),
            pinned=bool(raw["pinned"]),
            attempts=tuple(Attempt(int(a["evse"]), str(a["answer"]), dt.datetime.fromisoformat(a["at"]))
                           for a in raw.get("attempts", ())),
            failure=Refusal(failure["code"], failure["message"]) if isinstance(failure, Mapping) else None,
            ended_at=dt.datetime.fromisoformat(ended) if isinstance(ended, str) else None)


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """A live booking as seen by the overlap check: ``[held_from, until)`` on ``evse`` (0 = any EVSE)."""

    reservation_id: int
    evse: int
    held_from: dt.datetime
    until: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Wish:
    """A booking asked for through the API (`evse` None = any EVSE of the station)."""

    id_tag: str
    evse: int | None
    start: dt.datetime
    duration: dt.timedelta


@dataclasses.dataclass(frozen=True, slots=True)
class Placement:
    evse: int  # 0 = any EVSE (ReserveConnectorZeroSupported)
    terms: Terms


def _overlaps(evse: int, held_from: dt.datetime, until: dt.datetime, slots: Sequence[Slot]) -> Slot | None:
    for s in slots:
        same = evse == s.evse or ANY_EVSE in (evse, s.evse)
        if same and s.held_from < until and held_from < s.until:
            return s
    return None


def card_refusal(desired: m.DesiredState, id_tag: str, today: dt.date, start_day: dt.date) -> Refusal | None:
    card = desired.card(id_tag)
    if card is None:
        return Refusal("card_invalid", "the card is not known")
    status = card_status(card, today)
    if status == BLOCKED:
        return Refusal("card_invalid", "the card is blocked")
    if status == EXPIRED or card_status(card, start_day) == EXPIRED:
        return Refusal("card_invalid", "the card has expired" if status == EXPIRED
                       else "the card expires before the reservation starts")
    return None


def evse_refusal(desired: m.DesiredState, e: EffectiveEvse, id_tag: str, duration: dt.timedelta,
                 held_from: dt.datetime, until: dt.datetime, slots: Sequence[Slot]) -> Refusal | None:
    """Why EVSE `e` cannot take the booking, or None (checks in `EVSE_CHECKS` order)."""
    if e.availability != "operative":
        return Refusal("evse_inoperative", f"EVSE {e.id} is declared inoperative")
    policy = desired.reservation_policies.get(e.reservation_policy or "")
    if policy is None or not policy.reservable:
        return Refusal("not_reservable", f"EVSE {e.id} cannot be reserved")
    key = id_tag.upper()
    if not may_use(desired, e.access, key):
        return Refusal("access_denied", f"EVSE {e.id} is restricted to {', '.join(e.access.groups)}")
    groups = desired.card_groups.get(key, frozenset())
    if policy.allowed_groups and not groups & set(policy.allowed_groups):
        return Refusal("group_not_allowed", f"policy {policy.name} lets only {', '.join(policy.allowed_groups)} "
                                            "reserve")
    if duration > dt.timedelta(minutes=policy.max_duration_minutes):
        return Refusal("too_long", f"policy {policy.name} allows at most {policy.max_duration_minutes} minutes")
    clash = _overlaps(e.id, held_from, until, slots)
    if clash is not None:
        return Refusal("overlap", f"EVSE {e.id} is reserved from {clash.held_from.isoformat()} to "
                                  f"{clash.until.isoformat()}" if clash.evse else
                       f"the station is reserved from {clash.held_from.isoformat()} to {clash.until.isoformat()}")
    return None


def _furthest(refusals: Sequence[Refusal]) -> Refusal:
    return max(refusals, key=lambda r: EVSE_CHECKS.index(r.code) if r.code in EVSE_CHECKS else -1)


def place(desired: m.DesiredState, eff: EffectiveStation, wish: Wish, slots: Sequence[Slot], now: dt.datetime, *,
          tz: dt.tzinfo = dt.UTC, zero_supported: bool = False,
          observed: Mapping[int, str] | None = None) -> Placement | Refusal:
    """Where `wish` goes, or why it cannot (see the module docstring for the checks)."""
    if not eff.operative:
        return Refusal("station_not_active", f"station {eff.station.name} is not activated")
    refused = card_refusal(desired, wish.id_tag, now.astimezone(tz).date(), wish.start.astimezone(tz).date())
    if refused is not None:
        return refused
    if wish.evse is not None and not any(e.id == wish.evse for e in eff.evses):
        return Refusal("evse_not_found", f"station {eff.station.name} has no EVSE {wish.evse}")
    evses = [e for e in eff.evses if wish.evse in (None, e.id)]
    # every EVSE's policy is checked with its own buffer, so the window is computed per EVSE
    verdicts: list[tuple[EffectiveEvse, Refusal | None, Terms | None]] = []
    for e in evses:
        policy = desired.reservation_policies.get(e.reservation_policy or "")
        terms = Terms.of(policy) if policy is not None else None
        held_from = wish.start - dt.timedelta(minutes=terms.buffer_minutes if terms else 0)
        verdicts.append((e, evse_refusal(desired, e, wish.id_tag, wish.duration, held_from,
                                         wish.start + wish.duration, slots), terms))
    fits = [(e, t) for e, why, t in verdicts if why is None and t is not None]
    if not fits:
        return _furthest([why for _, why, _ in verdicts if why is not None] or
                         [Refusal("not_reservable", "the station has no EVSE")])
    if wish.evse is None and zero_supported and len(fits) == len(eff.evses):
        return Placement(ANY_EVSE, fits[0][1])
    statuses = observed or {}
    holds_now = min(wish.start - dt.timedelta(minutes=t.buffer_minutes) for _, t in fits) <= now
    e, terms = min(fits, key=lambda f: (holds_now and statuses.get(f[0].id, "Available") != "Available", f[0].id))
    return Placement(e.id, terms)


def targets(desired: m.DesiredState, eff: EffectiveStation, current: int, booking: Booking, terms: Terms,
            id_tag: str, others: Sequence[Slot], now: dt.datetime, *, zero_supported: bool = False,
            observed: Mapping[int, str] | None = None) -> list[int]:
    """EVSEs to try, in order, when the hold starts or is re-sent: the one held, then (not pinned) any other
    EVSE that would take the booking now, reported Available first. Connector 0 is tried first only when
    the booking is already on it (and the charger still supports it)."""
    if booking.pinned:
        return [current]
    statuses = observed or {}
    held_from = max(now, booking.hold_from(terms))
    spare = [e.id for e in sorted(eff.evses, key=lambda e: (statuses.get(e.id, "Available") != "Available", e.id))
             if e.id != current and evse_refusal(desired, e, id_tag, booking.duration, held_from, booking.end,
                                                 others) is None]
    first = [current] if current != ANY_EVSE or zero_supported else []
    return first + spare


class Step(StrEnum):
    WAIT = "wait"  # nothing to do before `next_look`
    ACTIVATE = "activate"  # scheduled -> requested, then send ReserveNow
    SEND = "send"  # (re-)send ReserveNow
    NO_SHOW = "no_show"  # accepted and not used by the deadline -> expired, no-show recorded
    LAPSE = "lapse"  # never held at the charger before the deadline -> rejected
    DONE = "done"  # terminal


def next_step(status: ReservationStatus, booking: Booking, terms: Terms, now: dt.datetime, *,
              resend: bool = False, retry_at: dt.datetime | None = None) -> tuple[Step, dt.datetime | None]:
    """What a reservation needs now, and when to look at it again (None = only on an event).

    `resend`: the charger connected or booted since the last ReserveNow (1.6 cannot read reservations
    back); `retry_at`: the last ReserveNow could not reach the charger, try again then."""
    deadline = booking.deadline(terms)
    if status not in LIVE:
        return Step.DONE, None
    if now >= deadline:
        return (Step.NO_SHOW if status is ReservationStatus.ACCEPTED else Step.LAPSE), None
    if status is ReservationStatus.SCHEDULED:
        hold_from = booking.hold_from(terms)
        return (Step.ACTIVATE, deadline) if now >= hold_from else (Step.WAIT, hold_from)
    if status is ReservationStatus.REQUESTED or resend:
        if retry_at is not None and retry_at > now and not resend:
            return Step.WAIT, min(retry_at, deadline)
        return Step.SEND, deadline
    return Step.WAIT, deadline


def live_slots(rows: Collection[tuple[int, int, Booking | None, Terms, dt.datetime, dt.datetime]]) -> list[Slot]:
    """Slots of live bookings from (id, evse, booking, terms, created_at, expiry) rows; a row without its
    booking (written before the booking was) holds from its creation to its expiry."""
    out = []
    for rid, evse, booking, terms, created, expiry in rows:
        if booking is None:
            out.append(Slot(rid, evse, created, expiry))
        else:
            out.append(Slot(rid, evse, booking.hold_from(terms), booking.end))
    return out
