"""The followed git remote fails: the last good revision stays in force and the condition is reported;
the controller recovers by itself when the remote is back; a force-push to an older commit makes that
commit win, and the chargers converge to it.

A full `Controller` (git source with a short fetch interval, the OCPP server, the reconciler and the HTTP
API) follows a real bare repository on disk; "unreachable" is the repository moved away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller.hw.simulator import SimulatedCharger
from controller.runtime.controller import ApiSettings, Controller, ControllerSettings, GitSettings
from controller.runtime.sources import GitSource
from controller.runtime.status import Sync
from tests.config.ownerrepo import dump, owner, profile, station
from tests.integration.harness import run, wait_until
from tests.runtime.kit import Remote

from .kit import FAST_RECONCILE, FAST_SERVER

TOKEN = "git-chaos-token"
IDS = ("ST-1", "ST-2")


def files(heartbeat: int) -> dict[str, str]:
    return {"owner.yaml": dump(owner(rollout={"waves": [100]})),
            "profiles.yaml": dump(profile("all", {"ocppConfiguration": {"HeartbeatInterval": heartbeat}},
                                          selector={"labels": {"x": "y"}})),
            "stations.yaml": dump(station("st-1", labels={"x": "y"}), station("st-2", labels={"x": "y"}))}


@contextlib.asynccontextmanager
async def following(tmp: Path, remote: Remote) -> AsyncIterator[Controller]:
    ctl = Controller(ControllerSettings(
        repo=None, git=GitSettings(remote.url, branch="main", interval=0.4, workdir=tmp / "git"),
        db_path=tmp / "chargeops.db", server=FAST_SERVER, reconcile=FAST_RECONCILE,
        api=ApiSettings(port=0, tokens=(TOKEN,))))
    await ctl.start()
    try:
        yield ctl
    finally:
        await ctl.stop()


def _status(ctl: Controller) -> Any:
    req = urllib.request.Request(ctl.api.url + "/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def synced_on(ctl: Controller, revision: str, identities: tuple[str, ...] = IDS) -> bool:
    rec = ctl.reconciler
    assert rec is not None
    return all((s := rec.status.get(i)) is not None and s.sync is Sync.SYNCED
               and s.last_applied_revision == revision for i in identities)


def test_an_unreachable_remote_keeps_the_last_good_revision_reports_it_and_recovers_by_itself(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(files(300), "first")

    async def scenario() -> None:
        async with following(tmp_path, remote) as ctl:
            source = ctl.source
            assert isinstance(source, GitSource)
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as c1, \
                    SimulatedCharger("ST-2", url, time_scale=0.01, reconnect_delay=0.05) as c2:
                good = await asyncio.to_thread(remote.commit, files(60), "faster heartbeats")
                await wait_until(lambda: synced_on(ctl, good), 15, "the good commit applied")
                sent = [len(c.calls("ChangeConfiguration")) for c in (c1, c2)]

                away = remote.bare.with_name("remote-moved.git")
                remote.bare.rename(away)  # the remote is gone
                await wait_until(lambda: source.status.consecutive_failures >= 2, 10, "failed fetches")
                assert ctl.desired.revision == good and source.status.revision == good
                assert not source.status.ok and source.status.last_error
                status = await asyncio.to_thread(_status, ctl)
                assert status["revision"] == good and status["source"]["ok"] is False
                assert status["source"]["last_error"] and status["source"]["consecutive_failures"] >= 2
                # the fleet stays on the last good revision, untouched
                assert synced_on(ctl, good)
                assert [len(c.calls("ChangeConfiguration")) for c in (c1, c2)] == sent
                assert c1.config.get("HeartbeatInterval") == c2.config.get("HeartbeatInterval") == "60"

                away.rename(remote.bare)  # it comes back: the next periodic fetch succeeds
                await wait_until(lambda: source.status.ok, 10, "the remote reachable again")
                status = await asyncio.to_thread(_status, ctl)
                assert status["source"]["ok"] is True and status["source"]["consecutive_failures"] == 0
                newer = await asyncio.to_thread(remote.commit, files(45), "even faster")
                await wait_until(lambda: synced_on(ctl, newer), 15, "commits followed again")
                assert c1.config.get("HeartbeatInterval") == c2.config.get("HeartbeatInterval") == "45"

    run(scenario(), timeout=45)


def test_a_force_push_to_an_older_commit_wins_and_the_chargers_converge_to_it(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    old = remote.commit(files(300), "first")

    async def scenario() -> None:
        async with following(tmp_path, remote) as ctl:
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as c1, \
                    SimulatedCharger("ST-2", url, time_scale=0.01, reconnect_delay=0.05) as c2:
                await wait_until(lambda: synced_on(ctl, old), 15, "the first commit applied")
                await asyncio.to_thread(remote.commit, files(60), "second")
                newest = await asyncio.to_thread(remote.commit, files(30), "third")
                await wait_until(lambda: synced_on(ctl, newest), 15, "the newest commit applied")
                assert c1.config.get("HeartbeatInterval") == "30"

                await asyncio.to_thread(remote.force_push, old)  # history rewritten back to the first commit
                await wait_until(lambda: ctl.desired.revision == old, 10, "the force-pushed commit loaded")
                await wait_until(lambda: synced_on(ctl, old), 15, "the chargers back on the older commit")
                assert c1.config.get("HeartbeatInterval") == c2.config.get("HeartbeatInterval") == "300"
                status = await asyncio.to_thread(_status, ctl)
                assert status["revision"] == old and status["source"]["revision"] == old
                assert status["sync"] == {"Synced": 2}

    run(scenario(), timeout=45)


def test_a_controller_restarted_while_the_remote_is_unreachable_serves_the_commit_it_last_fetched(
        tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(files(300), "first")
    good = remote.commit(files(60), "second")

    async def scenario() -> None:
        async with following(tmp_path, remote) as ctl:
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as cp:
                await wait_until(lambda: synced_on(ctl, good, ("ST-1",)), 15, "applied")
                assert cp.config.get("HeartbeatInterval") == "60"
        away = remote.bare.with_name("remote-moved.git")
        remote.bare.rename(away)  # the git host is down while the controller restarts

        async with asyncio.timeout(15), following(tmp_path, remote) as ctl:  # starts: it does not wait for git
            source = ctl.source
            assert isinstance(source, GitSource)
            assert ctl.desired.revision == good
            assert not source.status.ok and "local mirror" in (source.status.last_error or "")
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as cp, \
                    SimulatedCharger("ST-2", url, time_scale=0.01, reconnect_delay=0.05):
                await wait_until(lambda: synced_on(ctl, good), 15, "served on the last fetched commit")
                status = await asyncio.to_thread(_status, ctl)
                assert status["source"]["ok"] is False and status["revision"] == good
                away.rename(remote.bare)
                await wait_until(lambda: source.status.ok, 10, "the remote reachable again")
                newer = await asyncio.to_thread(remote.commit, files(45), "third")
                await wait_until(lambda: synced_on(ctl, newer), 15, "caught up")
                assert cp.config.get("HeartbeatInterval") == "45"

    run(scenario(), timeout=60)
