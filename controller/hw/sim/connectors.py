"""The simulated charger's physical state: connectors, sessions, reservations, queued messages.

Role: plain state plus the one rule that derives a connector's OCPP status from it (Faulted, Charging,
Unavailable, Finishing, Preparing, Reserved, Available, in that order). Boundary: no I/O; the charger
reports status changes and moves messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ocpp.v16.enums import ChargePointStatus


@dataclass(slots=True)
class Transaction:
    local_ref: int  # the charger's own number, until the central system assigns a transactionId
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: datetime
    reservation_id: int | None = None
    transaction_id: int | None = None
    offline: bool = False  # started while the charger was offline


@dataclass(slots=True)
class Reservation:
    reservation_id: int
    connector_id: int
    id_tag: str
    expiry: datetime
    parent_id_tag: str | None = None

    def matches(self, id_tag: str, parent_id_tag: str | None) -> bool:
        if id_tag.upper() == self.id_tag.upper():
            return True
        return bool(self.parent_id_tag and parent_id_tag and self.parent_id_tag.upper() == parent_id_tag.upper())


@dataclass(slots=True)
class PendingAuthorization:
    """A card presented (or a remote start) waiting for the cable, until ``deadline`` (loop time)."""

    id_tag: str
    parent_id_tag: str | None
    deadline: float
    reservation_id: int | None = None


@dataclass(slots=True)
class Connector:
    connector_id: int
    operative: bool = True  # persisted across reboots (ChangeAvailability)
    scheduled_operative: bool | None = None  # ChangeAvailability Scheduled: applied when the session ends
    faulted: bool = False
    plugged: bool = False
    finishing: bool = False  # session ended, cable still in
    transaction: Transaction | None = None
    reservation: Reservation | None = None
    authorization: PendingAuthorization | None = None
    meter_wh: int = 0  # the energy register (persists: it is a meter)
    meter_fraction: float = 0.0
    meter_stamp: float = 0.0  # loop time the register was last advanced
    reported: str | None = None  # the last status the central system has acknowledged

    def status(self) -> ChargePointStatus:
        if self.faulted:
            return ChargePointStatus.faulted
        if self.transaction is not None:
            return ChargePointStatus.charging
        if not self.operative:
            return ChargePointStatus.unavailable
        if self.connector_id == 0:
            return ChargePointStatus.available
        if self.finishing and self.plugged:
            return ChargePointStatus.finishing
        if self.plugged or self.authorization is not None:
            return ChargePointStatus.preparing
        if self.reservation is not None:
            return ChargePointStatus.reserved
        return ChargePointStatus.available

    @property
    def idle(self) -> bool:
        """Free to start a session: operative, not faulted, no session, not finishing."""
        return self.operative and not self.faulted and self.transaction is None and not self.finishing


@dataclass(slots=True)
class QueuedMessage:
    """A transaction message waiting for delivery (kept across disconnects and reboots)."""

    action: str
    payload: dict[str, Any]
    tx_ref: int | None = None  # fill in the central system's transactionId for this local session
    attempts: int = 0
    queued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReceivedCall:
    """A call the charger received from the central system."""

    action: str
    payload: dict[str, Any]
    message_id: str
    at: datetime


@dataclass(slots=True)
class SentCall:
    """A call the charger made, with the answer it got (payload) or the error (text)."""

    action: str
    payload: dict[str, Any]
    reply: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DisplayMessage:
    """What the charger's screen was told to show (California Pricing)."""

    kind: str  # DefaultPrice, SetUserPrice, RunningCost, FinalCost
    content: Any
    at: datetime
    extra: dict[str, Any] = field(default_factory=dict)
