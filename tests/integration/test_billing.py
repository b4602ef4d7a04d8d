"""Flex Billing end to end: the real server, store and simulated chargers, records read back from SQLite.

A paid session with every price component and a tariff window starting mid-session (frames sent with
chosen charger times), final at unplug; an employee session that is free; a re-sent StopTransaction
billed once; an offline session billed late with the tariff of its own time; an implausible meter
reading under review with no invented amount; the billing report (CSV and JSON) whose totals are the
sum of its records and adjustments; `billing adjust` and `forget`."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
import zoneinfo
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from controller.billing.history import record_revision
from controller.billing.listener import BillingListener
from controller.billing.records import body_of, latest
from controller.cli import main as cli_main
from controller.config import DesiredState
from controller.hw.ocppj import format_datetime
from controller.hw.server import ServerSettings, utc_now
from controller.hw.sim.model import Faults
from controller.hw.simulator import SimulatedCharger
from controller.runtime.controller import Controller, ControllerSettings
from controller.runtime.reconcile import ReconcileSettings
from controller.store.billing_records import BillingRow
from controller.store.records import ReservationRequest, ReservationStatus
from controller.store.sqlite import SqliteStore
from tests.config.ownerrepo import card, dump, group, owner, station, tariff

from .harness import Harness, calls_to, csms, desired_of, run, wait_until

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
D = Decimal


def _repo(*, per_kwh: str = "0.30", window: tuple[str, str] | None = None, platform_fee: str = "0",
          **owner_spec: Any) -> DesiredState:
    price = {"sessionFee": "1.00", "perKwh": per_kwh, "perHour": "1.00",
             "idle": {"perHour": "6.00", "graceMinutes": 10, "untilUnplug": True}}
    windows = [{"name": "evening", "days": ALL_DAYS, "start": window[0], "end": window[1],
                "price": {"perKwh": "0.50"}}] if window else []
    the_owner = owner(**owner_spec)
    the_owner["spec"]["billing"]["platformFeePercent"] = platform_fee
    return desired_of(
        the_owner,
        group("drivers", card("CARD-0001", "drv-1"), card("CARD-0002", "drv-2")),
        group("employees", card("EMP-0001", "emp-1")),
        tariff("standard", price=price, taxRatePercent="21", windows=windows,
               groupPrices=[{"group": "employees", "free": True}]),
        station("st-1", tariff="standard", offlineAuthorization=True),
        station("st-2", tariff="standard"),
    )


@contextlib.asynccontextmanager
async def billing(h: Harness, taken_at: dt.datetime | None = None) -> AsyncIterator[BillingListener]:
    """The billing listener on the harness's central system, with the revision in force taken a day ago."""
    await record_revision(h.store, h.holder.desired, taken_at or utc_now() - dt.timedelta(days=1))
    listener = BillingListener(h.store, h.holder)
    h.central.csms.listeners.append(listener)
    try:
        yield listener
    finally:
        await listener.close()


async def versions(h: Harness, tx: int, count: int = 1) -> list[BillingRow]:
    await wait_until(lambda: _has(h, tx, count), 5, f"{count} version(s) of the record of {tx}")
    return await h.store.billing_records(tx)


async def _has(h: Harness, tx: int, count: int) -> bool:
    return len(await h.store.billing_records(tx)) >= count


def ts(t: dt.datetime) -> str:
    return format_datetime(t.replace(microsecond=0))


async def status(cp: SimulatedCharger, state: str, at: dt.datetime, connector: int = 1) -> None:
    await cp.send("StatusNotification", {"connectorId": connector, "errorCode": "NoError", "status": state,
                                         "timestamp": ts(at)})


async def energy(cp: SimulatedCharger, tx: int, at: dt.datetime, wh: int) -> None:
    await cp.send("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [
        {"timestamp": ts(at), "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register",
                                                "unit": "Wh"}]}]})


def check_parts_add_up(body: Any) -> None:
    lines = sum((D(ln["amount"]) for ln in body["lines"]), D(0))
    assert lines == D(body["subtotal"])
    declared = D(body["total"]) if body["pricesIncludeTax"] else D(body["net"])
    assert lines + D(body["adjustment"]) == declared
    assert D(body["net"]) + D(body["tax"]) == D(body["total"])


