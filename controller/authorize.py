"""Authorization decisions for Authorize and StartTransaction (pure).

Online Authorize is the source of truth; the local list (see `config.access`) is its offline subset, and
both come from the same rules:

1. a station that is not activated (or was removed) lets nobody charge -> Invalid;
2. an unknown idTag -> Invalid; a blocked card -> Blocked; a card past its validUntil -> Expired;
3. the card must be allowed on at least one usable EVSE (the connector, when known): access public or
   one of its groups listed; an inoperative EVSE is not usable; an EVSE held by a reservation is usable
   only by the holder, and a reservation-only EVSE (policy reservable without walk-ins) only with one;
4. a card already running its maximum of sessions (default 1) -> ConcurrentTx;
5. otherwise Accepted, with parentIdTag = the card's group and an expiryDate no later than the card's
   validity and the cache horizon, so a charger's authorization cache re-checks soon.

idTags are compared on their upper-case form (CiString20).

Boundary: pure; desired state, effective station, reservations and counts in; an `IdTagInfo` out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from .config import model as m
from .config.access import ACCEPTED, BLOCKED, CONCURRENT, EXPIRED, INVALID, card_status, may_use
from .config.effective import EffectiveEvse, EffectiveStation

DEFAULT_CACHE_HORIZON = dt.timedelta(hours=24)


@dataclasses.dataclass(frozen=True, slots=True)
class IdTagInfo:
    status: str
    expiry_date: dt.datetime | None = None
    parent_id_tag: str | None = None
    reason: str = ""  # for logs and audit (never sent to the charger)

    def as_payload(self) -> dict[str, str]:
        out = {"status": self.status}
        if self.expiry_date is not None:
            out["expiryDate"] = self.expiry_date.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.parent_id_tag is not None:
            out["parentIdTag"] = self.parent_id_tag
        return out


def _evse_usable(desired: m.DesiredState, e: EffectiveEvse, key: str,
                 reservations: Mapping[int, str]) -> tuple[bool, str]:
    if e.availability != "operative":
        return False, f"EVSE {e.id} is inoperative"
    if not may_use(desired, e.access, key):
        return False, f"access to EVSE {e.id} is restricted to {', '.join(e.access.groups)}"
    holder = reservations.get(e.id) or reservations.get(0)
    if holder is not None and holder != key:
        return False, f"EVSE {e.id} is reserved for another card"
    policy = desired.reservation_policies.get(e.reservation_policy or "")
    if policy is not None and policy.reservation_only and holder != key:
        return False, f"EVSE {e.id} can only be used with a reservation"
    return True, ""


def decide(desired: m.DesiredState, eff: EffectiveStation | None, id_tag: str, now: dt.datetime, *,
           connector_id: int | None = None, active_sessions: int = 0,
           reservations: Mapping[int, str] | None = None,
           cache_horizon: dt.timedelta = DEFAULT_CACHE_HORIZON, tz: dt.tzinfo = dt.UTC) -> IdTagInfo:
    """Decide an idTag at a station (and connector, when known).

    `reservations`: connector -> holder (upper-case idTag); `tz`: the owner's time zone, in which a card's
    validUntil date is read (valid through the end of that day).
    """
    key = id_tag.upper()
    if eff is None or not eff.operative:
        return IdTagInfo(INVALID, reason="station is not activated")
    card = desired.cards.get(key)
    if card is None:
        return IdTagInfo(INVALID, reason="unknown card")
    status = card_status(card, now.astimezone(tz).date())
    if status == BLOCKED:
        return IdTagInfo(BLOCKED, parent_id_tag=card.group, reason="card is blocked")
    if status == EXPIRED:
        return IdTagInfo(EXPIRED, parent_id_tag=card.group, reason="card has expired")
    held = reservations or {}
    evses = [e for e in eff.evses if connector_id in (None, 0) or e.id == connector_id]
    if connector_id not in (None, 0) and not evses:
        return IdTagInfo(INVALID, parent_id_tag=card.group, reason=f"no EVSE {connector_id} at this station")
    reasons = []
    for e in evses:
        ok, why = _evse_usable(desired, e, key, held)
        if ok:
            break
        reasons.append(why)
    else:
        return IdTagInfo(INVALID, parent_id_tag=card.group, reason="; ".join(reasons) or "no EVSE")
    limit = max((desired.groups[g].max_concurrent_sessions for g in desired.card_groups.get(key, ())
                 if g in desired.groups), default=1)
    if active_sessions >= limit:
        return IdTagInfo(CONCURRENT, parent_id_tag=card.group, reason=f"{active_sessions} session(s) running")
    expiry = now + cache_horizon
    if card.valid_until is not None:
        end_of_validity = dt.datetime.combine(card.valid_until + dt.timedelta(days=1), dt.time(), tzinfo=tz)
        expiry = min(expiry, end_of_validity)
    return IdTagInfo(ACCEPTED, expiry_date=expiry, parent_id_tag=card.group)
