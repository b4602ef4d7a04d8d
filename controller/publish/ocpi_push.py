"""OCPI 2.2.1 push: the PUT / PATCH requests that bring a partner's Locations Receiver up to date.

Role: diff two publications (`ocpi.build_locations` results, by Location id) into requests, computed first
and sent by the HTTP client elsewhere (OCPI asks not to queue or retry a failed push: the partner catches up
with a GET on our Sender interface).

Rules (Receiver URL ``{locations}/{country_code}/{party_id}/{location_id}[/{evse_uid}]``, the country code
and party id being the Location's own):

- a new Location, or one whose own fields changed -> PUT of the whole Location;
- otherwise per EVSE: new -> PUT of the EVSE; only ``status`` changed (the common case, REMOVED included)
  -> PATCH ``{"status", "last_updated"}`` (a PATCH always carries ``last_updated``); anything else -> PUT
  of the EVSE with its Connectors;
- unchanged objects (``last_updated`` aside) -> nothing.

Boundary: pure; no HTTP client.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import quote

from .ocpi import Obj, strip_timestamps


@dataclasses.dataclass(frozen=True, slots=True)
class PushRequest:
    method: str  # PUT | PATCH
    url: str
    body: Obj


def _url(base: str, loc: Obj, evse_uid: str | None = None) -> str:
    parts = [loc["country_code"], loc["party_id"], loc["id"], *([evse_uid] if evse_uid is not None else [])]
    return base.rstrip("/") + "".join("/" + quote(str(p), safe="") for p in parts)


def _own(loc: Obj) -> Obj:
    return strip_timestamps({k: v for k, v in loc.items() if k != "evses"})


def push_requests(previous: Mapping[str, Obj], current: Mapping[str, Obj], *, receiver_url: str) -> list[PushRequest]:
    """The requests that turn what the partner got last time (`previous`) into `current`, in id order."""
    out: list[PushRequest] = []
    for loc_id in sorted(current):
        loc, before = current[loc_id], previous.get(loc_id)
        if before is None or _own(before) != _own(loc):
            out.append(PushRequest("PUT", _url(receiver_url, loc), loc))
            continue
        old = {str(e["uid"]).upper(): e for e in before.get("evses", ())}
        for evse in loc.get("evses", ()):
            prev = old.get(str(evse["uid"]).upper())
            if prev is not None and strip_timestamps(prev) == strip_timestamps(evse):
                continue
            url = _url(receiver_url, loc, str(evse["uid"]))
            if prev is not None and strip_timestamps({**prev, "status": evse["status"]}) == strip_timestamps(evse):
                out.append(PushRequest("PATCH", url, {"status": evse["status"], "last_updated": evse["last_updated"]}))
            else:
                out.append(PushRequest("PUT", url, evse))
    return out