def test_a_paid_session_has_every_component_split_at_a_window_and_is_final_at_unplug(tmp_path: Path) -> None:
    now = utc_now()
    b = (now - dt.timedelta(hours=4)).astimezone(AMS).replace(minute=0, second=0, microsecond=0)
    window = (b.strftime("%H:%M"), (b + dt.timedelta(hours=2)).strftime("%H:%M"))
    start, b = (b - dt.timedelta(hours=1)).astimezone(dt.UTC), b.astimezone(dt.UTC)
    minutes = dt.timedelta(minutes=1)

    async def scenario() -> None:
        # the charger's own statuses are two days old: only the frames below make this session's timeline
        async with csms(tmp_path, _repo(window=window)) as h, billing(h), \
                h.charger("ST-1", faults=Faults(clock_skew=-2 * 86400)) as cp:
            await cp.wait_online(5)
            await status(cp, "Preparing", start - minutes)
            tx = (await cp.send("StartTransaction", {"connectorId": 1, "idTag": "CARD-0001", "meterStart": 10_000,
                                                     "timestamp": ts(start)}))["transactionId"]
            await status(cp, "Charging", start)
            await energy(cp, tx, b, 16_000)  # the window starts: 6 kWh before it
            await energy(cp, tx, b + 30 * minutes, 19_000)  # 3 kWh inside it, then the EV is full
            await status(cp, "SuspendedEV", b + 30 * minutes)
            await cp.send("StopTransaction", {"transactionId": tx, "meterStop": 19_000,
                                              "timestamp": ts(b + 60 * minutes), "reason": "Local"})
            [first] = await h.store.billing_records(tx)  # written before the StopTransaction was answered
            body = body_of(first)
            assert not first.final and body["provisional"] and first.total == "7.80"  # idle counted to the stop
            await status(cp, "Finishing", b + 60 * minutes)
            await status(cp, "Available", b + 80 * minutes)  # unplugged 50 minutes after charging ended
            v1, v2 = await versions(h, tx, 2)
            assert v1 == first and v2.final and v2.version == 2
            body = body_of(v2)
            parts = {(ln["component"], ln["window"]): (D(ln["quantity"]), D(ln["amount"])) for ln in body["lines"]}
            assert parts == {
                ("session_fee", None): (D(1), D("1.00")),
                ("energy", None): (D("6.000000"), D("1.80")),
                ("charging_time", None): (D("1.000000"), D("1.00")),
                ("energy", "evening"): (D("3.000000"), D("1.50")),
                ("charging_time", "evening"): (D("0.500000"), D("0.50")),
                ("idle_time", "evening"): (D("0.666667"), D("4.00")),  # 50 min idle, 10 free
            }
            assert (body["total"], body["net"], body["tax"], body["currency"]) == ("9.80", "8.10", "1.70", "EUR")
            check_parts_add_up(body)
            assert body["energyWh"] == "9000" and body["idleSeconds"] == 3000 and body["chargingSeconds"] == 5400
            assert body["start"] == ts(start) and body["plugOut"] == ts(b + 80 * minutes)
            assert body["tariffVersion"] == f"standard@{h.holder.revision}" and body["tariffHash"].startswith("sha256:")
            assert (v2.card, v2.driver_id, v2.group, v2.station, v2.connector_id) == \
                ("*****0001", "drv-1", "drivers", "ST-1", 1)
            assert not v2.under_review, body["anomalies"]

    run(scenario())


async def natural_session(cp: SimulatedCharger, id_tag: str, connector: int = 1) -> int:
    await cp.plug_in(connector)
    assert await cp.present_card(id_tag, connector) == "Accepted"
    await cp.wait_for(lambda: any(t.transaction_id for t in cp.transactions if t.connector_id == connector), 5,
                      "the transaction id")
    await cp.stop_transaction(connector)
    await cp.unplug(connector)
    await cp.drained(5)
    tx = [t for t in cp.transactions if t.connector_id == connector][-1].transaction_id
    assert tx is not None
    return tx


