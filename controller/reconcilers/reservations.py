"""Reservations reconciler: an EVSE or station that stops being reservable gets its reservations cancelled.

Reservations are made by drivers through the controller (OCPP 1.6 cannot read them back), so the shell
passes the pending ones in (`PendingReservation`: id, connector, expiry). A reservation is cancelled when
its station is removed or not activated, its connector is no longer declared or is declared inoperative,
or the reservation policy in force there is gone or not reservable. Connector 0 (any connector) stays
valid while at least one EVSE is reservable. Expired reservations are left alone (the charger drops them).

Boundary: pure; desired state, effective station (None = removed) and pending reservations in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from controller.config import model as m
from controller.config.effective import EffectiveEvse, EffectiveStation

from .actions import Action, Change, Kind, Op, Part, Phase


@dataclasses.dataclass(frozen=True, slots=True)
class PendingReservation:
    id: int
    connector_id: int
    expiry: dt.datetime | None = None


def _reservable(desired: m.DesiredState, e: EffectiveEvse) -> bool:
    policy = desired.reservation_policies.get(e.reservation_policy or "")
    return policy is not None and policy.reservable and e.availability == "operative"


def why_cancel(desired: m.DesiredState | None, eff: EffectiveStation | None, connector: int) -> str | None:
    """Why a reservation on `connector` can no longer hold, or None when it may stay."""
    if desired is None or eff is None:
        return "the station was removed from the repository"
    if not eff.operative:
        return "the station is not activated"
    if connector == 0:
        return None if any(_reservable(desired, e) for e in eff.evses) else "no EVSE of the station is reservable"
    evse = next((e for e in eff.evses if e.id == connector), None)
    if evse is None:
        return f"connector {connector} is no longer declared"
    if evse.availability != "operative":
        return f"EVSE {connector} is declared inoperative"
    if not _reservable(desired, evse):
        return f"EVSE {connector} is no longer reservable"
    return None


def plan(desired: m.DesiredState | None, eff: EffectiveStation | None,
         pending: Sequence[PendingReservation], now: dt.datetime) -> Part:
    actions = []
    for r in sorted(pending, key=lambda r: r.id):
        if r.expiry is not None and r.expiry <= now:
            continue
        why = why_cancel(desired, eff, r.connector_id)
        if why is None:
            continue
        actions.append(Action(Phase.AVAILABILITY, Kind.CANCEL_RESERVATION, {"reservationId": r.id},
                              why, Change(f"reservation {r.id}", f"connector {r.connector_id}", None), op=Op.REMOVE))
    return Part(tuple(actions))
