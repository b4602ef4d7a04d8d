"""Reservations at run time: drivers book an EVSE through the controller's API, the controller holds it
at the charger (ReserveNow) from the booked start minus the policy's buffer, and ends the booking when the
holder starts charging, at the no-show deadline, or on cancel.

Modules: ``rules`` (pure: the policy checks, where a booking goes, what a reservation needs next),
``scheduler`` (the imperative shell: store, ReserveNow / CancelReservation, re-sends after a boot or a
reconnect), ``api`` (the HTTP routes), ``register`` (plugs the feature into the controller; imported by
``controller.runtime.features``).

The life of a reservation (its store status):

    scheduled --(start - bufferMinutes)--> requested --ReserveNow Accepted--> accepted --StartTransaction--> used
        |                                      |                                 |
        |                                      +-- every EVSE refused ---------> rejected (failure says why)
        +-------- cancel (API, or the station stops being reservable) ---------> cancelled
                                                                                  accepted --deadline--> expired

The no-show deadline is ``start + min(graceMinutes, durationMinutes)``: the holder must begin charging by
then. The charger is told that deadline as the reservation's expiryDate, so it frees the EVSE by itself
even while offline. An ``expired`` reservation is always a no-show (billing charges the noShowFee from its
policy terms; the audit log also gets a ``ReservationNoShow`` with the fee); a hold the charger never
confirmed ends ``rejected`` instead, never as a no-show. The booked slot ``[start, start + durationMinutes)``, plus
the buffer before it, is what no other reservation of the same EVSE may overlap.

Boundary: everything reservation-specific; the OCPP handlers (``controller.hw.handlers``) mark a
reservation used and refuse other cards while one holds an EVSE (``controller.authorize``), and the
reservations reconciler cancels reservations on an EVSE that stops being reservable.
"""
