"""A whole controller on a copy of a bundled example repository, with its HTTP API on port 0, the stations'
AuthorizationKeys in the environment (as `chargeops demo` gives them) and simulated chargers; plus a small
blocking HTTP client for the tests to call it with (run it through ``asyncio.to_thread``).

The copy lives in the test's tmp dir, so a test can edit the owner's files and the controller follows.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.config import DesiredState, validate_paths
from controller.hw.server import ServerSettings
from controller.hw.sim.fleet import Fleet
from controller.runtime.controller import ApiSettings, Controller, ControllerSettings
from controller.runtime.reconcile import ReconcileSettings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "owner-configs"
API_TOKEN = "dashboard-test-token"


def copy_example(name: str, tmp: Path) -> Path:
    repo = tmp / name
    shutil.copytree(EXAMPLES / name, repo)
    return repo


def station_keys(desired: DesiredState, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh AuthorizationKey for every station, in the environment where its secret reference points."""
    passwords: dict[str, str] = {}
    for st in desired.stations.values():
        if st.authorization_key is not None and st.authorization_key.env:
            passwords[st.identity] = secrets.token_hex(16)
            monkeypatch.setenv(st.authorization_key.env, passwords[st.identity])
    return passwords


@dataclass
class Running:
    ctl: Controller
    desired: DesiredState
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        assert self.ctl.api is not None
        return str(self.ctl.api.url)

    @property
    def ocpp(self) -> str:
        return f"ws://127.0.0.1:{self.ctl.port}/ocpp"

    def fleet(self, *identities: str) -> Fleet:
        names = identities or tuple(sorted(st.identity for st in self.desired.stations.values()))
        return Fleet.build(self.ocpp, identities=names, passwords=self.passwords, time_scale=0.05,
                           reconnect_delay=0.1, call_timeout=5.0)


@contextlib.asynccontextmanager
async def running(repo: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    result = validate_paths([repo])
    assert result.desired is not None, [d.message for d in result.diagnostics]
    passwords = station_keys(result.desired, monkeypatch)
    ctl = Controller(ControllerSettings(
        repo=repo, db_path=db, server=ServerSettings(port=0, call_timeout=3.0),
        reconcile=ReconcileSettings(call_timeout=3.0, retry_base=0.2, retry_max=2.0),
        api=ApiSettings(port=0, tokens=(API_TOKEN,))))
    await ctl.start()
    try:
        yield Running(ctl, result.desired, passwords)
    finally:
        await ctl.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # JSON when the answer is JSON, else text

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


def call(method: str, url: str, *, headers: Mapping[str, str] | None = None, body: Any = None) -> Answer:
    """One request, no redirects followed; JSON bodies decoded."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            status, head, raw = resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        status, head, raw = exc.code, dict(exc.headers.items()), exc.read()
    ctype = next((v for k, v in head.items() if k.lower() == "content-type"), "")
    return Answer(status, head, json.loads(raw) if "json" in ctype and raw else raw.decode(errors="replace"))
