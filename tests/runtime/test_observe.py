"""The reconciler's bookkeeping survives a round trip through the store's JSON, field for field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from controller.runtime.observe import Bookkeeping
from tests.store.helpers import async_test


def test_bookkeeping_round_trips_through_json_with_every_field() -> None:
    book = Bookkeeping(applied={"HEARTBEATINTERVAL": "300"},
                       refused={"X": {"status": "Rejected", "value": "1", "at": "2026-01-01T00:00:00+00:00"}},
                       pending_reboot={"since": "2026-01-01T00:00:00+00:00", "keys": {"WEBSOCKETPINGINTERVAL": "55"}},
                       write_only_sent={"AUTHORIZATIONKEY": "sha256:abc"}, scheduled_availability={"1": "Inoperative"},
                       cache_cleared_hash="sha256:def", local_list_mismatch=True,
                       unconfirmed={"METERVALUESAMPLEINTERVAL": "60"})
    data = json.loads(json.dumps(book.to_json()))
    assert set(data) == {f.name for f in dataclasses.fields(Bookkeeping)}
    assert Bookkeeping.from_json(data) == book
    assert book.to_json() == dataclasses.asdict(book)


def test_bookkeeping_json_holds_only_the_fields_that_hold_something_and_reads_back_the_same() -> None:
    assert Bookkeeping().to_json() == {}
    book = Bookkeeping(applied={"HEARTBEATINTERVAL": "300"})
    assert book.to_json() == {"applied": {"HEARTBEATINTERVAL": "300"}}
    assert Bookkeeping.from_json(json.loads(json.dumps(book.to_json()))) == book
    # what earlier versions wrote (every field, empty ones included) reads the same
    assert Bookkeeping.from_json(dataclasses.asdict(book)) == book


def test_unknown_or_missing_bookkeeping_reads_as_empty() -> None:
    assert Bookkeeping.from_json(None) == Bookkeeping()
    assert Bookkeeping.from_json({"applied": {"A": "1"}, "from_a_newer_version": 1}).applied == {"A": "1"}


@async_test
async def test_the_observed_station_is_the_one_its_constructor_makes_and_a_snapshot_of_the_book(
        tmp_path: Path) -> None:
    # observed_from_store fills the frozen dataclass without running its __init__: every field must be set, to
    # what the constructor would have made, and later changes to the bookkeeping must not show through
    import datetime as dt

    from controller.config.ocpp16_keys import config_key, configuration_index
    from controller.reconcilers import ObservedStation, PendingReboot, Refusal
    from controller.runtime.observe import OBSERVED_FIELDS, observed_from_store, observed_now
    from controller.store.records import BootInfo, ConnectorStatus
    from controller.store.sqlite import SqliteStore

    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    store = await SqliteStore.open(tmp_path / "db", owner="o")
    try:
        await store.record_boot("CP-1", BootInfo("V", "M", firmware_version="1.2"), "Accepted", at)
        await store.record_configuration("CP-1", [config_key("HeartbeatInterval", "300")], at, complete=True)
        await store.record_connector_status("CP-1", ConnectorStatus(1, "Charging", None, None, None, at))
        rec = await store.get_station("CP-1")
        assert rec is not None
        full = Bookkeeping(applied={"HEARTBEATINTERVAL": "300"}, unconfirmed={"A": "1"},
                           refused={"X": {"status": "Rejected", "value": "1", "at": at.isoformat()}},
                           pending_reboot={"since": at.isoformat(), "keys": {"B": "2"}},
                           write_only_sent={"AUTHORIZATIONKEY": "sha256:abc"},
                           scheduled_availability={"1": "Inoperative"},
                           cache_cleared_hash="sha256:def", local_list_mismatch=True)
        for book in (full, Bookkeeping()):
            obs, _entries = await observed_from_store(store, "CP-1", rec, book, online=True, sessions=frozenset({1}))
            assert obs is not None and set(vars(obs)) == OBSERVED_FIELDS
            expected = ObservedStation(
                identity="CP-1", online=True, vendor="V", model="M", firmware="1.2",
                configuration=configuration_index(rec.configuration), read_at=rec.configuration_read_at,
                local_list_version=rec.local_list_version, local_list_hash=None,
                local_list_mismatch=book.local_list_mismatch, connectors={1: "Charging"}, sessions=frozenset({1}),
                pending_reboot=PendingReboot(at, {"B": "2"}) if book.pending_reboot else None,
                refused={"X": Refusal("Rejected", "1", at)} if book.refused else {},
                write_only_sent=dict(book.write_only_sent), applied=dict(book.applied),
                unconfirmed=dict(book.unconfirmed),
                scheduled_availability={int(k): v for k, v in book.scheduled_availability.items()},
                cache_cleared_hash=book.cache_cleared_hash)
            assert obs == expected
            # the same without a coroutine when nothing is needed from the store; None when something is
            assert observed_now(rec, book, online=True, sessions=frozenset({1})) == (expected, None)
            unknown_list = dataclasses.replace(rec, local_list_hash="sha256:not-read-yet")
            assert observed_now(unknown_list, book, online=True, sessions=frozenset({1})) is None
            book.applied["LATER"] = "x"
            book.unconfirmed["LATER"] = "x"
            assert "LATER" not in obs.applied and "LATER" not in obs.unconfirmed
    finally:
        await store.close()
