"""The billing report: every total is the sum of the items listed, the latest version of a record counts,
reservation policies are read defensively, and one report holds one currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from controller.billing.report import ReportError, build_report, policy_fees, render_csv
from controller.store.billing_records import BillingAdjustment, BillingRow
from controller.store.records import ReservationRecord, ReservationStatus

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=31)
D = Decimal


def row(tx: int, total: str, *, version: int = 1, station: str = "ST-1", group: str | None = "drivers",
        currency: str = "EUR", final: bool = True) -> BillingRow:
    return BillingRow(tx, version, final, T0 + dt.timedelta(hours=tx), station, 1, f"drv-{tx}", "****0001", group,
                      currency, total, "0.00", total, False, None, '{"energyWh":"1000"}')


def reservation(rid: int, status: ReservationStatus, policy: str) -> ReservationRecord:
    return ReservationRecord(rid, "o", "ST-1", 1, "CARD-0001", T0, status, policy, T0, T0 + dt.timedelta(days=1))


def test_policy_fees_are_read_from_json_and_a_plain_name_counts_zero() -> None:
    assert policy_fees('{"fee": "2.50", "noShowFee": 5}') == (D("2.50"), D(5), True)
    assert policy_fees("bays") == (D(0), D(0), False)
    assert policy_fees('["odd"]') == (D(0), D(0), False)
    assert policy_fees('{"fee": "not money"}') == (D(0), D(0), True)


def test_the_totals_are_the_sums_of_the_latest_records_fees_and_adjustments() -> None:
    records = [row(1, "5.00", final=False), row(1, "7.00", version=2), row(2, "3.00", station="ST-2", group=None)]
    adjustments = [BillingAdjustment(1, 1, "-1.00", "EUR", "refund", T0)]
    reservations = [reservation(1, ReservationStatus.USED, '{"fee":"2.00","noShowFee":"4.00"}'),
                    reservation(2, ReservationStatus.EXPIRED, '{"fee":"2.00","noShowFee":"4.00"}'),
                    reservation(3, ReservationStatus.CANCELLED, '{"fee":"2.00"}')]
    report = build_report(period_from=T0, period_to=T1, currency="EUR", platform_fee_percent=D("2.5"),
                          records=records, adjustments=adjustments, reservations=reservations)
    t = report["totals"]
    assert t["total"] == D("10.00") and t["sessions"] == 2 and t["provisional"] == 0
    assert report["byStation"]["ST-1"]["total"] == D("7.00") and report["byGroup"]["-"]["total"] == D("3.00")
    assert t["reservationFees"]["amount"] == D("4.00") and t["noShowFees"]["amount"] == D("4.00")
    assert t["gross"] == D("18.00") and t["platformFee"] == D("0.45") and t["payout"] == D("16.55")
    lines = render_csv(report).splitlines()
    assert lines[0].startswith("kind,id,transaction_id") and any(ln.startswith("total,payout,") for ln in lines)


def test_a_report_refuses_to_add_up_two_currencies() -> None:
    with pytest.raises(ReportError, match="one report per currency"):
        build_report(period_from=T0, period_to=T1, currency="EUR", platform_fee_percent=D(0),
                     records=[row(1, "1.00"), row(2, "1.00", currency="USD")], adjustments=[], reservations=[])
