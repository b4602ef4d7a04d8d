"""The billing tables: tariff history content-addressed and looked up by time, billing records written once
per (transaction, version) and immutable, adjustments append-only, status history kept."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from controller.store.billing_records import BillingAdjustment, BillingRow
from controller.store.records import ConnectorStatus
from controller.store.sqlite import SqliteStore

from .helpers import OWNER, T0, async_test


def row(tx: int = 1, version: int = 1, total: str = "1.00") -> BillingRow:
    return BillingRow(transaction_id=tx, version=version, final=True, booked_at=T0, station="ST-1", connector_id=1,
                      driver_id="drv-1", card="****0001", group="drivers", currency="EUR", net="0.83", tax="0.17",
                      total=total, under_review=False, session_start="2024-05-01T11:00:00Z", body="{}")


@async_test
async def test_the_tariff_history_stores_each_document_once_and_answers_by_time(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db", owner=OWNER)
    try:
        assert await store.tariff_revision_at(T0) is None
        docs_a = {"sha256:t1": '{"p":1}', "sha256:g": "{}"}
        assert await store.record_tariff_revision("a", T0, '{"tariffs":{"x":"sha256:t1"},"groups":"sha256:g"}',
                                                  docs_a)
        # re-taking the revision in force (a restart) adds nothing
        assert not await store.record_tariff_revision("a", T0 + timedelta(hours=1),
                                                      '{"tariffs":{"x":"sha256:t1"},"groups":"sha256:g"}', docs_a)
        assert await store.record_tariff_revision("b", T0 + timedelta(hours=2),
                                                  '{"tariffs":{"x":"sha256:t2"},"groups":"sha256:g"}',
                                                  {"sha256:t2": '{"p":2}', "sha256:g": "{}"})
        count = await store.engine.read(lambda c: c.execute("SELECT COUNT(*) FROM tariff_documents").fetchone()[0])
        assert count == 3  # the unchanged groups document is stored once
        before = await store.tariff_revision_at(T0 - timedelta(days=1))  # before any: the earliest
        at_a = await store.tariff_revision_at(T0 + timedelta(hours=1, minutes=59))
        at_b = await store.tariff_revision_at(T0 + timedelta(hours=2))
        assert before is not None and at_a is not None and at_b is not None
        assert (before.revision, at_a.revision, at_b.revision) == ("a", "a", "b")
        assert at_b.documents == {"sha256:t2": '{"p":2}', "sha256:g": "{}"}
        assert await store.for_owner("other").tariff_revision_at(T0) is None
    finally:
        await store.close()


@async_test
async def test_billing_records_are_written_once_per_version_and_never_changed(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db", owner=OWNER)
    try:
        first, created = await store.add_billing_record(row())
        again, created_again = await store.add_billing_record(row(total="9.99"))  # a re-sent stop
        assert created and not created_again and again == first and again.total == "1.00"
        await store.add_billing_record(row(version=2, total="2.00"))
        assert [r.total for r in await store.billing_records(1)] == ["1.00", "2.00"]

        def tamper(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE billing_records SET total = '0.00' WHERE transaction_id = 1")

        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM billing_records")

        for fn in (tamper, delete):
            with pytest.raises(sqlite3.IntegrityError):
                await store.engine.write(fn)
        adj = await store.add_billing_adjustment(BillingAdjustment(0, 1, "-0.50", "EUR", "refund", T0))
        with pytest.raises(sqlite3.IntegrityError):
            await store.engine.write(lambda c: c.execute("UPDATE billing_adjustments SET amount = '-5'"))
        assert await store.list_billing_adjustments(T0, T0 + timedelta(seconds=1)) == [adj]
    finally:
        await store.close()


@async_test
async def test_every_status_notification_is_kept_in_the_history(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db", owner=OWNER)
    try:
        for i, status in enumerate(("Charging", "SuspendedEV", "Finishing", "Available")):
            await store.record_connector_status("ST-1", ConnectorStatus(1, status, "NoError", None, f"t{i}",
                                                                        T0 + timedelta(minutes=i)))
        history = await store.status_history("ST-1", 1, T0)
        assert [(h.status, h.timestamp) for h in history] == [("Charging", "t0"), ("SuspendedEV", "t1"),
                                                              ("Finishing", "t2"), ("Available", "t3")]
        rec = await store.get_station("ST-1")
        assert rec is not None and [c.status for c in rec.connectors] == ["Available"]  # latest, as before
    finally:
        await store.close()
