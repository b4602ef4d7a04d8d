"""Session features plugged into the controller: importing this module registers them.

Each feature module registers a listener factory (`controller.runtime.controller.LISTENER_FACTORIES`)
and/or API routes (`controller.runtime.api.EXTRA_ROUTES`) when imported. Add one import line per feature.

Boundary: registration only.
"""

from __future__ import annotations

from controller.billing import feature as _billing  # noqa: F401  (billing records, California Pricing messages)
from controller.reservations import register as _reservations  # noqa: F401  (booking API, ReserveNow scheduler)
