"""Charging sessions on a simulated charger: cable, cards, authorization, meter, reservations, availability.

Role: the physical and session behaviour of a 1.6 charge point. A card starts a session on a connector
(before or after the cable goes in, within ConnectionTimeOut), stops its own session, and is authorized
online with Authorize (or from the local list / cache first when LocalPreAuthorize), offline from the
local list then the cache when LocalAuthorizeOffline, or accepted when unknown if
AllowOfflineTxForUnknownId. Start/Stop/MeterValues go through the charger's transaction queue, so
sessions made offline are delivered late. Boundary: state changes and queueing only; the charger
(``sim.charger``) sends, the handlers (``sim.handlers``) translate the central system's calls.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp.v16.enums import AvailabilityStatus, ReservationStatus, UnlockStatus

from controller.hw.errors import ChargerRejected, ChargerUnavailable
from controller.hw.sim.connectors import Connector, PendingAuthorization, QueuedMessage, Reservation, Transaction

if TYPE_CHECKING:
    from controller.hw.sim.charger import SimulatedCharger

ACCEPTED = "Accepted"
_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
    "SoC": "Percent",
}


class Sessions:
    def __init__(self, charger: SimulatedCharger) -> None:
        self.cp = charger
        self._meters: dict[int, asyncio.Task[None]] = {}

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def _chargeable(self) -> list[Connector]:
        return [c for cid, c in sorted(self.cp.connectors.items()) if cid > 0]

    def _reservation(self, connector: Connector) -> Reservation | None:
        return connector.reservation or self.cp.connectors[0].reservation

    # ---------------------------------------------------------------------------- physical events

    async def plug_in(self, connector_id: int = 1) -> None:
        connector = self.cp.connector(connector_id)
        if connector.plugged:
            return
        connector.plugged = True
        connector.finishing = False
        auth = connector.authorization
        if auth is not None and connector.idle:
            if self._loop_time() <= auth.deadline:
                self.start(connector, auth.id_tag, auth.reservation_id)
                return
            connector.authorization = None
        self.cp.status_changed(connector)

    async def unplug(self, connector_id: int = 1) -> None:
        connector = self.cp.connector(connector_id)
        if not connector.plugged:
            return
        connector.plugged = False
        if connector.transaction is not None and self.cp.config.get_bool("StopTransactionOnEVSideDisconnect", True):
            self.stop(connector, "EVDisconnected")
        connector.finishing = False
        self.cp.status_changed(connector)

    def set_faulted(self, connector_id: int, faulted: bool = True) -> None:
        connector = self.cp.connector(connector_id)
        connector.faulted = faulted
        if faulted and connector.transaction is not None:
            self.stop(connector, "Other")
        self.cp.status_changed(connector)

    async def present_card(self, id_tag: str, connector_id: int | None = None) -> str:
        """A driver holds a card to the reader.

        Returns the AuthorizationStatus the charger applied, or ``Occupied`` (no connector free) or
        ``Reserved`` (the connector is reserved for someone else). Presenting the card of a running
        session stops it.
        """
        for connector in self._chargeable():
            tx = connector.transaction
            if tx is not None and tx.id_tag.upper() == id_tag.upper() and connector_id in (None, tx.connector_id):
                self.stop(connector, "Local")
                return ACCEPTED
        target = self._pick(id_tag, connector_id)
        if target is None:
            return "Occupied"
        info = await self.authorize(id_tag)
        status = str(info.get("status"))
        if status != ACCEPTED:
            return status
        parent = info.get("parentIdTag") if isinstance(info.get("parentIdTag"), str) else None
        reservation = self._reservation(target)
        if reservation is not None and not reservation.matches(id_tag, parent):
            return "Reserved"
        self._authorize_connector(target, id_tag, parent, reservation)
        return ACCEPTED

    def _pick(self, id_tag: str, connector_id: int | None) -> Connector | None:
        if connector_id is not None:
            connector = self.cp.connector(connector_id)
            return connector if connector.idle and connector.connector_id > 0 else None
        free = [c for c in self._chargeable() if c.idle and c.authorization is None]
        for connector in free:
            if connector.reservation is not None and connector.reservation.id_tag.upper() == id_tag.upper():
                return connector
        for connector in free:
            if connector.plugged:
                return connector
        for connector in free:
            if connector.reservation is None:
                return connector
        return free[0] if free else None

    def _authorize_connector(
        self, connector: Connector, id_tag: str, parent: str | None, reservation: Reservation | None
    ) -> None:
        timeout = self.cp.scaled(self.cp.config.get_int("ConnectionTimeOut", 60))
        connector.authorization = PendingAuthorization(
            id_tag, parent, self._loop_time() + timeout, reservation.reservation_id if reservation else None
        )
        if connector.plugged:
            self.start(connector, id_tag, connector.authorization.reservation_id)
            return
        self.cp.spawn(self._expire_authorization(connector, connector.authorization), timeout)
        self.cp.status_changed(connector)

    async def _expire_authorization(self, connector: Connector, auth: PendingAuthorization) -> None:
        if connector.authorization is auth:
            connector.authorization = None
            self.cp.status_changed(connector)

    async def authorize(self, id_tag: str) -> dict[str, Any]:
        """idTagInfo for a card: online Authorize, or the local list / cache rules."""
        cp, config, now = self.cp, self.cp.config, self.cp.now()
        local = (
            cp.local_list.lookup(id_tag)
            if cp.model.supports_local_list and config.get_bool("LocalAuthListEnabled", True)
            else None
        )
        cached = (
            cp.cache.lookup(id_tag)
            if cp.model.authorization_cache and config.get_bool("AuthorizationCacheEnabled", True)
            else None
        )
        if cp.online:
            if config.get_bool("LocalPreAuthorize"):
                for entry in (local, cached):
                    if entry is not None and entry.effective_status(now) == ACCEPTED:
                        return entry.to_payload(now)
            try:
                reply = await cp.send("Authorize", {"idTag": id_tag})
            except ChargerRejected:
                return {"status": "Invalid"}
            except ChargerUnavailable:
                pass  # went offline meanwhile: decide offline
            else:
                info = reply.get("idTagInfo")
                info = info if isinstance(info, dict) else {"status": "Invalid"}
                if cp.model.authorization_cache and config.get_bool("AuthorizationCacheEnabled", True):
                    cp.cache.put(id_tag, info)
                return info
        if config.get_bool("LocalAuthorizeOffline", True):
            for entry in (local, cached):
                if entry is not None:
                    return entry.to_payload(now)
        if local is None and cached is None and config.get_bool("AllowOfflineTxForUnknownId"):
            return {"status": ACCEPTED}
        return {"status": "Invalid"}

    # ---------------------------------------------------------------------------------- sessions

    def start(self, connector: Connector, id_tag: str, reservation_id: int | None) -> Transaction:
        cp = self.cp
        tx = Transaction(
            cp.new_ref(), connector.connector_id, id_tag, connector.meter_wh, cp.now(), reservation_id,
            offline=not cp.online,
        )
        connector.transaction = tx
        connector.authorization = None
        connector.finishing = False
        for holder in (connector, cp.connectors[0]):
            if holder.reservation is not None and holder.reservation.reservation_id == reservation_id:
                holder.reservation = None
                if holder is not connector:
                    cp.status_changed(holder)
        payload: dict[str, Any] = {
            "connectorId": connector.connector_id,
            "idTag": id_tag,
            "meterStart": connector.meter_wh,
            "timestamp": cp.timestamp(),
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        cp.enqueue("StartTransaction", payload, tx.local_ref)
        cp.transactions.append(tx)
        connector.meter_stamp = self._loop_time()
        self._meters[connector.connector_id] = cp.spawn(self._meter(connector, tx))
        cp.status_changed(connector)
        return tx

    def stop(self, connector: Connector, reason: str, id_tag: str | None = None) -> None:
        tx = connector.transaction
        if tx is None:
            return
        self.advance(connector)
        connector.transaction = None
        connector.finishing = connector.plugged
        meter = self._meters.pop(connector.connector_id, None)
        if meter is not None:
            meter.cancel()
        payload: dict[str, Any] = {
            "idTag": id_tag or tx.id_tag,
            "meterStop": connector.meter_wh,
            "timestamp": self.cp.timestamp(),
            "reason": reason,
        }
        stop_data = self.cp.config.get("StopTxnSampledData") or ""
        if stop_data.strip():
            payload["transactionData"] = [self.sample(connector, "Transaction.End", stop_data)]
        self.cp.enqueue("StopTransaction", payload, tx.local_ref)
        if connector.scheduled_operative is not None:
            connector.operative = connector.scheduled_operative
            connector.scheduled_operative = None
        self.cp.status_changed(connector)

    def stop_all(self, reason: str) -> None:
        for connector in self._chargeable():
            self.stop(connector, reason)

    def advance(self, connector: Connector) -> None:
        """Move the energy register on by the power drawn since the last look."""
        now = self._loop_time()
        if connector.transaction is not None and self.cp.time_scale > 0:
            hours = (now - connector.meter_stamp) / self.cp.time_scale / 3600
            energy = self.cp.model.max_power_w * hours + connector.meter_fraction
            connector.meter_wh += int(energy)
            connector.meter_fraction = energy - int(energy)
        connector.meter_stamp = now

    def sample(self, connector: Connector, context: str, measurands: str | None = None) -> dict[str, Any]:
        wanted = measurands or self.cp.config.get("MeterValuesSampledData") or "Energy.Active.Import.Register"
        charging = connector.transaction is not None
        power = self.cp.model.max_power_w if charging else 0
        values = {
            "Energy.Active.Import.Register": str(connector.meter_wh),
            "Power.Active.Import": str(power),
            "Current.Import": f"{power / 690:.1f}",
            "Voltage": "230",
            "SoC": "50",
        }
        sampled = []
        for raw in wanted.split(","):
            name = next((known for known in values if known.lower() == raw.strip().lower()), None)
            if name is not None:
                sampled.append(
                    {"value": values[name], "context": context, "format": "Raw", "measurand": name,
                     "location": "Outlet", "unit": _UNITS[name]}
                )
        return {"timestamp": self.cp.timestamp(), "sampledValue": sampled}

    async def _meter(self, connector: Connector, tx: Transaction) -> None:
        while connector.transaction is tx:
            interval = self.cp.config.get_int("MeterValueSampleInterval", 60)
            await asyncio.sleep(self.cp.scaled(interval if interval > 0 else 60))
            if connector.transaction is not tx:
                return
            self.advance(connector)
            if interval > 0:
                sample = self.sample(connector, "Sample.Periodic")
                payload = {"connectorId": connector.connector_id, "meterValue": [sample]}
                self.cp.enqueue("MeterValues", payload, tx.local_ref)

    def on_delivered(self, item: QueuedMessage, reply: dict[str, Any]) -> None:
        """A transaction message got its answer."""
        info = reply.get("idTagInfo")
        id_tag = item.payload.get("idTag")
        if isinstance(info, dict) and isinstance(id_tag, str) and self.cp.model.authorization_cache:
            self.cp.cache.put(id_tag, info)
        if item.action != "StartTransaction" or item.tx_ref is None:
            return
        tx_id = reply.get("transactionId")
        if isinstance(tx_id, int) and not isinstance(tx_id, bool):
            self.cp.assign_transaction_id(item.tx_ref, tx_id)
            for session in self.cp.transactions:
                if session.local_ref == item.tx_ref:
                    session.transaction_id = tx_id
        if isinstance(info, dict) and info.get("status") != ACCEPTED:
            for connector in self._chargeable():
                tx = connector.transaction
                if tx is not None and tx.local_ref == item.tx_ref and self.cp.config.get_bool(
                    "StopTransactionOnInvalidId", True
                ):
                    self.stop(connector, "DeAuthorized")

    # ----------------------------------------------------------- the central system's requests

    def remote_start(self, id_tag: str, connector_id: int | None) -> bool:
        if connector_id is not None:
            if connector_id < 1 or connector_id not in self.cp.connectors:
                return False
            target: Connector | None = self.cp.connectors[connector_id]
        else:
            target = self._pick(id_tag, None)
        if target is None or not target.idle or target.authorization is not None:
            return False
        reservation = self._reservation(target)
        if reservation is not None and not reservation.matches(id_tag, None):
            return False
        self.cp.spawn(self._remote_start(target, id_tag, reservation), delay=0.01)
        return True

    async def _remote_start(self, connector: Connector, id_tag: str, reservation: Reservation | None) -> None:
        parent = None
        if self.cp.config.get_bool("AuthorizeRemoteTxRequests"):
            info = await self.authorize(id_tag)
            if info.get("status") != ACCEPTED:
                return
            parent = info.get("parentIdTag") if isinstance(info.get("parentIdTag"), str) else None
        if connector.idle and connector.authorization is None:
            self._authorize_connector(connector, id_tag, parent, reservation)

    def remote_stop(self, transaction_id: int) -> bool:
        for connector in self._chargeable():
            tx = connector.transaction
            if tx is not None and tx.transaction_id == transaction_id:
                self.cp.spawn(self._later_stop(connector, tx, "Remote"), delay=0.01)
                return True
        return False

    async def _later_stop(self, connector: Connector, tx: Transaction, reason: str) -> None:
        if connector.transaction is tx:
            self.stop(connector, reason)

    def unlock(self, connector_id: int) -> UnlockStatus:
        if connector_id < 1 or connector_id not in self.cp.connectors:
            return UnlockStatus.not_supported
        connector = self.cp.connectors[connector_id]
        if connector.transaction is not None:
            self.stop(connector, "UnlockCommand")
        connector.plugged = False
        connector.finishing = False
        self.cp.status_changed(connector)
        return UnlockStatus.unlocked

    def change_availability(self, connector_id: int, operative: bool) -> AvailabilityStatus:
        if connector_id not in self.cp.connectors:
            return AvailabilityStatus.rejected
        targets = list(self.cp.connectors.values()) if connector_id == 0 else [self.cp.connectors[connector_id]]
        scheduled = False
        for connector in targets:
            if connector.transaction is not None and not operative:
                connector.scheduled_operative = False
                scheduled = True
                continue
            connector.operative = operative
            connector.scheduled_operative = None
            self.cp.status_changed(connector)
        return AvailabilityStatus.scheduled if scheduled else AvailabilityStatus.accepted

    def reserve(
        self, connector_id: int, expiry: datetime, id_tag: str, parent: str | None, reservation_id: int
    ) -> ReservationStatus:
        cp = self.cp
        if not cp.model.reservations or connector_id not in cp.connectors or expiry <= cp.now():
            return ReservationStatus.rejected
        if connector_id == 0 and not cp.config.get_bool("ReserveConnectorZeroSupported"):
            return ReservationStatus.rejected
        connector = cp.connectors[connector_id]
        existing = next(
            (c for c in cp.connectors.values() if c.reservation and c.reservation.reservation_id == reservation_id),
            None,
        )
        if connector_id == 0:
            chargeable = self._chargeable()
            if all(c.faulted for c in chargeable):
                return ReservationStatus.faulted
            if not connector.operative:
                return ReservationStatus.unavailable
            if not any(c.idle and not c.plugged and c.authorization is None for c in chargeable):
                return ReservationStatus.occupied
        else:
            if connector.faulted:
                return ReservationStatus.faulted
            if not connector.operative:
                return ReservationStatus.unavailable
            if not connector.idle or connector.plugged or connector.authorization is not None:
                return ReservationStatus.occupied
        if connector.reservation is not None and connector.reservation.reservation_id != reservation_id:
            return ReservationStatus.occupied
        if existing is not None and existing is not connector:
            existing.reservation = None
            cp.status_changed(existing)
        reservation = Reservation(reservation_id, connector_id, id_tag, expiry, parent)
        connector.reservation = reservation
        cp.spawn(self._expire_reservation(connector, reservation), (expiry - cp.now()).total_seconds())
        cp.status_changed(connector)
        return ReservationStatus.accepted

    async def _expire_reservation(self, connector: Connector, reservation: Reservation) -> None:
        if connector.reservation is reservation:
            connector.reservation = None
            self.cp.status_changed(connector)

    def cancel_reservation(self, reservation_id: int) -> bool:
        for connector in self.cp.connectors.values():
            if connector.reservation is not None and connector.reservation.reservation_id == reservation_id:
                connector.reservation = None
                self.cp.status_changed(connector)
                return True
        return False
