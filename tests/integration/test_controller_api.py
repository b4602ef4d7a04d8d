"""The whole controller process as owners run it: a watched directory or a followed git branch, the
HTTP API (status, station detail, audit, observed export, metrics, webhook), and `chargeops plan` /
`chargeops status` against it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from controller.hw.server import ServerSettings
from controller.hw.simulator import SimulatedCharger
from controller.runtime.controller import ApiSettings, Controller, ControllerSettings, GitSettings
from controller.runtime.reconcile import ReconcileSettings
from controller.runtime.sources import sign
from controller.runtime.status import Sync
from tests.config.ownerrepo import dump, owner, profile, station
from tests.runtime.kit import Remote

from .harness import run, wait_until

TOKEN = "s3cret-token"


def repo_files(hb: int) -> dict[str, str]:
    return {"owner.yaml": dump(owner(rollout={"waves": [100]})),
            "profiles.yaml": dump(profile("all", {"ocppConfiguration": {"HeartbeatInterval": hb}},
                                          selector={"labels": {"x": "y"}})),
            "stations.yaml": dump(station("st-1", labels={"x": "y"}), station("st-2", labels={"x": "y"}))}


def write(root: Path, files: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)


@contextlib.asynccontextmanager
async def controller(tmp: Path, *, repo: Path | None = None, git: GitSettings | None = None,
                     webhook: str | None = None) -> AsyncIterator[Controller]:
    ctl = Controller(ControllerSettings(
        repo=repo, git=git, db_path=tmp / "chargeops.db", server=ServerSettings(port=0, call_timeout=3.0),
        reconcile=ReconcileSettings(call_timeout=3.0, retry_base=0.2, retry_max=2.0),
        api=ApiSettings(port=0, tokens=(TOKEN,), webhook_secret=webhook)))
    await ctl.start()
    try:
        yield ctl
    finally:
        await ctl.stop()


def get(ctl: Controller, path: str, token: str | None = TOKEN) -> tuple[int, Any]:
    req = urllib.request.Request(ctl.api.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
            ctype = resp.headers.get("Content-Type", "")
            return resp.status, json.loads(body) if "json" in ctype else body.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(ctl: Controller, path: str, body: bytes = b"{}", headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(ctl.api.url + path, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def synced(ctl: Controller, *identities: str) -> bool:
    assert ctl.reconciler is not None
    revision = ctl.desired.revision
    return all((s := ctl.reconciler.status.get(i)) is not None and s.sync is Sync.SYNCED
               and s.last_applied_revision == revision for i in identities)


def test_a_watched_directory_is_followed_and_the_api_shows_status_detail_audit_and_metrics(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo, repo_files(300))

    async def scenario() -> None:
        async with controller(tmp_path, repo=repo) as ctl:
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as c1, \
                    SimulatedCharger("ST-2", url, time_scale=0.01, reconnect_delay=0.05):
                await wait_until(lambda: synced(ctl, "ST-1", "ST-2"), 15, "synced")
                write(repo, repo_files(45))  # an owner edits the directory
                await wait_until(lambda: c1.config.get("HeartbeatInterval") == "45", 15, "change applied")
                await wait_until(lambda: synced(ctl, "ST-1", "ST-2"), 15, "synced again")
                code, status = await asyncio.to_thread(get, ctl, "/api/v1/status")
                assert code == 200 and status["revision"] == ctl.desired.revision
                assert status["sync"] == {"Synced": 2} and status["health"] == {"Healthy": 2}
                assert (await asyncio.to_thread(get, ctl, "/api/v1/status", None))[0] == 401
                assert (await asyncio.to_thread(get, ctl, "/api/v1/status", "wrong"))[0] == 401
                code, detail = await asyncio.to_thread(get, ctl, "/api/v1/stations/ST-1")
                assert code == 200 and detail["desiredConfiguration"]["HeartbeatInterval"] == "45"
                assert detail["observedConfiguration"]["HeartbeatInterval"] == "45"
                assert detail["plan"]["actions"] == []
                code, audit = await asyncio.to_thread(get, ctl, "/api/v1/audit?station=ST-1")
                assert code == 200
                assert any(a["detail"].get("change", {}).get("new") == "45" for a in audit)
                code, metrics = await asyncio.to_thread(get, ctl, "/metrics", None)
                assert code == 200
                assert 'chargeops_stations{sync="Synced",health="Healthy"} 2' in metrics
                assert 'chargeops_applies_total{action="ChangeConfiguration",result="Accepted"}' in metrics
                assert "chargeops_store_bytes" in metrics and "chargeops_commit_to_converged_seconds_count" in metrics
                assert "chargeops_apply_slots_in_use 0" in metrics  # converged: nobody holds a slot
                assert "chargeops_apply_slots_given_back 0" in metrics

                def value(name: str) -> float:
                    return float(next(line.rsplit(" ", 1)[1] for line in metrics.splitlines()
                                      if line.startswith(name + " ")))

                # every station's change counted: the answer, the apply's duration, the convergence and its delay
                assert value('chargeops_applies_total{action="ChangeConfiguration",result="Accepted"}') >= 2
                assert value("chargeops_reconcile_seconds_count") >= 2 and value("chargeops_converged_total") >= 2
                assert value("chargeops_commit_to_converged_seconds_count") >= 2
                # the chargers' own calls, answered: how long each waited and was handled, by action
                assert value('chargeops_incoming_call_seconds_count{action="BootNotification"}') >= 2
                assert value('chargeops_incoming_call_wait_seconds_count{action="BootNotification"}') >= 2

    run(scenario(), timeout=60)


def test_plan_against_the_controller_or_its_export_shows_what_a_merge_would_change(tmp_path: Path) -> None:
    from controller.cli import main

    repo = tmp_path / "repo"
    write(repo, repo_files(300))
    proposal = tmp_path / "proposal"
    write(proposal, repo_files(120))

    async def scenario() -> None:
        async with controller(tmp_path, repo=repo) as ctl:
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05), \
                    SimulatedCharger("ST-2", url, time_scale=0.01, reconnect_delay=0.05):
                await wait_until(lambda: synced(ctl, "ST-1", "ST-2"), 15, "synced")
                code, export = await asyncio.to_thread(get, ctl, "/api/v1/observed")
                assert code == 200 and len(export["stations"]) == 2
                (tmp_path / "observed.json").write_text(json.dumps(export))
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    changed = await asyncio.to_thread(main, ["plan", str(proposal), "--against", ctl.api.url,
                                                             "--token", TOKEN])
                assert changed == 2, out.getvalue()
                text = out.getvalue()
                assert '# station "st-1" (identity ST-1) will be updated' in text and "HeartbeatInterval" in text
                assert "300 -> 120" in text and "Plan:" in text
                with contextlib.redirect_stdout(io.StringIO()):
                    same = await asyncio.to_thread(main, ["plan", str(repo), "--against",
                                                          str(tmp_path / "observed.json")])
                assert same == 0
                md = io.StringIO()
                with contextlib.redirect_stdout(md):
                    await asyncio.to_thread(main, ["plan", str(proposal), "--against", str(tmp_path / "observed.json"),
                                                   "--format", "markdown"])
                assert md.getvalue().lstrip().startswith("#") or "|" in md.getvalue()
                status_out = io.StringIO()
                with contextlib.redirect_stdout(status_out):
                    assert await asyncio.to_thread(main, ["status", "--controller", ctl.api.url, "--token",
                                                          TOKEN]) == 0
                assert "ST-1" in status_out.getvalue() and "Synced" in status_out.getvalue()

    run(scenario(), timeout=60)


def test_a_followed_git_branch_is_fetched_now_on_a_signed_webhook(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit(repo_files(300), "first")
    secret = "hook-secret"

    async def scenario() -> None:
        git = GitSettings(remote.url, branch="main", interval=3600, workdir=tmp_path / "git")
        async with controller(tmp_path, git=git, webhook=secret) as ctl:
            url = f"ws://127.0.0.1:{ctl.port}/ocpp"
            async with SimulatedCharger("ST-1", url, time_scale=0.01, reconnect_delay=0.05) as cp:
                await wait_until(lambda: synced(ctl, "ST-1"), 15, "synced")
                first = ctl.desired.revision
                sha = await asyncio.to_thread(remote.commit, repo_files(77), "faster heartbeats")
                body = json.dumps({"ref": "refs/heads/main"}).encode()
                assert await asyncio.to_thread(post, ctl, "/api/v1/webhook/git", body,
                                               {"X-Hub-Signature-256": "sha256=bad"}) == 401
                assert await asyncio.to_thread(post, ctl, "/api/v1/webhook/git", body,
                                               {"X-Hub-Signature-256": sign(secret, body)}) == 202
                await wait_until(lambda: ctl.desired.revision == sha, 15, "new commit loaded")
                assert first != sha
                await wait_until(lambda: cp.config.get("HeartbeatInterval") == "77", 15, "applied")
                # a bad commit is refused with its file and line, and changes nothing
                await asyncio.to_thread(remote.commit, {"stations.yaml": "kind: [\n"}, "oops")
                ctl.source.trigger()  # type: ignore[union-attr]
                await wait_until(lambda: ctl.desired.last_failure is not None, 15, "bad commit seen")
                assert ctl.desired.revision == sha
                code, status = await asyncio.to_thread(get, ctl, "/api/v1/status")
                assert code == 200 and status["failedRevision"]["errors"][0]["location"].startswith("stations.yaml:")

    run(scenario(), timeout=90)
