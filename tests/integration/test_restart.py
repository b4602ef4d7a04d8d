"""The controller killed (SIGKILL) and restarted: no answered transaction is lost, sessions resume.

Runs the real `chargeops run` as a child process on a real SQLite file and kills it without warning."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from controller.hw.simulator import SimulatedCharger
from controller.store.records import TransactionStatus
from controller.store.sqlite import SqliteStore
from tests.config.ownerrepo import card, dump, group, owner, station

from .harness import run, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(repo: Path, db: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "controller.cli", "run", str(repo), "--db", str(db),
                             "--port", str(port), "--log-level", "warning"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_controller_killed_and_restarted_loses_no_answered_transaction(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "owner.yaml").write_text(dump(owner()))
    (repo / "cards.yaml").write_text(dump(group("drivers", *(card(f"CARD-{i:04}", f"drv-{i}") for i in range(5)))))
    (repo / "stations.yaml").write_text(dump(station("st-1"), station("st-2")))
    db = tmp_path / "chargeops.db"
    port = _free_port()
    url = f"ws://127.0.0.1:{port}/ocpp"

    async def scenario() -> None:
        proc = _start(repo, db, port)
        answered: dict[int, str] = {}
        try:
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as a, \
                    SimulatedCharger("ST-2", url, time_scale=0.01, reconnect_delay=0.05) as b:
                await a.wait_online(15)
                await b.wait_online(15)
                for i, cp in enumerate((a, b, a, b)):
                    reply = await cp.send("StartTransaction", {"connectorId": 1 + i // 2, "idTag": f"CARD-{i:04}",
                                                               "meterStart": 100 * i, "timestamp": cp.timestamp()})
                    answered[reply["transactionId"]] = cp.identity
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                proc = _start(repo, db, port)
                await wait_until(lambda: a.online and b.online and a.connect_count >= 2 and b.connect_count >= 2,
                                 20, "chargers back")
                assert a.boot_count == 1 and b.boot_count == 1  # a reconnect is not a boot
                # a stop for an answered transaction finds it (not an orphan) after the restart
                first = min(answered)
                cp = a if answered[first] == "ST-1" else b
                await cp.send("StopTransaction", {"transactionId": first, "meterStop": 999,
                                                  "timestamp": cp.timestamp()})
                # the restarted controller rebuilt its session index: the card still running elsewhere is busy
                busy = await a.send("Authorize", {"idTag": "CARD-0001"})
                assert busy["idTagInfo"]["status"] == "ConcurrentTx"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        store = await SqliteStore.open(db, owner="test-owner")
        try:
            txs = {t.id: t for t in await store.list_transactions()}
            assert set(answered) <= set(txs)
            assert txs[min(answered)].status == TransactionStatus.STOPPED
            assert not [t for t in txs.values() if t.status == TransactionStatus.ORPHAN]
        finally:
            await store.close()

    run(scenario(), timeout=60)


def test_sigterm_stops_the_controller_cleanly(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "owner.yaml").write_text(dump(owner()))
    (repo / "stations.yaml").write_text(dump(station("st-1")))
    port = _free_port()
    proc = _start(repo, tmp_path / "db.sqlite", port)

    async def wait_listening() -> None:  # started, not just spawned (imports take longer on a busy machine)
        for _ in range(300):
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise AssertionError("the controller did not start listening")

    asyncio.run(wait_listening())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
