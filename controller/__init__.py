"""chargeops: a GitOps controller for EV charging stations.

Packages by role (DESIGN.md §2):

- ``controller.config``      owner repository -> validated, frozen desired state (pure; no network imports)
- ``controller.reconcilers`` pure planners: desired x observed x now -> actions
- ``controller.hw``          OCPP 1.6J server, charger port and simulator (the imperative shell)
"""

__version__ = "0.1.0"
