"""Transaction messages: idempotent start and stop, orphans, raw frames, meter values and retention."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from controller.store import sqlite as sqlite_module
from controller.store.records import TransactionStatus
from controller.store.sql_transactions import SECOND_STOP_DIFFERS, STATION_MISMATCH, UNKNOWN_TRANSACTION

from .helpers import T0, async_test, frame, open_store, sample, start_req, stop_req


@async_test
async def test_a_resent_start_gets_the_same_transaction_id_even_with_a_new_message_id(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    first = await store.start_transaction(start_req(7, anomalies=("late",), tariff_version="t1", git_revision="abc"))
    again = await store.start_transaction(start_req(7, id_tag="04a2b3c4", frame=frame(message_id="retry-1")))
    other = await store.start_transaction(start_req(8))

    assert first.created and not again.created and other.created
    assert again.transaction_id == first.transaction_id != other.transaction_id
    record = await store.get_transaction(first.transaction_id)
    assert record is not None
    assert (record.id_tag, record.status, record.anomalies) == ("04A2B3C4", TransactionStatus.ACTIVE, ("late",))
    assert (record.tariff_version, record.git_revision, record.meter_start) == ("t1", "abc", 1007)
    assert first.record == record and again.record == record  # as stored, without a read after the write
    assert other.record is not None and other.record.id == other.transaction_id
    # every frame is kept, the retry too, linked to the transaction
    frames = await store.list_frames("CP1")
    assert [f.message_id for f in frames] == ["start-7", "retry-1", "start-8"]
    await store.close()


@async_test
async def test_identical_starts_in_one_batch_get_one_id(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    results = await asyncio.gather(*(store.start_transaction(start_req(3)) for _ in range(20)))
    assert len({r.transaction_id for r in results}) == 1
    assert [r.created for r in results].count(True) == 1
    await store.close()


@async_test
async def test_a_resent_stop_returns_the_stored_answer_as_a_duplicate(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    transaction_id = (await store.start_transaction(start_req(1))).transaction_id
    stop = stop_req(transaction_id, id_tag_info='{"status":"Accepted"}', meter_values=(sample(None, value="4999.9"),))

    first = await store.stop_transaction(stop)
    again = await store.stop_transaction(stop)

    assert (first.duplicate, first.orphan, again.duplicate, again.orphan) == (False, False, True, False)
    assert again.transaction == first.transaction
    assert first.transaction.status is TransactionStatus.STOPPED
    assert (first.transaction.meter_stop, first.transaction.stop_reason) == (5000, "Local")
    assert first.transaction.stop_id_tag_info == '{"status":"Accepted"}'
    assert [s.value for s in await store.list_meter_values(transaction_id=transaction_id)] == ["4999.9"]
    await store.close()


@async_test
async def test_a_second_stop_with_other_values_keeps_the_first_and_is_flagged(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    transaction_id = (await store.start_transaction(start_req(1))).transaction_id
    first = await store.stop_transaction(stop_req(transaction_id, meter_stop=5000))
    second = await store.stop_transaction(stop_req(transaction_id, meter_stop=6000))
    assert second.duplicate and not second.orphan
    assert second.transaction.meter_stop == first.transaction.meter_stop == 5000
    assert SECOND_STOP_DIFFERS in second.transaction.anomalies
    await store.close()


@async_test
async def test_a_stop_for_an_unknown_transaction_is_kept_as_an_orphan_and_answered(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    result = await store.stop_transaction(stop_req(424242, id_tag="DEADBEEF"))
    assert result.orphan and not result.duplicate
    orphan = result.transaction
    assert orphan.status is TransactionStatus.ORPHAN
    assert orphan.claimed_transaction_id == 424242 and orphan.id != 424242
    assert UNKNOWN_TRANSACTION in orphan.anomalies
    assert (orphan.meter_stop, orphan.stop_id_tag) == (5000, "DEADBEEF")

    again = await store.stop_transaction(stop_req(424242, id_tag="DEADBEEF"))
    assert again.duplicate and again.orphan and again.transaction.id == orphan.id

    # ids we hand out are unaffected by the charger's number
    assert (await store.start_transaction(start_req(1))).transaction_id == orphan.id + 1
    await store.close()


@async_test
async def test_a_stop_from_another_station_does_not_touch_the_session(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    transaction_id = (await store.start_transaction(start_req(1, station="CP1"))).transaction_id
    result = await store.stop_transaction(stop_req(transaction_id, station="CP2"))
    assert result.orphan and STATION_MISMATCH in result.transaction.anomalies
    session = await store.get_transaction(transaction_id)
    assert session is not None and session.status is TransactionStatus.ACTIVE
    await store.close()


@async_test
async def test_owners_never_see_each_others_sessions(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    other = store.for_owner("town-of-x")
    transaction_id = (await store.start_transaction(start_req(1))).transaction_id
    assert await other.get_transaction(transaction_id) is None
    assert (await other.stop_transaction(stop_req(transaction_id))).orphan
    assert (await store.start_transaction(start_req(1))).transaction_id == transaction_id
    assert (await other.start_transaction(start_req(1))).created  # same message, other owner
    await store.close()


@async_test
async def test_flags_are_merged_without_duplicates(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    transaction_id = (await store.start_transaction(start_req(1, anomalies=("clock_in_future",)))).transaction_id
    assert await store.flag_transaction(transaction_id, ["energy_implausible", "clock_in_future"])
    assert not await store.flag_transaction(999, ["x"])
    record = await store.get_transaction(transaction_id)
    assert record is not None and record.anomalies == ("clock_in_future", "energy_implausible")
    await store.close()


@async_test
async def test_meter_values_keep_decimals_and_signed_data_verbatim(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    signed = replace(sample(value="<signed blob>"), format="SignedData")
    added = await store.add_meter_values(
        [sample(value="0.1"), sample(value="12345.678"), signed], frame("CP1", "MeterValues")
    )
    assert added == 3
    stored = await store.list_meter_values(transaction_id=1)
    assert [s.value for s in stored] == ["0.1", "12345.678", "<signed blob>"]
    assert stored[2].format == "SignedData" and stored[0] == sample(value="0.1")
    assert [f.action for f in await store.list_frames("CP1")] == ["MeterValues"]
    await store.close()


@async_test
async def test_retention_purges_meter_values_older_than_the_cutoff_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "PURGE_CHUNK", 3)
    store = await open_store(tmp_path)
    old = [sample(value=str(n), received_at=T0 - timedelta(days=400)) for n in range(10)]
    recent = [sample(value=str(n), received_at=T0) for n in range(4)]
    await store.add_meter_values(old + recent)
    commits_before = store.writer_stats().commits

    assert await store.purge_meter_values(T0 - timedelta(days=365)) == 10
    assert [s.value for s in await store.list_meter_values()] == ["0", "1", "2", "3"]
    # meter values 3 + 3 + 3 + 1, then one (empty) chunk each of the connector status history and raw frames
    assert store.writer_stats().commits - commits_before == 6
    await store.close()


@async_test
async def test_retention_also_purges_the_connector_status_history(tmp_path: Path) -> None:
    from controller.store.records import ConnectorStatus

    store = await open_store(tmp_path)
    for days, status in ((400, "Charging"), (1, "Available")):
        at = T0 - timedelta(days=days)
        await store.record_connector_status("CP1", ConnectorStatus(1, status, "NoError", None, at.isoformat(), at))
    assert len(await store.status_history("CP1", 1, T0 - timedelta(days=1000))) == 2
    await store.purge_meter_values(T0 - timedelta(days=365))
    assert [r.status for r in await store.status_history("CP1", 1, T0 - timedelta(days=1000))] == ["Available"]
    await store.close()


@async_test
async def test_retention_purges_the_raw_meter_values_frames_and_keeps_those_of_starts_and_stops(
    tmp_path: Path
) -> None:
    from controller.store.records import FrameDirection, RawFrame

    store = await open_store(tmp_path)
    long_ago = T0 - timedelta(days=400)

    def old_frame(action: str, message_id: str) -> RawFrame:
        return RawFrame("CP1", FrameDirection.IN, action, message_id, f"[2,{message_id!r}]", long_ago)

    tx = (await store.start_transaction(start_req(1, frame=old_frame("StartTransaction", "s1")))).transaction_id
    for n in range(3):
        await store.add_meter_values([sample(value=str(n), received_at=long_ago)],
                                     frame=old_frame("MeterValues", f"mv{n}"))
    await store.stop_transaction(stop_req(tx, frame=old_frame("StopTransaction", "p1")))
    await store.add_meter_values([sample(value="new", received_at=T0)], frame=frame(action="MeterValues",
                                                                                   message_id="mv-new"))
    await store.purge_meter_values(T0 - timedelta(days=365))
    kept = [(f.action, f.message_id) for f in await store.list_frames("CP1")]
    assert kept == [("StartTransaction", "s1"), ("StopTransaction", "p1"), ("MeterValues", "mv-new")]
    await store.close()
