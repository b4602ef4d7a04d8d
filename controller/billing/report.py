"""The billing report of a period: what the owner earned, item by item, and the payout due.

Items, each booked in the period [from, to):
- sessions: every transaction whose billing record was first booked in the period (a late offline
  session lands in the period it was delivered in, with its own charger dates), at its latest version
  (final, or still provisional while the cable is in); the amount is the record's total (tax included);
- reservation fees: reservations that ended in the period (updated then) as `used` or `expired`, at the
  `fee` of the policy JSON they were made under; no-show fees: the `expired` ones, at its `noShowFee`.
  A policy stored as a plain name carries no fee information and counts 0;
- adjustments (corrections, refunds) created in the period.

Totals: sessions (count, energy, net, tax, total), per station and per driver group (the driver's own
group, "-" without one), under review and provisional counts; gross = sessions + reservation fees +
no-show fees; platform fee = the owner's platformFeePercent of the gross, rounded once to the minor
unit; payout due = gross - platform fee + adjustments. Every total is the sum of the items listed.
Amounts are `Decimal`, written as decimal strings; one currency per report.

Boundary: pure; store rows in, a JSON-ready dict out, rendered as JSON or CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from controller.hw.ocppj import format_datetime
from controller.pricing.money import minor_unit, round_money
from controller.store.billing_records import BillingAdjustment, BillingRow
from controller.store.records import ReservationRecord, ReservationStatus
from controller.store.redact import mask_id_tag

from .records import body_of, latest

CSV_COLUMNS = ("kind", "id", "transaction_id", "booked_at", "station", "evse", "group", "card", "driver", "start",
               "stop", "energy_wh", "net", "tax", "amount", "currency", "status", "note")


class ReportError(Exception):
    """The report cannot be made as asked (e.g. records in several currencies)."""


def _money(v: object) -> Decimal:
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return Decimal(0)
    return d if d.is_finite() else Decimal(0)


def policy_fees(policy: str) -> tuple[Decimal, Decimal, bool]:
    """(fee, no-show fee, known) from a reservation's policy column: JSON with fee / noShowFee, or a name."""
    try:
        data = json.loads(policy)
    except (ValueError, TypeError):
        return Decimal(0), Decimal(0), False
    if not isinstance(data, Mapping):
        return Decimal(0), Decimal(0), False
    fee = data.get("fee", 0)
    no_show = data.get("noShowFee", data.get("no_show_fee", 0))
    return _money(fee or 0), _money(no_show or 0), True


def _blank() -> dict[str, Any]:
    return {"sessions": 0, "energyWh": Decimal(0), "net": Decimal(0), "tax": Decimal(0), "total": Decimal(0)}


def _add(acc: dict[str, Any], energy: Decimal, net: Decimal, tax: Decimal, total: Decimal) -> None:
    acc["sessions"] += 1
    acc["energyWh"] += energy
    acc["net"] += net
    acc["tax"] += tax
    acc["total"] += total


