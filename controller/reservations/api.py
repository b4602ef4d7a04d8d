"""The reservations HTTP API, for the owner's apps and backend (every route needs the API bearer token).

Routes:
  POST   /api/v1/reservations           book: {"station": name or identity, "evse": id (optional;
                                        absent or 0: any EVSE of the station), "idTag": card, "start":
                                        ISO 8601 time with offset (optional: now), "durationMinutes":
                                        number (fractions allowed)} -> 201 and the reservation
  GET    /api/v1/reservations?station=&status=   list (status: one or more, comma separated)
  GET    /api/v1/reservations/{id}      one reservation: status, EVSE, every ReserveNow answer, and why it
                                        failed or was cancelled by the controller (`failure`)
  DELETE /api/v1/reservations/{id}      cancel (CancelReservation goes to the charger)

A reservation reads: id (the OCPP reservationId), station, stationName, evse (0 = any EVSE of the
station), pinned, idTag (masked), start, end, noShowDeadline, durationMinutes, status, policy (the terms
it was accepted under), attempts, failure, noShow, endedAt, createdAt, updatedAt.

Refusals are ``{"error": {"code": ..., "message": ...}}``: 400 invalid_request; 403 card_invalid,
access_denied, group_not_allowed; 404 not_found, station_not_found, evse_not_found; 409 overlap,
station_not_active, evse_inoperative, not_active (already ended); 422 not_reservable, too_long,
start_in_past; 503 unavailable (the store could not commit: nothing changed).

Boundary: HTTP <-> `ReservationScheduler`; JSON validation and views, no decisions of its own.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from controller.runtime.http import Handler, HttpError, Request, Response, Route, json_response, require_token
from controller.store.errors import StoreUnavailable
from controller.store.records import ReservationStatus
from controller.store.redact import mask_id_tag

from .rules import Wish
from .scheduler import Entry, Refused, ReservationScheduler

HTTP_STATUS = {
    "invalid_request": 400,
    "card_invalid": 403, "access_denied": 403, "group_not_allowed": 403,
    "not_found": 404, "station_not_found": 404, "evse_not_found": 404,
    "overlap": 409, "station_not_active": 409, "evse_inoperative": 409, "not_active": 409,
    "not_reservable": 422, "too_long": 422, "start_in_past": 422,
}
PAST_TOLERANCE = dt.timedelta(minutes=1)  # a start this little in the past (clock skew) means now


def _bad(message: str) -> HttpError:
    return HttpError(400, message, "invalid_request")


def _refused(exc: Refused) -> HttpError:
    return HttpError(HTTP_STATUS.get(exc.refusal.code, 409), exc.refusal.message, exc.refusal.code)


def parse_wish(body: Any, now: dt.datetime) -> tuple[str, Wish]:
    """The station and the booking asked for; `HttpError` 400 / 422 naming the field at fault."""
    if not isinstance(body, dict):
        raise _bad("a JSON object is expected")
    unknown = set(body) - {"station", "evse", "idTag", "start", "durationMinutes"}
    if unknown:
        raise _bad(f"unknown field(s): {', '.join(sorted(unknown))}")
    station, id_tag, evse = body.get("station"), body.get("idTag"), body.get("evse")
    if not isinstance(station, str) or not station:
        raise _bad("station is required: a station name or charge point identity")
    if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= 20:
        raise _bad("idTag is required: the card's idTag (1 to 20 characters)")
    if evse is not None and (isinstance(evse, bool) or not isinstance(evse, int) or evse < 0):
        raise _bad("evse must be an EVSE id (leave it out for any EVSE of the station)")
    minutes = body.get("durationMinutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not math.isfinite(minutes) \
            or minutes <= 0:
        raise _bad("durationMinutes is required: a positive number of minutes")
    start = now
    if body.get("start") is not None:
        asked = _time(body["start"])
        if asked is None:
            raise _bad("start must be an ISO 8601 time with a UTC offset, e.g. 2025-05-01T14:00:00+02:00")
        if asked < now - PAST_TOLERANCE:
            raise HttpError(422, f"start {body['start']} is in the past", "start_in_past")
        start = max(asked, now)
    return station, Wish(id_tag, evse or None, start, dt.timedelta(minutes=minutes))


def _time(raw: object) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        t = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def view(entry: Entry) -> dict[str, Any]:
    r, b, terms = entry.record, entry.booking, entry.terms
    return {
        "id": r.id, "station": r.station, "stationName": entry.station_name, "evse": r.connector_id,
        "pinned": b.pinned if b else None, "idTag": mask_id_tag(r.id_tag),
        "start": b.start if b else None, "end": r.expiry, "noShowDeadline": b.deadline(terms) if b else None,
        "durationMinutes": b.duration.total_seconds() / 60 if b else None,
        "status": r.status.value, "policy": terms.as_dict(),
        "attempts": [{"evse": a.evse, "answer": a.answer, "at": a.at} for a in b.attempts] if b else [],
        "failure": {"code": b.failure.code, "message": b.failure.message} if b and b.failure else None,
        "noShow": r.status is ReservationStatus.EXPIRED, "endedAt": b.ended_at if b else None,
        "createdAt": r.created_at, "updatedAt": r.updated_at,
    }


def _statuses(raw: str | None) -> list[ReservationStatus] | None:
    if not raw:
        return None
    try:
        return [ReservationStatus(s.strip().lower()) for s in raw.split(",") if s.strip()]
    except ValueError:
        known = ", ".join(s.value for s in ReservationStatus)
        raise _bad(f"status must be one or more of {known}") from None


def _id(req: Request) -> int:
    raw = req.params["id"]
    if not raw.isdigit():
        raise HttpError(404, f"no reservation {raw!r}", "not_found")
    return int(raw)


def routes(scheduler: ReservationScheduler, tokens: Collection[str]) -> list[Route]:
    allowed = set(tokens)

    async def create(req: Request) -> Response:
        require_token(req, allowed)
        station, wish = parse_wish(req.json(), scheduler.now())
        try:
            entry = await scheduler.create(station, wish)
        except Refused as exc:
            raise _refused(exc) from None
        return json_response(view(entry), status=201)

    async def listing(req: Request) -> Response:
        require_token(req, allowed)
        entries = await scheduler.find(req.query.get("station") or None, _statuses(req.query.get("status")))
        return json_response([view(e) for e in entries])

    async def one(req: Request) -> Response:
        require_token(req, allowed)
        entry = await scheduler.get(_id(req))
        if entry is None:
            raise HttpError(404, f"no reservation {req.params['id']}", "not_found")
        return json_response(view(entry))

    async def cancel(req: Request) -> Response:
        require_token(req, allowed)
        try:
            entry = await scheduler.cancel(_id(req))
        except Refused as exc:
            raise _refused(exc) from None
        if entry is None:
            raise HttpError(404, f"no reservation {req.params['id']}", "not_found")
        return json_response(view(entry))

    return [
        Route("POST", "/api/v1/reservations", _guard(create)),
        Route("GET", "/api/v1/reservations", _guard(listing)),
        Route("GET", "/api/v1/reservations/{id}", _guard(one)),
        Route("DELETE", "/api/v1/reservations/{id}", _guard(cancel)),
    ]


def _guard(handler: Callable[[Request], Awaitable[Response]]) -> Handler:
    """A store that cannot commit is a 503 (nothing was booked or cancelled), not a 500."""
    async def guarded(req: Request) -> Response:
        try:
            return await handler(req)
        except StoreUnavailable:
            raise HttpError(503, "the store is unavailable: nothing was changed, try again", "unavailable") from None
    return guarded
