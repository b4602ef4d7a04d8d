"""The reconciler's bookkeeping survives a round trip through the store's JSON, field for field."""

from __future__ import annotations

import dataclasses
import json

from controller.runtime.observe import Bookkeeping


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