def test_an_employee_session_is_free_and_a_resent_stop_is_billed_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, billing(h), h.charger("ST-2", time_scale=1.0) as cp:
            await cp.wait_online(5)
            tx = await natural_session(cp, "EMP-0001")
            [row] = await versions(h, tx)
            body = body_of(row)
            assert row.total == "0.00" and row.final and body["lines"] == [] and body["priceGroup"] == "employees"
            assert row.group == "employees" and not row.under_review
            stop = cp.sent_calls("StopTransaction")[-1]
            again = await cp.send("StopTransaction", dict(stop.payload))  # the charger never got the answer
            assert again == stop.reply
            assert await h.store.billing_records(tx) == [row]

    run(scenario())


def test_a_stop_is_priced_with_its_three_reads_at_once(tmp_path: Path) -> None:
    """The StopTransaction's answer waits for its billing record: the prices in force, the meter values and the
    status history are read together, not one after the other."""
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, billing(h), h.charger("ST-2", time_scale=1.0) as cp:
            await cp.wait_online(5)
            running, most = [0], [0]

            def overlapping(read: Any) -> Any:
                async def counted(*args: Any, **kwargs: Any) -> Any:
                    running[0] += 1
                    most[0] = max(most[0], running[0])
                    try:
                        await asyncio.sleep(0.05)
                        return await read(*args, **kwargs)
                    finally:
                        running[0] -= 1
                return counted

            for name in ("tariff_revision_ref_at", "list_meter_values", "status_history"):
                setattr(h.store, name, overlapping(getattr(h.store, name)))
            tx = await natural_session(cp, "CARD-0001")
            [row] = await versions(h, tx)
            assert row.total != "0.00" and most[0] == 3

    run(scenario())


def test_an_offline_session_is_billed_late_with_the_tariff_of_its_own_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, billing(h), h.charger("ST-1", time_scale=1.0) as cp:
            await cp.wait_online(5)
            old_revision = h.holder.revision
            await cp.go_offline()
            cp.config.change("AllowOfflineTxForUnknownId", "true")
            await cp.plug_in(1)
            assert await cp.present_card("CARD-0002") == "Accepted"
            await cp.stop_transaction(1)
            await cp.unplug(1)
            # the owner doubles the energy price while the charger is still offline
            newer = _repo(per_kwh="0.60")
            assert h.holder.offer(newer, newer.revision)
            await record_revision(h.store, newer, utc_now())
            cp.go_online()
            await cp.drained(5)
            tx = cp.transactions[-1].transaction_id
            assert tx is not None
            row = (await versions(h, tx))[0]
            body = body_of(row)
            assert body["tariffVersion"] == f"standard@{old_revision}" != f"standard@{newer.revision}"
            assert body["gitRevision"] == old_revision
            assert row.booked_at > dt.datetime.fromisoformat(body["stop"].replace("Z", "+00:00"))  # booked late
            assert row.session_start == body["start"] and row.driver_id == "drv-2"
            # a session starting now is priced with the new tariff (charger times are whole seconds)
            await asyncio.sleep(1.0)
            tx2 = await natural_session(cp, "CARD-0001", connector=2)
            row2 = (await versions(h, tx2))[0]
            assert body_of(row2)["tariffVersion"] == f"standard@{newer.revision}"

    run(scenario())


