"""`chargeops plan`: what a merge would change on which charger, without touching any charger.

CI never needs to reach the production controller: the observed state comes from the controller's
export (`GET /api/v1/observed`) or from a file saved from it. Output like Terraform's plan (human,
markdown for a PR comment, or JSON); exit 0 no changes, 2 changes, 1 error.

Boundary: read observed state, call the pure planners, render.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from controller.config.access import ListEntry
from controller.config.model import DesiredState
from controller.reconcilers import ObservedStation, Plan, plan_station, render_plan


class PlanInputError(Exception):
    pass


def load_observed(against: str, token: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
    if against.startswith(("http://", "https://")):
        url = against.rstrip("/") + "/api/v1/observed"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                data = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            raise PlanInputError(f"cannot read the observed state from {url}: {exc}") from exc
    else:
        try:
            data = json.loads(Path(against).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PlanInputError(f"cannot read the observed-state file {against}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("stations"), list):
        raise PlanInputError(f"{against} is not an observed-state export (no 'stations' list)")
    return data


def _entries(items: Any) -> tuple[ListEntry, ...]:
    return tuple(ListEntry(e["idTag"], e["status"], dt.date.fromisoformat(e["expiryDate"]) if e.get("expiryDate")
                           else None, e.get("parentIdTag")) for e in items)


def plans(desired: DesiredState, export: Mapping[str, Any], now: dt.datetime | None = None) -> list[Plan]:
    now = now or dt.datetime.now(dt.UTC)
    observed = {o.identity.upper(): o for o in (ObservedStation.from_dict(d) for d in export["stations"])}
    snapshots = {h: _entries(items) for h, items in (export.get("snapshots") or {}).items()}
    out = []
    for st in sorted(desired.stations.values(), key=lambda s: s.name):
        obs = observed.get(st.identity.upper())
        snap = snapshots.get(obs.local_list_hash) if obs is not None and obs.local_list_hash else None
        out.append(plan_station(desired, st.identity, obs, now, snapshot_entries=snap))
    for key, obs in sorted(observed.items()):
        if desired.station_for_identity(key) is None:
            out.append(plan_station(desired, obs.identity, obs, now))
    return out


def render(plan_list: list[Plan], fmt: Literal["human", "markdown", "json"]) -> str:
    return render_plan(plan_list, fmt)
