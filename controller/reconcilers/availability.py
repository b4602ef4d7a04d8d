"""Availability reconciler: declared operative / inoperative per EVSE -> ChangeAvailability.

OCPP 1.6 has connectors, not EVSEs: an EVSE's `id` is its connectorId, and connector 0 is the whole
station. Observed status `Unavailable` counts as inoperative, any other status (Faulted included) as
operative; an unknown status is only acted on to make a connector inoperative (the safe direction).

- A station that is not activated (or removed) is made Inoperative on connector 0 only (it persists across
  reboots); no per-EVSE messages, so the plan never holds both.
- A station made inoperative that is activated again gets connector 0 Operative first, then Inoperative
  for each EVSE declared inoperative (connector 0 re-opens them all).
- A ChangeAvailability answered Scheduled (a session runs) is pending until the session ends: it is not
  sent again while the declared type is the same; a note says so.

Boundary: pure; effective station + observed station in, a `Part` out.
"""

from __future__ import annotations

from controller.config.effective import EffectiveStation

from .actions import Action, Change, Effects, Kind, Part, Phase, deferred, info
from .observed import ObservedStation

UNAVAILABLE = "Unavailable"
OPERATIVE, INOPERATIVE = "Operative", "Inoperative"


def _current(status: str | None) -> str | None:
    if status is None:
        return None
    return INOPERATIVE if status == UNAVAILABLE else OPERATIVE


def change(observed: ObservedStation, connector: int, want: str, reason: str) -> Action:
    running = bool(observed.sessions) if connector == 0 else connector in observed.sessions
    cut = running and want == INOPERATIVE
    why = reason + ("; a session runs, so the charger applies it when the session ends (Scheduled)" if cut else "")
    return Action(Phase.AVAILABILITY, Kind.CHANGE_AVAILABILITY, {"connectorId": connector, "type": want},
                  why, Change(f"connector {connector} availability", _current(observed.connectors.get(connector)),
                              want),
                  effects=Effects(affects_running_session=cut))


def _scheduled(observed: ObservedStation, connector: int, want: str) -> Part | None:
    if observed.scheduled_availability.get(connector) == want:
        return Part(notes=(deferred(f"connector {connector}: {want} was answered Scheduled and applies when the "
                                    "running session ends; not sent again", f"connector {connector}"),))
    return None


def station_inoperative(observed: ObservedStation, reason: str) -> Part:
    """Connector 0 Inoperative, unless the charger already reports itself unavailable."""
    c0 = observed.connectors.get(0)
    others = [s for c, s in observed.connectors.items() if c != 0]
    if c0 == UNAVAILABLE or (c0 is None and others and all(s == UNAVAILABLE for s in others)):
        return Part(unchanged=1)
    pending = _scheduled(observed, 0, INOPERATIVE)
    if pending is not None:
        return pending
    return Part((change(observed, 0, INOPERATIVE, reason),))


def plan(eff: EffectiveStation, observed: ObservedStation) -> Part:
    if not eff.operative:
        return station_inoperative(observed, "the station is not activated: made inoperative "
                                             "(connector 0, persists across reboots)")
    out = Part()
    # Connector 0 re-opens a station left inoperative as a whole; not when every EVSE is meant to be
    # inoperative anyway (a charger may then report connector 0 Unavailable too: that is no reason to loop).
    reopen = (observed.connectors.get(0) == UNAVAILABLE and observed.scheduled_availability.get(0) != OPERATIVE
              and any(e.availability == "operative" for e in eff.evses))
    if reopen:
        out += Part((change(observed, 0, OPERATIVE, "the station is activated: operative again"),))
    for e in eff.evses:
        want = OPERATIVE if e.availability == "operative" else INOPERATIVE
        why = f"EVSE {e.id} is declared {e.availability}"
        if reopen:
            if want == INOPERATIVE:
                out += Part((change(observed, e.id, want, why),))
            continue
        pending = _scheduled(observed, e.id, want)
        if pending is not None:
            out += pending
            continue
        current = _current(observed.connectors.get(e.id))
        if current == want:
            out += Part(unchanged=1)
        elif current is None and want == OPERATIVE:
            out += Part(notes=(info(f"connector {e.id}: status not reported yet; availability not changed",
                                    f"connector {e.id}"),))
        else:
            out += Part((change(observed, e.id, want, why),))
    return out
