"""The imperative shell towards chargers: OCPP 1.6J over websockets (DESIGN.md §3).

Modules by role:

- ``errors``      the exception tree (temporary ``ChargerUnavailable`` vs permanent ``ChargerRejected``)
- ``ocppj``       OCPP-J framing: text <-> Call / CallResult / CallError, exact Decimal JSON (no I/O)
- ``connection``  ``OcppConnection``: one websocket's receive loop, handler dispatch, outgoing calls, limits
- ``port``        ``ChargerPort``: typed central-system -> charger calls over a connection
- ``server``      the central system's websocket server (handshake, authentication, handlers)
- ``simulator``   ``SimulatedCharger`` / ``Fleet`` / ``simulate_main`` (parts in ``sim/``)

The ``ocpp`` library is used for its enums and schemas only; its logger is kept at WARNING unless the
application configured it.
"""

import logging

_ocpp_logger = logging.getLogger("ocpp")
if _ocpp_logger.level == logging.NOTSET:
    _ocpp_logger.setLevel(logging.WARNING)
