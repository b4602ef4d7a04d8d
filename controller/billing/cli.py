"""`chargeops billing report|adjust` and `chargeops forget`: billing and personal data from the store.

All three work on the store file alone (`--db`), safely while the controller runs (SQLite WAL). The
owner's terms (time zone, currency, platform fee, personal-data retention) come from the newest
revision in the store's tariff history; a database holding several owners needs `--owner`.

- `billing report --from DATE --to DATE [--format csv|json]`: dates are days in the owner's time zone,
  both included (or ISO instants, `--to` then excluded); see `report` for what is in it.
- `billing adjust --transaction ID --amount -3.00 --reason TEXT`: appends an adjustment (a correction
  or a refund) to a billed session; amounts in the record's currency, at most its minor unit, and a
  session never goes below zero.
- `forget DRIVER [--id-tag TAG] [--force]`: clears the driver's personal link (driver id, idTags) from
  sessions that ended more than personalDataDays ago, keeping every amount; refuses, naming them, the
  sessions still inside the retention period unless `--force`.

Exit codes: 0 done, 1 refused or failed (the message says why).

Boundary: argument handling, store access and output; the report itself is `report.build_report`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import zoneinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # the machinery is imported when a command runs: building the parser stays cheap
    from controller.billing.history import OwnerTerms
    from controller.store.sqlite import SqliteStore

DEFAULT_RETENTION_DAYS = 400


class CliError(Exception):
    """A refusal or a problem to report to the operator (exit code 1)."""


async def _open(db: str, owner: str | None) -> SqliteStore:
    from controller.store.sqlite import SqliteStore

    if not Path(db).exists():
        raise CliError(f"no database at {db}")
    store = await SqliteStore.open(db, owner="-")
    try:
        owners = await store.known_owners()
    except BaseException:
        await store.close()
        raise
    if owner is None:
        if len(owners) != 1:
            await store.close()
            raise CliError(f"{db} holds {'no owner' if not owners else 'owners ' + ', '.join(owners)}:"
                           " name one with --owner")
        owner = owners[0]
    return store.for_owner(owner)


async def _terms(store: SqliteStore) -> OwnerTerms | None:
    from controller.billing.history import resolve

    rev = await store.latest_tariff_revision()
    return resolve(rev).owner if rev is not None else None


def _zone(terms: OwnerTerms | None) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(terms.timezone) if terms is not None else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def parse_bound(text: str, tz: dt.tzinfo, *, end: bool) -> dt.datetime:
    """A day (YYYY-MM-DD, in `tz`; an end day is included) or an ISO instant (no zone: `tz`)."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            if end:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(), tzinfo=tz)
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CliError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


async def report(args: argparse.Namespace, out: TextIO) -> None:
    from controller.billing.report import ReportError, build_report, render_csv, render_json

    store = await _open(args.db, args.owner)
    try:
        terms = await _terms(store)
        tz = _zone(terms)
        start, stop = parse_bound(args.date_from, tz, end=False), parse_bound(args.date_to, tz, end=True)
        if stop <= start:
            raise CliError("--to must be after --from")
        records = await store.list_billing_records(start, stop)
        adjustments = await store.list_billing_adjustments(start, stop)
        reservations = await store.list_reservations()
        currency = args.currency or (terms.currency if terms is not None else None) \
            or next((r.currency for r in records), "EUR")
        fee = terms.billing.platform_fee_percent if terms is not None else Decimal(0)
        try:
            data = build_report(period_from=start, period_to=stop, currency=currency, platform_fee_percent=fee,
                                records=records, adjustments=adjustments, reservations=reservations)
        except ReportError as exc:
            raise CliError(str(exc)) from exc
    finally:
        await store.close()
    out.write(render_json(data) if args.format == "json" else render_csv(data))


def parse_amount(text: str, currency: str) -> Decimal:
    from controller.pricing.money import minor_unit

    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise CliError(f"--amount {text!r} is not a decimal number (e.g. -3.00)") from exc
    unit = minor_unit(currency)
    if not amount.is_finite() or amount == 0:
        raise CliError("--amount must be a non-zero number")
    if amount != amount.quantize(unit):
        raise CliError(f"--amount {text} has more decimals than {currency} has (smallest unit {unit})")
    return amount.quantize(unit)