def test_an_implausible_meter_reading_puts_the_record_under_review_without_inventing_energy(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with csms(tmp_path, _repo()) as h, billing(h), h.charger("ST-2") as cp:
            await cp.wait_online(5)
            start = utc_now() - dt.timedelta(minutes=30)
            tx = (await cp.send("StartTransaction", {"connectorId": 1, "idTag": "CARD-0001", "meterStart": 1_000,
                                                     "timestamp": ts(start)}))["transactionId"]
            # 499 kWh in 20 minutes on an 11 kW EVSE
            await cp.send("StopTransaction", {"transactionId": tx, "meterStop": 500_000,
                                              "timestamp": ts(start + dt.timedelta(minutes=20))})
            [row] = await versions(h, tx)
            body = body_of(row)
            assert row.under_review and body["underReview"]
            assert any("implausible" in a for a in body["anomalies"])
            assert body["energyWh"] == "0" and all(ln["component"] != "energy" for ln in body["lines"])
            check_parts_add_up(body)
            assert D(row.total) >= 0
            # a stop for a transaction never started here: recorded for review, nothing priced
            await cp.send("StopTransaction", {"transactionId": 987_654, "meterStop": 5, "timestamp": ts(utc_now())})
            [orphan] = [t for t in await h.store.list_transactions(station="ST-2") if t.claimed_transaction_id]
            [row] = await versions(h, orphan.id)
            assert row.under_review and row.total == "0.00" and body_of(row)["lines"] == []

    run(scenario())


def test_the_report_totals_are_the_sum_of_its_records_and_adjustments_and_a_driver_can_be_forgotten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "chargeops.db"
    txs: list[int] = []

    async def scenario() -> None:
        repo = _repo(dataRetention={"personalDataDays": 30}, platform_fee="10")
        async with csms(tmp_path, repo) as h, billing(h), h.charger("ST-1", time_scale=1.0) as cp:
            await cp.wait_online(5)
            for id_tag in ("CARD-0001", "CARD-0002", "EMP-0001"):
                tx = await natural_session(cp, id_tag)
                await versions(h, tx)
                txs.append(tx)
            expires = utc_now() + dt.timedelta(minutes=5)
            for status_, policy in ((ReservationStatus.USED, '{"name":"bays","fee":"2.00","noShowFee":"5.00"}'),
                                    (ReservationStatus.EXPIRED, '{"name":"bays","fee":"2.00","noShowFee":"5.00"}'),
                                    (ReservationStatus.EXPIRED, "bays")):  # a plain name: no fee information
                res = await h.store.create_reservation(ReservationRequest("ST-2", 1, "CARD-0001", expires, policy))
                await h.store.update_reservation(res.id, status_)

    run(scenario())
    day = utc_now().astimezone(AMS).date().isoformat()
    assert cli_main(["billing", "adjust", "--db", str(db), "--transaction", str(txs[0]), "--amount", "-0.50",
                     "--reason", "connector was dirty"]) == 0
    assert cli_main(["billing", "adjust", "--db", str(db), "--transaction", str(txs[2]), "--amount", "-1.00",
                     "--reason", "too much"]) == 1  # a free session cannot be refunded below zero
    capsys.readouterr()

    assert cli_main(["billing", "report", "--db", str(db), "--from", day, "--to", day, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = stored_records(db)
    totals = report["totals"]
    assert [s["transactionId"] for s in report["sessions"]] == txs
    assert D(totals["total"]) == sum((D(r.total) for r in rows.values()), D(0))
    assert D(totals["tax"]) == sum((D(r.tax) for r in rows.values()), D(0))
    assert D(totals["adjustments"]["amount"]) == D("-0.50")
    assert (totals["reservationFees"], totals["noShowFees"]) == ({"count": 3, "amount": "4.00"},
                                                                  {"count": 2, "amount": "5.00"})
    gross = D(totals["total"]) + D("9.00")
    assert D(totals["gross"]) == gross and D(totals["platformFee"]) == (gross / 10).quantize(D("0.01"))
    assert D(totals["payout"]) == gross - D(totals["platformFee"]) - D("0.50")
    assert sum((D(g["total"]) for g in report["byGroup"].values()), D(0)) == D(totals["total"])
    assert set(report["byGroup"]) == {"drivers", "employees"} and report["byStation"]["ST-1"]["sessions"] == 3

    assert cli_main(["billing", "report", "--db", str(db), "--from", day, "--to", day]) == 0
    items = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    total = {r["id"]: D(r["amount"]) for r in items if r["kind"] == "total"}
    amounts = {kind: sum((D(r["amount"]) for r in items if r["kind"] == kind), D(0))
               for kind in ("session", "reservation_fee", "no_show_fee", "adjustment")}
    assert total["sessions"] == amounts["session"] == D(totals["total"])
    assert total["adjustments"] == amounts["adjustment"] == D("-0.50")
    assert total["gross"] == amounts["session"] + amounts["reservation_fee"] + amounts["no_show_fee"]
    assert total["payout"] == total["gross"] - total["platform_fee"] + amounts["adjustment"] == D(totals["payout"])

    # forgetting a driver: refused inside the retention period, then forced; the amounts stay
    assert cli_main(["forget", "drv-1", "--db", str(db)]) == 1
    assert "retention period" in capsys.readouterr().err
    assert stored_records(db)[txs[0]].driver_id == "drv-1"
    assert cli_main(["forget", "drv-1", "--db", str(db), "--force"]) == 0
    after = stored_records(db)
    assert (after[txs[0]].driver_id, after[txs[0]].card) == (None, None)
    assert after[txs[0]].total == rows[txs[0]].total and after[txs[0]].body == rows[txs[0]].body
    assert after[txs[1]].driver_id == "drv-2"  # other drivers untouched
    frames = stored_frames(db, "ST-1")
    assert any("****0002" not in f and "CARD-0002" in f for f in frames)  # the other driver's frames are intact
    assert not any("CARD-0001" in f.upper() for f in frames)


def test_the_controller_records_each_revision_it_takes_and_bills_through_its_features(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "owner.yaml").write_text(dump(owner()))
    (repo / "cards.yaml").write_text(dump(group("drivers", card("CARD-0001", "drv-1"))))
    (repo / "stations.yaml").write_text(dump(station("st-1", tariff="standard")))
    (repo / "tariffs.yaml").write_text(dump(tariff("standard", price={"sessionFee": "1.00"})))

    async def scenario() -> None:
        ctl = Controller(ControllerSettings(repo=repo, db_path=tmp_path / "chargeops.db",
                                            server=ServerSettings(port=0, call_timeout=3.0),
                                            reconcile=ReconcileSettings(call_timeout=3.0)))
        await ctl.start()
        try:
            store = ctl.store
            assert store is not None
            first = await store.latest_tariff_revision()
            assert first is not None and first.revision == ctl.desired.revision
            recorded = calls_to(store, "record_tariff_revision")  # billing must not record it again
            await asyncio.gather(*ctl._preparing)  # the prices in force, resolved in the background at start
            read = calls_to(store, "tariff_revision_by_ref")  # for pricing (the first stop must not wait for one)

            async def billed_session() -> str:
                assert store is not None
                async with SimulatedCharger("ST-1", f"ws://127.0.0.1:{ctl.port}/ocpp", time_scale=1.0,
                                            reconnect_delay=0.05) as cp:
                    await cp.wait_online(5)
                    tx = await natural_session(cp, "CARD-0001")
                    await wait_until(lambda: store.billing_records(tx), 5, "the billing record")
                    return (await store.billing_records(tx))[0].total

            assert await billed_session() == "1.00"
            assert recorded == []  # the stop was billed without recording the revision in force a second time
            assert read == []  # ... and priced from the prices prepared at start
            (repo / "tariffs.yaml").write_text(dump(tariff("standard", price={"sessionFee": "2.00"})))

            async def taken() -> bool:
                rev = await store.latest_tariff_revision()
                return rev is not None and rev.revision != first.revision

            await wait_until(taken, 10, "the new revision recorded")
            await wait_until(lambda: not ctl._preparing, 5, "the new prices prepared")
            # the simulator's start times have whole seconds: a start in the second the revision was taken would
            # be priced by the revision before (taken at 12:00:05.4, reported started at 12:00:05)
            await asyncio.sleep(1.1)
            read.clear()
            assert await billed_session() == "2.00"
            assert read == []  # the revision taken was prepared too
        finally:
            await ctl.stop()

    run(scenario(), timeout=25)


def _read(db: Path, fn: Any) -> Any:
    async def go() -> Any:
        store = await SqliteStore.open(db, owner="test-owner")
        try:
            return await fn(store)
        finally:
            await store.close()

    return run(go())


def stored_records(db: Path) -> dict[int, BillingRow]:
    async def rows(store: SqliteStore) -> dict[int, BillingRow]:
        far = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        return latest(await store.list_billing_records(far, utc_now() + dt.timedelta(days=1)))

    return dict(_read(db, rows))


def stored_frames(db: Path, station: str) -> list[str]:
    async def frames(store: SqliteStore) -> list[str]:
        return [f.text for f in await store.list_frames(station, limit=10_000)]

    return list(_read(db, frames))
