"""Activation reconciler: a de-activated or removed station is kept inert, never reset.

DESIGN §3: such a station stays Accepted at boot (so its queued transaction messages drain), is made
Inoperative on connector 0 (persists across reboots) and has offline authorization off.

- De-activated but still declared: the effective station already says so (`operative=False` derives
  LocalAuthListEnabled / LocalAuthorizeOffline / AllowOfflineTxForUnknownId = false and inoperative
  EVSEs), so the configuration, availability, access and reservation reconcilers produce the actions;
  `plan` only adds the explanation. One source per action means no duplicates or contradictions.
- Removed from the repository (`plan_removed`): there is no effective station, so the same actions are
  built here: the offline-authorization keys false where the charger reports them, connector 0
  Inoperative, the local list emptied, pending reservations cancelled. Visibility needs nothing on the
  charger.

Boundary: pure; observed station + now in, a `Part` out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from controller.config.effective import EffectiveStation

from . import access, availability, reservations
from .actions import Action, Note, Part, info
from .configuration import collect, key_change
from .observed import ObservedStation

INERT_KEYS = (("AllowOfflineTxForUnknownId", "false"), ("LocalAuthListEnabled", "false"),
              ("LocalAuthorizeOffline", "false"))
REMOVED = "removed from the repository"


def plan(eff: EffectiveStation) -> Part:
    if eff.operative:
        return Part()
    return Part(notes=(info("the station is not activated: it stays Accepted so queued transactions drain, "
                            "is kept inoperative and has offline authorization off (never reset)", "activation"),))


def plan_removed(observed: ObservedStation, now: dt.datetime,
                 pending: Sequence[reservations.PendingReservation] = ()) -> Part:
    results: list[Action | Note | None] = [
        key_change(observed, key, value, reason=f"{REMOVED}: offline authorization off",
                   only_if_reported=True)
        for key, value in INERT_KEYS]
    return (
        Part(notes=(info(f"{REMOVED}: the charger is not reset; it stays Accepted so its queued transactions "
                         "drain, and is made inert", "activation"),))
        + collect(results)
        + access.empty_list(observed, f"{REMOVED}: the local list is emptied")
        + reservations.plan(None, None, pending, now)
        + availability.station_inoperative(observed, f"{REMOVED}: made inoperative (connector 0, "
                                                     "persists across reboots)")
    )
