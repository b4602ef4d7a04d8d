"""`chargeops run` killed (SIGKILL) under load and restarted on the same store.

Four simulated chargers start and stop sessions on two connectors each with meter values flowing, while
a rollout is paused on its canary wave. The controller process is killed without warning in the middle
of it, the chargers carry on offline (authorising from their local lists and queueing their transaction
messages), and a new process is started on the same database. Then:

- every StartTransaction a charger got an answer for exists once in the store, under the id it was
  given; every answered StopTransaction is recorded once, with its meter reading, and has its billing
  record (one version 1, never twice); no orphan, no extra row; every answered MeterValues sample is
  stored;
- the observed state (configuration, local-list version and snapshot) is intact in the store after the
  kill, and the restarted controller does not re-send the lists;
- the rollout resumes where it was: still paused on the same wave of the same revision, and once
  resumed the later waves get the change once each.
"""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from controller.hw.simulator import SimulatedCharger
from controller.store.sqlite import SqliteStore
from tests.config.ownerrepo import card, dump, group, owner, profile, station, tariff
from tests.integration.harness import run, wait_until

from .kit import drive, end_sessions, free_port, nothing_lost_nothing_twice, start_controller, stop_controller

TOKEN = "chaos-token"
NAMES = ["st-1", "st-2", "st-3", "st-4"]
IDS = [n.upper() for n in NAMES]


def _profiles(heartbeat: int) -> str:
    return dump(profile("fleet", {"ocppConfiguration": {"HeartbeatInterval": heartbeat,
                                                        "MeterValueSampleInterval": 10}},
                        selector={"labels": {"fleet": "a"}}))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: the directory source ignores it
    tmp.write_text(text)
    tmp.replace(path)


def _api(port: int, path: str, method: str = "GET") -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"{}" if method == "POST" else None,
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


async def api(port: int, path: str, method: str = "GET") -> Any:
    return await asyncio.to_thread(_api, port, path, method)


async def api_ready(port: int) -> bool:
    try:
        await api(port, "/api/v1/status")
    except (OSError, urllib.error.URLError):
        return False
    return True


async def _synced_on(port: int, revision: str | None = None) -> bool:
    status = await api(port, "/api/v1/status")
    stations = status["stationStatus"]
    return len(stations) == len(IDS) and all(
        s["sync"] == "Synced" and s["lastAppliedRevision"] == (revision or status["revision"]) for s in stations)