async def adjust(args: argparse.Namespace, out: TextIO) -> None:
    from controller.billing.records import latest
    from controller.store.billing_records import BillingAdjustment

    store = await _open(args.db, args.owner)
    try:
        rows = await store.billing_records(args.transaction)
        record = latest(rows).get(args.transaction)
        if record is None:
            raise CliError(f"transaction {args.transaction} has no billing record: nothing to adjust")
        if not args.reason.strip():
            raise CliError("--reason must say why (it is kept with the adjustment)")
        amount = parse_amount(args.amount, record.currency)
        far = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        done = await store.list_billing_adjustments(far, dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
                                                    transaction_id=args.transaction)
        balance = Decimal(record.total) + sum((Decimal(a.amount) for a in done), Decimal(0)) + amount
        if balance < 0:
            raise CliError(f"refused: transaction {args.transaction} would go below zero ({balance} "
                           f"{record.currency}); the session total with adjustments is "
                           f"{balance - amount} {record.currency}")
        adj = await store.add_billing_adjustment(BillingAdjustment(
            0, args.transaction, str(amount), record.currency, args.reason.strip(), dt.datetime.now(dt.UTC),
            args.by))
    finally:
        await store.close()
    out.write(f"adjustment {adj.id} recorded: transaction {adj.transaction_id} {adj.amount} {adj.currency}"
              f" ({adj.reason}); the session now totals {balance} {adj.currency}\n")


async def forget(args: argparse.Namespace, out: TextIO) -> None:
    store = await _open(args.db, args.owner)
    try:
        terms = await _terms(store)
        days = terms.personal_data_days if terms is not None else DEFAULT_RETENTION_DAYS
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        result, kept = await store.forget_driver(args.driver, id_tags=args.id_tag or (),
                                                 before=None if args.force else cutoff)
    finally:
        await store.close()
    changed = result.billing_records + result.transactions
    if changed:
        out.write(f"driver {args.driver}: personal link removed from {result.billing_records} billing record(s),"
                  f" {result.transactions} transaction(s), {result.frames} raw frame(s) and"
                  f" {result.reservations} reservation(s); amounts kept\n")
    if kept:
        raise CliError(
            f"refused for {len(kept)} session(s) of driver {args.driver} that ended within the retention period"
            f" ({days} days, i.e. after {cutoff:%Y-%m-%d}): transaction(s) {', '.join(map(str, kept[:20]))}"
            f"{' ...' if len(kept) > 20 else ''}; they are kept until then (--force forgets them now)")
    if not changed:
        out.write(f"driver {args.driver}: nothing to forget (no sessions with a personal link found)\n")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`billing report|adjust` and `forget` under the `chargeops` parser."""
    b = sub.add_parser("billing", help="billing records: the period report, adjustments (corrections, refunds)")
    bsub = b.add_subparsers(dest="billing_command", required=True)
    r = bsub.add_parser("report", help="sessions, fees, adjustments, platform fee and payout of a period")
    r.add_argument("--db", default="chargeops.db", help="the store (default chargeops.db)")
    r.add_argument("--from", dest="date_from", required=True, help="first day (YYYY-MM-DD) or ISO time")
    r.add_argument("--to", dest="date_to", required=True, help="last day, included (YYYY-MM-DD) or ISO time")
    r.add_argument("--format", choices=["csv", "json"], default="csv")
    r.add_argument("--currency", help="report currency (default: the owner's)")
    r.add_argument("--owner", help="owner id (needed when the database holds several)")
    r.set_defaults(billing_func=report)
    a = bsub.add_parser("adjust", help="append a correction or refund to a billed session")
    a.add_argument("--db", default="chargeops.db", help="the store (default chargeops.db)")
    a.add_argument("--transaction", type=int, required=True, help="the session's transaction id")
    a.add_argument("--amount", required=True, help="amount, e.g. -3.00 for a refund")
    a.add_argument("--reason", required=True, help="why (kept with the adjustment)")
    a.add_argument("--by", help="who made it (kept with the adjustment)")
    a.add_argument("--owner", help="owner id (needed when the database holds several)")
    a.set_defaults(billing_func=adjust)
    f = sub.add_parser("forget", help="remove a driver's personal link after the retention period, keeping amounts")
    f.add_argument("driver", help="the pseudonymous driver id")
    f.add_argument("--db", default="chargeops.db", help="the store (default chargeops.db)")
    f.add_argument("--id-tag", action="append", help="also a card (idTag) of the driver; repeatable")
    f.add_argument("--force", action="store_true", help="also sessions inside the retention period")
    f.add_argument("--owner", help="owner id (needed when the database holds several)")
    f.set_defaults(billing_func=forget)


def main(args: argparse.Namespace) -> int:
    import asyncio

    try:
        asyncio.run(args.billing_func(args, sys.stdout))
    except CliError as exc:
        name = "forget" if args.command == "forget" else f"billing {args.billing_command}"
        sys.stderr.write(f"chargeops {name}: {exc}\n")
        return 1
    return 0
