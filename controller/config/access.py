"""Who may charge where: card status, group membership and the local authorization list, from config.

Pure decisions shared by the validator's `render`, the OCPP Authorize handler and the access reconciler,
so that online and offline authorization can never disagree. idTags are matched on their upper-case
form (OCPP CiString20).

Boundary: pure; desired state + date in, statuses and list entries out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from . import model as m
from .effective import EffectiveStation

ACCEPTED, BLOCKED, EXPIRED, INVALID, CONCURRENT = "Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"


@dataclasses.dataclass(frozen=True, slots=True)
class ListEntry:
    """One local authorization list entry (idTagInfo of SendLocalList)."""

    id_tag: str
    status: str
    expiry_date: dt.date | None
    parent_id_tag: str | None


def card_status(card: m.Card, today: dt.date) -> str:
    if card.blocked:
        return BLOCKED
    if card.valid_until is not None and card.valid_until < today:
        return EXPIRED
    return ACCEPTED


def may_use(desired: m.DesiredState, access: m.Access, key: str) -> bool:
    """Whether the card (upper-case idTag) is allowed by an access rule (before status checks)."""
    if key not in desired.cards:
        return False
    if not access.restricted:
        return True
    groups = desired.card_groups.get(key, frozenset())
    return any(g in groups for g in access.groups)


def local_list(desired: m.DesiredState, eff: EffectiveStation, today: dt.date) -> tuple[ListEntry, ...]:
    """The station's local list: every card allowed on at least one EVSE, plus blocked cards in scope.

    Order is deterministic and says what goes first when the charger's capacity is too small: blocked
    cards (so a revoked card can never be let in offline), then accepted cards by idTag, then expired ones.
    Empty when offline authorization is off.
    """
    if not eff.offline_authorization:
        return ()
    rules = {e.access for e in eff.evses}
    public = any(not r.restricted for r in rules)
    if public:
        keys: Sequence[str] = list(desired.cards)
    else:
        scope: set[str] = set()
        for r in rules:
            for g in r.groups:
                scope |= desired.group_members.get(g, frozenset())
        keys = list(scope)
    rank = {BLOCKED: 0, ACCEPTED: 1, EXPIRED: 2}
    entries = []
    for key in keys:
        card = desired.cards[key]
        status = card_status(card, today)
        entries.append(ListEntry(card.id_tag, status, card.valid_until if status == ACCEPTED else None,
                                 card.group))
    entries.sort(key=lambda e: (rank[e.status], e.id_tag.upper()))
    return tuple(entries)