def test_a_controller_killed_under_load_loses_and_duplicates_nothing_and_resumes_its_rollout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _write(repo / "owner.yaml", dump(owner(rollout={"waves": [25, 100], "failureThresholdPercent": 10,
                                                    "minStationsForWaves": 2})))
    _write(repo / "cards.yaml", dump(group("drivers", *(card(f"CARD-{i:04}", f"drv-{i}") for i in range(8)))))
    _write(repo / "profiles.yaml", _profiles(300))
    _write(repo / "tariffs.yaml", dump(tariff("standard", price={"sessionFee": "0.50", "perKwh": "0.30"})))
    _write(repo / "stations.yaml", dump(*(station(n, labels={"fleet": "a"}, offlineAuthorization=True,
                                                  tariff="standard") for n in NAMES)))
    db, log = tmp_path / "chargeops.db", tmp_path / "controller.log"
    port, api_port = free_port(), free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"

    async def scenario() -> None:
        proc = start_controller(repo, db, port, api_port=api_port, token=TOKEN, log=log)
        cps = [SimulatedCharger(i, url, time_scale=0.01, reconnect_delay=0.05, call_timeout=2.0) for i in IDS]
        stop_load = asyncio.Event()
        drivers: list[asyncio.Task[None]] = []
        try:
            for cp in cps:
                await cp.start()
            await wait_until(lambda: api_ready(api_port), 15, "the controller's API")
            await wait_until(lambda: _synced_on(api_port), 15, "revision 1 synced")
            lists_sent = {cp.identity: len(cp.calls("SendLocalList")) for cp in cps}
            assert all(lists_sent.values())
            drivers = [asyncio.create_task(drive(cp, (f"CARD-{2 * k:04}", f"CARD-{2 * k + 1:04}"), stop_load))
                       for k, cp in enumerate(cps)]
            await asyncio.sleep(0.6)

            # revision 2 while every charger refuses changes: the canary wave fails and the rollout pauses
            for cp in cps:
                cp.faults.reject_calls = True
            first_revision = (await api(api_port, "/api/v1/status"))["revision"]
            _write(repo / "profiles.yaml", _profiles(120))

            async def paused() -> bool:
                rollout = (await api(api_port, "/api/v1/status"))["rollout"]
                return bool(rollout and rollout["paused"] and rollout["revision"] != first_revision)

            await wait_until(paused, 15, "the rollout paused on its canary")
            before_kill = (await api(api_port, "/api/v1/status"))["rollout"]
            assert before_kill["wave"] == 1 and before_kill["failed"]
            await asyncio.sleep(0.4)  # sessions and meter values keep flowing

            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
            await asyncio.sleep(0.5)  # the chargers carry on offline
            assert sum(len(cp.tx_queue) for cp in cps) > 0, "no transaction message waited for the restart"
            await _observed_state_survived(db, cps)

            proc = start_controller(repo, db, port, api_port=api_port, token=TOKEN, log=log)
            await wait_until(lambda: all(cp.online and cp.connect_count >= 2 for cp in cps), 20, "reconnected")
            await wait_until(lambda: api_ready(api_port), 10, "the restarted controller's API")
            after = (await api(api_port, "/api/v1/status"))["rollout"]
            assert {k: after[k] for k in ("revision", "wave", "paused", "failed", "stations")} == {
                k: before_kill[k] for k in ("revision", "wave", "paused", "failed", "stations")}
            assert all(cp.boot_count == 1 for cp in cps)  # a reconnect is not a boot

            stop_load.set()
            await asyncio.gather(*drivers)
            await end_sessions(cps)

            # the operator resumes: the later waves get the change once, the canary its retry
            for cp in cps:
                cp.faults.reject_calls = False
            await api(api_port, "/api/v1/rollout/resume", "POST")
            await wait_until(lambda: _synced_on(api_port, before_kill["revision"]), 20, "revision 2 everywhere")
            canary = before_kill["failed"]
            for cp in cps:
                sent = [c for c in cp.calls("ChangeConfiguration") if c.payload == {
                    "key": "HeartbeatInterval", "value": "120"}]
                assert len(sent) == (2 if cp.identity in canary else 1), cp.identity
                assert cp.config.get("HeartbeatInterval") == "120"
                assert len(cp.calls("SendLocalList")) == lists_sent[cp.identity]  # lists not re-sent
        finally:
            stop_load.set()
            for task in drivers:
                task.cancel()
            await asyncio.gather(*drivers, return_exceptions=True)
            for cp in cps:
                await cp.stop()
            await asyncio.to_thread(stop_controller, proc)
        assert proc.returncode == 0, log.read_text()[-2000:]
        await _nothing_lost_nothing_twice(db, cps)

    run(scenario(), timeout=75)


async def _observed_state_survived(db: Path, cps: list[SimulatedCharger]) -> None:
    """With the controller dead: what the store holds about each charger is what the charger holds."""
    store = await SqliteStore.open(db, owner="test-owner")
    try:
        for cp in cps:
            rec = await store.get_station(cp.identity)
            assert rec is not None and rec.boot is not None
            assert rec.local_list_version == cp.local_list.version > 0
            assert rec.local_list_hash is not None
            snapshot = await store.get_local_list_snapshot(rec.local_list_hash)
            assert snapshot is not None and {e.id_tag for e in snapshot} == set(cp.local_list.entries)
            config = {k.key: k.value for k in rec.configuration}
            for key in ("HeartbeatInterval", "MeterValueSampleInterval"):
                assert config[key] == cp.config.get(key), (cp.identity, key)
    finally:
        await store.close()


async def _nothing_lost_nothing_twice(db: Path, cps: list[SimulatedCharger]) -> None:
    store = await SqliteStore.open(db, owner="test-owner")
    try:
        sessions, offline, samples = await nothing_lost_nothing_twice(store, cps, billing=True)
    finally:
        await store.close()
    assert sessions >= 8, "the load was too light to mean anything"
    print(f"\n{sessions} sessions ({offline} started offline), {samples} meter samples answered")
