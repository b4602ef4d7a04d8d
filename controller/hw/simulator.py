"""The charger simulator's public face: chargers that behave like real OCPP 1.6J hardware.

Role: re-export what tests, demos and ``chargeops simulate`` use; the parts live in
``controller.hw.sim``. Boundary: nothing here talks to the controller's internals, only to its
websocket endpoint, exactly as hardware does.

    async with SimulatedCharger("CP-1", "ws://localhost:9000/ocpp", password=key, time_scale=0.01) as cp:
        await cp.wait_online()
        await cp.plug_in(1)
        await cp.present_card("04A1B2C3")
"""

from controller.hw.sim.charger import SimulatedCharger
from controller.hw.sim.cli import simulate_main
from controller.hw.sim.connectors import DisplayMessage, ReceivedCall, SentCall
from controller.hw.sim.fleet import Fleet
from controller.hw.sim.model import MODELS, ChargerModel, Faults

__all__ = [
    "MODELS",
    "ChargerModel",
    "DisplayMessage",
    "Faults",
    "Fleet",
    "ReceivedCall",
    "SentCall",
    "SimulatedCharger",
    "simulate_main",
]
