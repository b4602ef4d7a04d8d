"""Safety for destructive commits: mass removals are held until confirmed, everything else applies.

A revision that removes more than `safety.maxRemovalPercent` of the stations or of the cards of the
revision in force has ONLY those removals held: the desired state used keeps the removed stations and
cards (as they were), while every other change of the commit — an urgent card block included — applies
at once. Confirming the revision (recorded with its SHA) releases the removals.

Removing a station never resets the physical charger: a removed station is made inert (see the
activation reconciler), it is not wiped.

Boundary: pure; two desired states in, the desired state to apply and what is held out.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from controller.config.model import DesiredState


@dataclasses.dataclass(frozen=True)
class Held:
    revision: str
    stations: tuple[str, ...]  # identities whose removal is held
    cards: int  # number of cards whose removal is held
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"revision": self.revision, "stations": list(self.stations), "cards": self.cards,
                "reason": self.reason}


def guard(previous: DesiredState | None, new: DesiredState, confirmed: bool) -> tuple[DesiredState, Held | None]:
    if previous is None or confirmed:
        return new, None
    limit = new.owner.safety.max_removal_percent
    gone_stations = [s for n, s in previous.stations.items() if n not in new.stations]
    gone_cards = [k for k in previous.cards if k not in new.cards]
    too_many_stations = _share(len(gone_stations), len(previous.stations)) > limit
    too_many_cards = _share(len(gone_cards), len(previous.cards)) > limit
    if not (too_many_stations or too_many_cards):
        return new, None
    stations = dict(new.stations)
    held_stations: list[str] = []
    if too_many_stations:
        for s in gone_stations:
            stations[s.name] = s
            held_stations.append(s.identity)
    cards = dict(new.cards)
    groups = dict(new.groups)
    held_cards = 0
    if too_many_cards:
        for k in gone_cards:
            card = previous.cards[k]
            cards[k] = card
            held_cards += 1
            if card.group not in groups and card.group in previous.groups:
                groups[card.group] = previous.groups[card.group]
    what = []
    if held_stations:
        what.append(f"{len(held_stations)} of {len(previous.stations)} stations")
    if held_cards:
        what.append(f"{held_cards} of {len(previous.cards)} cards")
    reason = (f"revision {new.revision} removes {' and '.join(what)} (more than {limit}%): those removals are "
              "held until the revision is confirmed; everything else in it applies")
    kept = dataclasses.replace(new, stations=stations, cards=cards, groups=groups)
    return kept, Held(new.revision, tuple(sorted(held_stations)), held_cards, reason)


def _share(part: int, whole: int) -> Decimal:
    return Decimal(0) if whole == 0 else Decimal(part) * 100 / whole
