"""Reconcilers: the pure core that turns desired x observed x now into a plan of OCPP actions.

One module per concern: `configuration` (ChangeConfiguration, read-back, deferred Reset), `access` (local
list, ClearCache), `availability`, `pricing` (California Pricing display), `reservations`, `activation`
(de-activated and removed stations); `planner` combines them per station in phase order, `render` shows
plans like `terraform plan`. Inputs: `config` desired state and `observed.ObservedStation`; outputs:
`actions.Plan` / `actions.Action`, plain data that serialises to JSON.

Boundary: pure; no asyncio, sockets, git, YAML or store imports. The runtime gathers the inputs, calls
`plan_station`, applies the actions and records the results.
"""

from .actions import Action, Change, Effects, Kind, Level, Note, Op, Phase, Plan
from .observed import ObservedKey, ObservedStation, PendingReboot, Refusal, observed_station, secret_digest
from .planner import PendingReservation, plan_removed_station, plan_station
from .render import render_plan

__all__ = [
    "Action",
    "Change",
    "Effects",
    "Kind",
    "Level",
    "Note",
    "ObservedKey",
    "ObservedStation",
    "Op",
    "PendingReboot",
    "PendingReservation",
    "Phase",
    "Plan",
    "Refusal",
    "observed_station",
    "plan_removed_station",
    "plan_station",
    "render_plan",
    "secret_digest",
]
