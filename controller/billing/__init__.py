"""Flex Billing and the drivers' price messages: money recorded, never moved (DESIGN.md §1).

- `history`: tariff history by time (what each taken revision declared; the revision in force at an
  instant), recorded by the controller whenever it takes a revision.
- `session`: a stored transaction priced with the cost engine (`controller.pricing`).
- `records`: the immutable billing record versions built from a priced session.
- `listener`: `BillingListener`, records at StopTransaction (before the answer) and final at unplug.
- `costmsg`: `CostMessages`, California Pricing SetUserPrice / RunningCost / FinalCost.
- `report`: the billing report (per station, per group, fees, adjustments, platform fee, payout).
- `cli`: `chargeops billing report|adjust` and `chargeops forget`.
- `feature`: registration with the controller (imported by `controller.runtime.features`).

Boundary: nothing here moves money or talks to a payment provider; exports are CSV and JSON.
"""
