"""The event loop the controller runs on: uvloop where installed, the standard loop on request, a clear
error for a loop that cannot be used; and `chargeops run` really serves chargers on the loop it names."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.hw.simulator import SimulatedCharger
from controller.runtime import eventloop
from tests.config.ownerrepo import dump, owner, station


async def _loop_name() -> str:
    return eventloop.name()


def test_uvloop_is_the_default_where_installed_and_the_standard_loop_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.uvloop_available()  # a dependency on Linux and macOS
    assert eventloop.resolve() == "uvloop"
    assert eventloop.run(_loop_name()) == "uvloop"
    monkeypatch.setenv(eventloop.ENV, "auto")
    assert eventloop.resolve() == "uvloop"
    monkeypatch.setattr(eventloop, "uvloop_available", lambda: False)  # e.g. Windows
    assert eventloop.resolve() == "asyncio"
    assert eventloop.run(_loop_name()) == "asyncio"


def test_a_loop_is_chosen_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.uvloop_available()
    assert eventloop.run(_loop_name(), "uvloop") == "uvloop"
    monkeypatch.setenv(eventloop.ENV, " UVLoop ")
    assert eventloop.run(_loop_name()) == "uvloop"
    assert eventloop.run(_loop_name(), "asyncio") == "asyncio"  # the argument wins over the environment


def test_uvloop_asked_for_but_missing_is_an_error_that_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventloop, "uvloop_available", lambda: False)
    assert eventloop.resolve("asyncio") == "asyncio"
    with pytest.raises(eventloop.EventLoopError, match=r"uvloop is not installed \(pip install uvloop; it is not "
                                                       r"available on Windows\), or choose 'asyncio'"):
        eventloop.resolve("uvloop")


def test_an_unknown_loop_is_an_error_that_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "trio")
    with pytest.raises(eventloop.EventLoopError, match=r"'trio' is not one of auto, asyncio, uvloop \(from "
                                                       + eventloop.ENV):
        eventloop.resolve()
    coro = _loop_name()
    with pytest.raises(eventloop.EventLoopError):
        eventloop.run(coro)
    assert coro.cr_frame is None  # closed, not left un-awaited


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_chargeops_run_serves_a_charger_on_the_loop_it_names(loop: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "owner.yaml").write_text(dump(owner()))
    (repo / "stations.yaml").write_text(dump(station("st-1")))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != eventloop.ENV}
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", "run", str(repo), "--db",
                             str(tmp_path / "c.db"), "--port", str(port), "--event-loop", loop],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        async def boot() -> str:
            async with SimulatedCharger("ST-1", f"ws://127.0.0.1:{port}/ocpp", time_scale=0.01,
                                        reconnect_delay=0.05) as cp:
                await cp.wait_online(20)
                reply = await cp.send("Authorize", {"idTag": "NOBODY"})
                return str(reply["idTagInfo"]["status"])

        assert asyncio.run(boot()) == "Invalid"
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert f"(event loop: {loop})" in err
    assert proc.returncode == 0, err


def test_chargeops_run_with_a_bad_loop_in_the_environment_exits_2_and_says_why(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "owner.yaml").write_text(dump(owner()))
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "controller.cli", "run", str(repo), "--db", str(tmp_path / "c.db")],
                          env={**os.environ, eventloop.ENV: "trio"}, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "chargeops run: event loop 'trio' is not one of auto, asyncio, uvloop" in done.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "c.db").exists()  # nothing was started
