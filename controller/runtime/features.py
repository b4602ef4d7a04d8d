"""Session features plugged into the controller: importing this module registers them.

Each feature module registers a listener factory (`controller.runtime.controller.LISTENER_FACTORIES`)
and/or API routes (`controller.runtime.api.EXTRA_ROUTES`) when imported. Add one import line per feature.

Boundary: registration only.
"""

from __future__ import annotations

from controller.billing import feature as _billing  # noqa: F401  (billing records, California Pricing messages)
from controller.dashboard import routes as _dashboard  # noqa: F401  (the owner's web dashboard)
from controller.publish import routes as _publication  # noqa: F401  (GeoJSON feed, OCPI 2.2.1 CPO endpoints)
from controller.reservations import register as _reservations  # noqa: F401  (booking API, ReserveNow scheduler)
