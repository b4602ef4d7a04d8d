"""Observed station state, local-list snapshots, credentials, reservations and the audit log."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from controller.store.errors import StoreUnavailable
from controller.store.records import (
    AuditEntry,
    BootInfo,
    ConfigKey,
    ConnectorStatus,
    LocalListEntry,
    ReservationRequest,
    ReservationStatus,
)
from controller.store.redact import REDACTED

from .helpers import T0, async_test, count, open_store

KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


@async_test
async def test_boot_presence_configuration_and_connector_status_are_recorded(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.record_boot("CP1", BootInfo("ACME", "Wallbox 2", "SN1", "1.2.3"), "Accepted", T0)
    await store.record_seen("CP1", T0 + timedelta(seconds=60))
    await store.record_seen("CP1", T0 + timedelta(seconds=30))  # late and out of order: ignored
    await store.record_configuration(
        "CP1", [ConfigKey("HeartbeatInterval", "300", False), ConfigKey("NumberOfConnectors", "2", True)], T0
    )
    await store.record_configuration("CP1", [ConfigKey("heartbeatinterval", "600", False)], T0)
    await store.record_connector_status("CP1", ConnectorStatus(1, "Available", "NoError", None, "t1", T0))
    await store.record_connector_status("CP1", ConnectorStatus(1, "Charging", "NoError", "x", "t2", T0))
    await store.record_connector_status("CP1", ConnectorStatus(0, "Available", "NoError", None, None, T0))
    await store.set_online("CP1", False, T0 + timedelta(seconds=90))

    station = await store.get_station("CP1")
    assert station is not None
    assert station.boot == BootInfo("ACME", "Wallbox 2", "SN1", "1.2.3")
    assert (station.registration_status, station.online) == ("Accepted", False)
    assert station.last_seen == T0 + timedelta(seconds=60)
    interval = station.config_value("HEARTBEATINTERVAL")
    assert interval is not None and (interval.key, interval.value) == ("heartbeatinterval", "600")
    assert len(station.configuration) == 2
    assert [(c.connector_id, c.status) for c in station.connectors] == [(0, "Available"), (1, "Charging")]

    await store.record_configuration("CP1", [ConfigKey("HeartbeatInterval", "300", False)], T0, complete=True)
    station = await store.get_station("CP1")
    assert station is not None and [k.key for k in station.configuration] == ["HeartbeatInterval"]
    assert await store.get_station("nope") is None
    assert await store.for_owner("other").list_stations() == []
    await store.close()


@async_test
async def test_a_configuration_read_again_rewrites_only_what_changed(tmp_path: Path) -> None:
    """A re-observation after a reconnect reads every key again: unchanged keys are not rewritten (their
    read_at stays that of the read that found the value), changed ones are, and a complete read drops keys the
    charger no longer reports."""
    store = await open_store(tmp_path)
    keys = [ConfigKey(f"Key{n}", str(n), n % 2 == 0) for n in range(40)]
    await store.record_configuration("CP1", keys, T0, complete=True)
    t1 = T0 + timedelta(minutes=5)
    again = [*keys[:10], ConfigKey("Key10", "changed", False), ConfigKey("key11", "11", True), *keys[12:39]]
    await store.record_configuration("CP1", again, t1, complete=True)  # Key39 gone, Key10 and Key11 changed

    def read_ats(conn: sqlite3.Connection) -> dict[str, str]:
        return {row[0]: row[1] for row in conn.execute("SELECT key, read_at FROM station_config WHERE station = ?",
                                                       ("CP1",))}

    stamps = await store.engine.read(read_ats)
    changed = {key for key, at in stamps.items() if at != stamps["Key0"]}
    assert changed == {"Key10", "key11"} and "Key39" not in stamps and len(stamps) == 39
    station = await store.get_station("CP1")
    assert station is not None and station.configuration_read_at == t1  # the full read's time is the station's
    assert {(k.key, k.value, k.readonly) for k in station.configuration} == \
        {(k.key, k.value, k.readonly) for k in again}
    await store.close()


@async_test
async def test_two_stations_with_the_same_list_share_one_snapshot(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    cards = [LocalListEntry(f"CARD{n:04d}", "Accepted", parent_id_tag="staff") for n in range(500)]
    first = await store.record_local_list("CP1", 3, cards)
    second = await store.record_local_list("CP2", 7, list(reversed(cards)))  # same content, other order

    assert first == second and len(first) == 64
    assert await count(store, "local_list_snapshots") == 1
    cp2 = await store.get_station("CP2")
    assert cp2 is not None and (cp2.local_list_version, cp2.local_list_hash) == (7, first)
    assert await store.get_local_list_snapshot(first) == tuple(cards)

    blocked = [*cards[1:], LocalListEntry("CARD0000", "Blocked")]
    await store.record_local_list("CP1", 4, blocked)
    assert await store.prune_local_list_snapshots() == 0  # CP2 still holds the first list
    await store.record_local_list_version("CP2", 9)  # a version we did not write: content unknown
    cp2 = await store.get_station("CP2")
    assert cp2 is not None and (cp2.local_list_version, cp2.local_list_hash) == (9, None)
    assert await store.prune_local_list_snapshots() == 1
    assert await store.get_local_list_snapshot(first) is None
    await store.close()


@async_test
async def test_a_pending_key_is_accepted_raw_or_hex_and_only_its_fingerprint_stays_once_confirmed(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path)
    await store.set_pending_key("CP1", KEY)
    station = await store.get_station("CP1")
    assert station is not None
    credentials = station.credentials
    assert credentials.pending_key == KEY and KEY.hex() not in repr(station)
    assert credentials.accepts(KEY) and credentials.accepts(KEY.hex().encode())
    assert not credentials.accepts(b"wrong-key-000000")

    assert await store.confirm_pending_key("CP1", T0)
    assert not await store.confirm_pending_key("CP1", T0)  # nothing pending any more
    await store.record_security_profile("CP1", 1)
    station = await store.get_station("CP1")
    assert station is not None and station.security_profile == 1
    credentials = station.credentials
    assert credentials.pending_key is None and credentials.confirmed_fingerprint is not None
    assert KEY.hex() not in credentials.confirmed_fingerprint
    assert credentials.accepts(KEY.hex().upper().encode()) and not credentials.accepts(b"other")
    await store.close()


@async_test
async def test_reservations_are_created_updated_and_listed_by_status(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    request = ReservationRequest("CP1", 1, "04A2B3C4", T0 + timedelta(minutes=30), "default")
    first = await store.create_reservation(request)
    second = await store.create_reservation(request)
    assert (first.id, second.id, first.status) == (1, 2, ReservationStatus.REQUESTED)

    updated = await store.update_reservation(first.id, ReservationStatus.ACCEPTED, expiry=T0 + timedelta(hours=1))
    assert updated is not None and updated.expiry == T0 + timedelta(hours=1)
    assert await store.update_reservation(99, ReservationStatus.CANCELLED) is None
    accepted = await store.list_reservations(station="CP1", statuses=[ReservationStatus.ACCEPTED])
    assert [r.id for r in accepted] == [1]
    assert await store.list_reservations(statuses=[]) == []
    assert await store.for_owner("other").get_reservation(1) is None
    await store.close()


@async_test
async def test_a_reservation_can_start_scheduled_move_connector_and_change_only_from_given_statuses(
        tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    later = ReservationRequest("CP1", 1, "04A2B3C4", T0 + timedelta(hours=2), "{}", ReservationStatus.SCHEDULED)
    first = await store.create_reservation(later)
    assert first.status == ReservationStatus.SCHEDULED
    moved = await store.update_reservation(first.id, ReservationStatus.ACCEPTED, connector_id=2,
                                           only_if=[ReservationStatus.SCHEDULED])
    assert moved is not None and (moved.status, moved.connector_id) == (ReservationStatus.ACCEPTED, 2)
    kept = await store.update_reservation(first.id, ReservationStatus.EXPIRED, only_if=[ReservationStatus.SCHEDULED])
    assert kept is not None and kept.status == ReservationStatus.ACCEPTED  # not applied: the caller sees why
    await store.close()


@async_test
async def test_audit_details_are_written_with_secrets_redacted_and_id_tags_masked(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.audit(
        AuditEntry(
            action="change_configuration",
            at=T0,
            station="CP1",
            git_revision="abc123",
            detail={"key": "AuthorizationKey", "old": "aa", "new": "bb", "result": "Accepted"},
        )
    )
    await store.audit(AuditEntry(action="send_local_list", at=T0, detail={"idTags": ["04A2B3C4"], "password": "pw"}))
    first, second = await store.list_audit()
    assert first.detail == {"key": "AuthorizationKey", "old": REDACTED, "new": REDACTED, "result": "Accepted"}
    assert (first.station, first.git_revision, first.owner) == ("CP1", "abc123", "acme")
    assert second.detail == {"idTags": ["****B3C4"], "password": REDACTED}
    assert [a.action for a in await store.list_audit(station="CP1")] == ["change_configuration"]
    await store.close()


@async_test
async def test_a_batch_commits_its_writes_together_or_not_at_all(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    batch = store.batch()
    batch.audit(AuditEntry("ChangeConfiguration", T0, {"change": {"field": "HeartbeatInterval"}}, station="CP1"))
    batch.record_configuration("CP1", [ConfigKey("HeartbeatInterval", "900", False)], T0)
    batch.put_state("ext/CP1", {"applied": {"HEARTBEATINTERVAL": "900"}})
    assert len(batch) == 3

    def disk_error(conn: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    store.engine.fault = disk_error
    try:
        await batch.commit()
        raise AssertionError("the commit should have failed")
    except StoreUnavailable:
        pass
    store.engine.fault = None
    assert await store.list_audit() == [] and await store.get_station("CP1") is None
    assert await store.get_state("ext/") == {}

    batch.audit(AuditEntry("ChangeConfiguration", T0, {"result": "Accepted"}, station="CP1"))
    batch.record_configuration("CP1", [ConfigKey("HeartbeatInterval", "900", False)], T0)
    batch.put_state("ext/CP1", {"applied": {}})
    await batch.commit()
    assert len(batch) == 0
    assert [a.action for a in await store.list_audit()] == ["ChangeConfiguration"]
    station = await store.get_station("CP1")
    assert station is not None and station.config_value("heartbeatinterval") == ConfigKey(
        "HeartbeatInterval", "900", False)
    assert await store.get_state("ext/") == {"ext/CP1": {"applied": {}}}
    await store.close()


@async_test
async def test_a_stored_snapshot_is_referenced_by_hash_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    cards = [LocalListEntry(f"CARD{n:04d}", "Accepted") for n in range(50)]
    digest = await store.record_local_list("CP1", 3, cards)
    assert await store.record_local_list_ref("CP2", 7, digest) is True
    cp2 = await store.get_station("CP2")
    assert cp2 is not None and (cp2.local_list_version, cp2.local_list_hash) == (7, digest)
    snapshot = await store.get_local_list_snapshot(digest)
    assert snapshot is not None and len(snapshot) == 50
    assert await store.record_local_list_ref("CP3", 1, "sha256:" + "0" * 64) is False
    assert await store.get_station("CP3") is None  # nothing written for an unknown snapshot
    await store.close()
