"""The fleet snapshot (controller/dashboard/snapshot.py): every station once, live status, nothing that ticks."""

from __future__ import annotations

import datetime as dt
import json

from controller.dashboard.snapshot import fleet_snapshot
from controller.runtime.status import Health, StationStatus, Sync
from controller.store.records import Credentials, StationRecord
from tests.publish.kit import at, example, status

FLEET = {"revision": "abc123", "appliedRevision": "abc123", "failedRevision": None, "held": None,
         "rollout": None, "sync": {"Synced": 1}, "health": {"Healthy": 1}}


def record(identity: str, *connectors: tuple[int, str], seen: dt.datetime | None = None) -> StationRecord:
    return StationRecord(identity=identity, boot=None, registration_status="Accepted", last_boot_at=None,
                         last_seen=seen, online=True, configuration=(), configuration_read_at=None,
                         local_list_version=None, local_list_hash=None,
                         connectors=tuple(status(n, s) for n, s in connectors), credentials=Credentials(),
                         security_profile=None)


def snap(**kw: object) -> dict[str, object]:
    args: dict[str, object] = {"fleet": FLEET, "statuses": [], "desired": example("town-curbside"), "records": [],
                               "open_sessions": {}, "online": []}
    args.update(kw)
    return fleet_snapshot(**args)  # type: ignore[arg-type]


def by_identity(s: dict[str, object]) -> dict[str, dict[str, object]]:
    return {e["identity"]: e for e in s["stations"]}  # type: ignore[attr-defined, index]


def test_every_declared_station_is_listed_once_even_before_it_ever_connects() -> None:
    town = example("town-curbside")
    s = snap()
    assert sorted(by_identity(s)) == sorted(st.identity for st in town.stations.values())
    assert s["owner"] == {"name": "gemeente-delft", "displayName": "Gemeente Delft"}
    hidden = by_identity(s)["DLF-DC-0003"]
    assert hidden["visibility"] == "hidden" and hidden["coordinates"] is not None  # the owner sees everything
    assert hidden["health"] == "Missing" and hidden["sync"] == "Unknown" and hidden["lastSeen"] is None


def test_status_connectors_sessions_and_online_come_from_the_reconciler_store_and_central_system() -> None:
    st = StationStatus("DLF-AC-0001", "markt-1", sync=Sync.SYNCED, health=Health.HEALTHY, online=True,
                       last_applied_revision="abc123")
    s = snap(statuses=[st], records=[record("dlf-ac-0001", (2, "Faulted"), (1, "Charging"),
                                            seen=dt.datetime(2026, 1, 5, 8, 0, 7, 654321, tzinfo=dt.UTC))],
             open_sessions={"DLF-AC-0001": 1}, online=["dlf-ac-0001"])
    markt = by_identity(s)["DLF-AC-0001"]
    assert markt["health"] == "Healthy" and markt["sync"] == "Synced" and markt["lastAppliedRevision"] == "abc123"
    assert markt["connectors"] == [{"id": 1, "status": "Charging", "errorCode": None},
                                   {"id": 2, "status": "Faulted", "errorCode": None}]
    assert markt["faulted"] is True and markt["openSessions"] == 1 and markt["online"] is True
    assert markt["lastSeen"] == "2026-01-05T08:00:07Z"  # whole seconds: the stream is not re-sent for nothing
    assert markt["coordinates"] == {"lat": 52.01148, "lng": 4.35874}
    assert s["online"] == 1


def test_a_station_removed_from_the_repository_stays_listed_as_removed() -> None:
    gone = StationStatus("OLD-1", "old", removed=True)
    assert by_identity(snap(statuses=[gone]))["OLD-1"]["removed"] is True


def test_the_source_status_loses_its_poll_times_and_nothing_in_a_snapshot_is_an_id_tag() -> None:
    source = {"kind": "git", "location": "https://example.com/r.git", "last_attempt_at": at(1).isoformat(),
              "lastSuccessAt": at(1).isoformat(), "revision": "abc123"}
    s = snap(source=source)
    assert s["source"] == {"kind": "git", "location": "https://example.com/r.git", "revision": "abc123"}
    text = json.dumps(s)
    for card in example("town-curbside").cards.values():
        assert card.id_tag not in text
