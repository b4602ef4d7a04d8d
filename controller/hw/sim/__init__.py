"""Parts of the charger simulator (see ``controller.hw.simulator`` for the public entry points).

- ``model``       what a charger is (ChargerModel, MODELS) and fault switches (Faults)
- ``config``      configuration keys and ChangeConfiguration semantics
- ``auth``        local authorization list and authorization cache
- ``connectors``  connector / session / reservation state and recorded calls
- ``sessions``    plug, card, authorization, meter values, reservations, availability
- ``handlers``    answers to the central system's calls
- ``charger``     SimulatedCharger: connection, boot, heartbeat, status, transaction queue, faults
- ``fleet``       Fleet: many chargers with bounded connect concurrency
- ``cli``         simulate_main (``chargeops simulate``)
"""