def build_report(*, period_from: dt.datetime, period_to: dt.datetime, currency: str, platform_fee_percent: Decimal,
                 records: Sequence[BillingRow], adjustments: Sequence[BillingAdjustment],
                 reservations: Sequence[ReservationRecord]) -> dict[str, Any]:
    """The report (see the module doc); `records` may hold every version, the latest counts."""
    current = sorted(latest(records).values(), key=lambda r: r.transaction_id)
    currencies = {r.currency for r in current} | {a.currency for a in adjustments}
    if currencies - {currency}:
        raise ReportError(f"records in {', '.join(sorted(currencies))}: one report per currency "
                          f"(this one is in {currency})")
    unit = minor_unit(currency)
    sessions: list[dict[str, Any]] = []
    by_station: dict[str, dict[str, Any]] = {}
    by_group: dict[str, dict[str, Any]] = {}
    totals = _blank()
    review = provisional = 0
    for r in current:
        body = body_of(r)
        energy, net, tax, total = _money(body.get("energyWh", 0)), _money(r.net), _money(r.tax), _money(r.total)
        _add(totals, energy, net, tax, total)
        _add(by_station.setdefault(r.station, _blank()), energy, net, tax, total)
        _add(by_group.setdefault(r.group or "-", _blank()), energy, net, tax, total)
        review += r.under_review
        provisional += not r.final
        sessions.append({
            "transactionId": r.transaction_id, "version": r.version, "bookedAt": format_datetime(r.booked_at),
            "station": r.station, "evse": r.connector_id, "group": r.group, "card": r.card, "driver": r.driver_id,
            "start": body.get("start"), "stop": body.get("stop"), "energyWh": energy, "net": net, "tax": tax,
            "total": total, "tariffVersion": body.get("tariffVersion"), "final": r.final,
            "underReview": r.under_review, "anomalies": body.get("anomalies", []), "lines": body.get("lines", []),
        })
    fees: list[dict[str, Any]] = []
    no_shows: list[dict[str, Any]] = []
    for res in sorted(reservations, key=lambda x: x.id):
        if res.status not in (ReservationStatus.USED, ReservationStatus.EXPIRED):
            continue
        if not period_from <= res.updated_at < period_to:
            continue
        fee, no_show, known = policy_fees(res.policy)
        item = {"reservationId": res.id, "station": res.station, "evse": res.connector_id,
                "card": mask_id_tag(res.id_tag), "endedAt": format_datetime(res.updated_at),
                "status": str(res.status), "feeInfo": known}
        fees.append({**item, "amount": fee})
        if res.status is ReservationStatus.EXPIRED:
            no_shows.append({**item, "amount": no_show})
    adj_items: list[dict[str, Any]] = [
        {"id": a.id, "transactionId": a.transaction_id, "createdAt": format_datetime(a.created_at),
         "amount": _money(a.amount), "reason": a.reason, "by": a.created_by} for a in adjustments]
    fee_sum = sum((f["amount"] for f in fees), Decimal(0))
    no_show_sum = sum((f["amount"] for f in no_shows), Decimal(0))
    adj_sum = sum((a["amount"] for a in adj_items), Decimal(0))
    gross = totals["total"] + fee_sum + no_show_sum
    platform_fee = round_money(gross * platform_fee_percent / 100, unit)
    return {
        "period": {"from": format_datetime(period_from), "to": format_datetime(period_to)},
        "currency": currency, "sessions": sessions, "reservationFees": fees, "noShowFees": no_shows,
        "adjustments": adj_items, "byStation": dict(sorted(by_station.items())),
        "byGroup": dict(sorted(by_group.items())),
        "totals": {
            **totals, "underReview": review, "provisional": provisional,
            "reservationFees": {"count": len(fees), "amount": fee_sum},
            "noShowFees": {"count": len(no_shows), "amount": no_show_sum},
            "adjustments": {"count": len(adj_items), "amount": adj_sum},
            "gross": gross, "platformFeePercent": platform_fee_percent, "platformFee": platform_fee,
            "payout": gross - platform_fee + adj_sum,
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(_plain(report), indent=2, ensure_ascii=False) + "\n"


def render_csv(report: Mapping[str, Any]) -> str:
    """One row per item, then one per station, per group and per total; amounts in the `amount` column."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    cur = report["currency"]
    for s in report["sessions"]:
        status = ("final" if s["final"] else "provisional") + (" under-review" if s["underReview"] else "")
        w.writerow({"kind": "session", "id": s["transactionId"], "transaction_id": s["transactionId"],
                    "booked_at": s["bookedAt"], "station": s["station"], "evse": s["evse"], "group": s["group"],
                    "card": s["card"], "driver": s["driver"], "start": s["start"], "stop": s["stop"],
                    "energy_wh": s["energyWh"], "net": s["net"], "tax": s["tax"], "amount": s["total"],
                    "currency": cur, "status": status, "note": "; ".join(s["anomalies"])})
    for kind, items in (("reservation_fee", report["reservationFees"]), ("no_show_fee", report["noShowFees"])):
        for f in items:
            w.writerow({"kind": kind, "id": f["reservationId"], "booked_at": f["endedAt"], "station": f["station"],
                        "evse": f["evse"], "card": f["card"], "amount": f["amount"], "currency": cur,
                        "status": f["status"], "note": "" if f["feeInfo"] else "no fee information"})
    for a in report["adjustments"]:
        w.writerow({"kind": "adjustment", "id": a["id"], "transaction_id": a["transactionId"],
                    "booked_at": a["createdAt"], "amount": a["amount"], "currency": cur, "note": a["reason"]})
    for kind, key, table in (("station_total", "station", report["byStation"]),
                             ("group_total", "group", report["byGroup"])):
        for name, t in table.items():
            w.writerow({"kind": kind, key: name, "id": t["sessions"], "energy_wh": t["energyWh"], "net": t["net"],
                        "tax": t["tax"], "amount": t["total"], "currency": cur})
    t = report["totals"]
    for name, amount in (("sessions", t["total"]), ("tax", t["tax"]),
                         ("reservation_fees", t["reservationFees"]["amount"]),
                         ("no_show_fees", t["noShowFees"]["amount"]), ("adjustments", t["adjustments"]["amount"]),
                         ("gross", t["gross"]), ("platform_fee", t["platformFee"]), ("payout", t["payout"])):
        w.writerow({"kind": "total", "id": name, "amount": amount, "currency": cur,
                    "energy_wh": t["energyWh"] if name == "sessions" else "",
                    "net": t["net"] if name == "sessions" else ""})
    return out.getvalue()
