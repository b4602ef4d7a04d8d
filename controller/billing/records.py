"""The billing record of a session: built from a priced session, immutable once stored.

A record version (`BillingRow`) carries the personal link apart (pseudonymous driver id, masked card:
the only fields forgetting a driver clears) and a canonical JSON body with everything else: station and
EVSE, start / stop / plug-out (charger times), energy, duration, charging and idle time, each price line
(component, window, quantity, unit price, amount), the min/max adjustment, net, tax, total, currency,
the tariff (name, version = name@revision, content hash), the git revision in force at the start, the
owner's platform fee, and `underReview` with the anomalies.

Versions: 1 at StopTransaction; when the idle fee runs until unplug and the cable is still in, version 1
is provisional and a final version 2 follows at unplug. A session that cannot be priced (no tariff:
free; an orphan stop; a pricing failure) gets a record with zero amounts, the orphan and the failure
under review: never an invented amount.

Boundary: pure; `PricedSession` in, `BillingRow` out, and reading bodies back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from controller.hw.ocppj import format_datetime
from controller.pricing.money import minor_unit
from controller.store.billing_records import BillingRow
from controller.store.codec import canonical_json
from controller.store.records import TransactionRecord
from controller.store.redact import mask_id_tag

from .session import PricedSession

PROVISIONAL_NOTE = "idle fee until unplug: provisional until the cable is unplugged"


def _seconds(d: dt.timedelta) -> float:
    return d.total_seconds()


def _zero(currency: str) -> str:
    return str(Decimal(0).quantize(minor_unit(currency)))


def build_row(s: PricedSession, *, version: int, booked_at: dt.datetime) -> BillingRow:
    """A record version of a priced session (see the module doc)."""
    tx, b = s.transaction, s.breakdown
    body: dict[str, Any] = {
        "transactionId": tx.id, "version": version, "station": tx.station, "evse": tx.connector_id,
        "group": s.group, "groups": list(s.groups),
        "start": format_datetime(s.start), "stop": format_datetime(s.stop),
        "plugOut": format_datetime(s.plug_out) if s.plug_out is not None else None,
        "durationSeconds": _seconds(s.stop - s.start) if s.stop >= s.start else 0.0,
        "energySource": s.energy.source,
        "tariff": s.tariff_name, "tariffVersion": None, "tariffHash": s.tariff_hash, "tariffSource": s.tariff_source,
        "gitRevision": s.in_force.revision if s.in_force is not None else tx.git_revision,
        "revisionTakenAt": format_datetime(s.in_force.taken_at) if s.in_force is not None else None,
        "platformFeePercent": str(s.billing.platform_fee_percent), "bookedAt": format_datetime(booked_at),
    }
    if s.tariff_name:
        body["tariffVersion"] = f"{s.tariff_name}@{body['gitRevision'] or 'unknown'}"
    if b is not None:
        body.update(b.as_dict())
        final = not b.provisional
    else:
        zero = _zero(s.currency)
        body.update({
            "currency": s.currency, "group": s.group, "lines": [], "subtotal": zero, "adjustment": zero,
            "adjustmentReason": None, "net": zero, "tax": zero, "total": zero, "taxRatePercent": "0",
            "pricesIncludeTax": s.billing.prices_include_tax, "energyWh": str(s.energy.wh),
            "chargingSeconds": 0.0, "idleSeconds": 0.0, "billedIdleSeconds": 0.0, "provisional": False,
            "underReview": bool(s.anomalies), "anomalies": list(s.anomalies),
        })
        final = True
    body["priceGroup"] = b.group if b is not None else None
    body["group"] = s.group
    body["final"] = final
    if not final:
        body["note"] = PROVISIONAL_NOTE
    return BillingRow(
        transaction_id=tx.id, version=version, final=final, booked_at=booked_at, station=tx.station,
        connector_id=tx.connector_id, driver_id=s.driver_id, card=s.card, group=s.group, currency=body["currency"],
        net=body["net"], tax=body["tax"], total=body["total"], under_review=bool(body["underReview"]),
        session_start=body["start"], body=canonical_json(body))


def failed_row(tx: TransactionRecord, *, version: int, booked_at: dt.datetime, currency: str,
               error: str) -> BillingRow:
    """A record for a session the engine could not price: zero amounts, under review (nothing invented)."""
    zero = _zero(currency)
    anomalies = [*tx.anomalies, f"could not be priced: {error}"]
    body = {"transactionId": tx.id, "version": version, "station": tx.station, "evse": tx.connector_id,
            "start": tx.start_timestamp, "stop": tx.stop_timestamp, "lines": [], "currency": currency,
            "subtotal": zero, "adjustment": zero, "net": zero, "tax": zero, "total": zero, "final": True,
            "underReview": True, "anomalies": anomalies, "bookedAt": format_datetime(booked_at)}
    id_tag = tx.id_tag or tx.stop_id_tag
    return BillingRow(transaction_id=tx.id, version=version, final=True, booked_at=booked_at, station=tx.station,
                      connector_id=tx.connector_id, driver_id=None, card=mask_id_tag(id_tag) if id_tag else None,
                      group=tx.parent_id_tag, currency=currency, net=zero, tax=zero, total=zero, under_review=True,
                      session_start=tx.start_timestamp, body=canonical_json(body))


def body_of(row: BillingRow) -> Mapping[str, Any]:
    loaded = json.loads(row.body)
    return loaded if isinstance(loaded, dict) else {}


def latest(rows: Sequence[BillingRow]) -> dict[int, BillingRow]:
    """The latest version of each transaction's record."""
    out: dict[int, BillingRow] = {}
    for r in rows:
        if r.transaction_id not in out or r.version > out[r.transaction_id].version:
            out[r.transaction_id] = r
    return out
