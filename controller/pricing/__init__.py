"""The cost engine: what a charging session costs under a tariff.

- `energy`: session energy from meterStart/meterStop or the meter values, the cleaned register timeline,
  power readings.
- `activity`: charging time vs idle time from the connector status timeline and power readings.
- `windows`: a session split at tariff-window boundaries in the station's local wall-clock time.
- `money`: the currency's minor unit, rounding once, allocating the rounding remainder.
- `engine`: `price_session(tariff, billing, facts, tz) -> PriceBreakdown`.

Boundary: pure functions of their arguments (no asyncio, sockets, store or YAML); `Decimal` throughout.
The callers (transaction handling, billing records, California Pricing messages) gather the facts.
"""

from __future__ import annotations

from .activity import Activity, Period, StatusChange, activity
from .energy import EnergyResult, PowerReading, Reading, evse_max_power_kw, session_energy
from .engine import PriceBreakdown, PriceLine, SessionFacts, price_session, station_zone
from .windows import Segment, split, window_at

__all__ = [
    "Activity",
    "EnergyResult",
    "Period",
    "PowerReading",
    "PriceBreakdown",
    "PriceLine",
    "Reading",
    "Segment",
    "SessionFacts",
    "StatusChange",
    "activity",
    "evse_max_power_kw",
    "price_session",
    "session_energy",
    "split",
    "station_zone",
    "window_at",
]
