"""Fleet and ``chargeops simulate``: many chargers against one central system, bounded connects."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.hw.simulator import Fleet, simulate_main

from .kit import CsmsStub, run


def test_a_fleet_connects_every_charger_with_bounded_concurrency() -> None:
    async def scenario() -> None:
        async with CsmsStub() as csms:
            fleet = Fleet.build(csms.url, 6, prefix="F-", connect_concurrency=2, time_scale=0.01)
            try:
                assert await fleet.start(timeout=5) == 6
                assert {p["chargePointSerialNumber"] for p in csms.events_of("BootNotification")} == {
                    f"F-000{i}" for i in range(1, 7)
                }
                assert fleet["F-0003"].online and len(fleet) == 6
            finally:
                await fleet.stop()

    run(scenario())


def test_fleet_passwords_come_per_station_with_a_default() -> None:
    fleet = Fleet.build("ws://x/ocpp", identities=["A", "B"], passwords={"A": "a" * 16, "*": "d" * 16})
    assert [c.password for c in fleet] == ["a" * 16, "d" * 16]


@pytest.fixture
def csms_in_a_thread() -> Iterator[CsmsStub]:
    """A stub running on its own event loop, so simulate_main can own the main thread's loop."""
    ready = threading.Event()
    stop: dict[str, asyncio.Event] = {}
    holder: dict[str, CsmsStub] = {}
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        stop["event"] = asyncio.Event()
        async with CsmsStub(passwords={"CLI-2": "0123456789abcdef"}) as csms:
            holder["csms"] = csms
            ready.set()
            await stop["event"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    yield holder["csms"]
    loop.call_soon_threadsafe(stop["event"].set)
    thread.join(5)
    loop.close()


def test_simulate_main_runs_a_fleet_for_a_while_with_passwords_from_a_file(
    csms_in_a_thread: CsmsStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = tmp_path / "passwords"
    secrets.write_text("# identity password\nCLI-2 0123456789abcdef\n")
    code = simulate_main(
        ["--url", csms_in_a_thread.url, "--identities", "CLI-1,CLI-2", "--password-from", str(secrets),
         "--duration", "0.5", "--time-scale", "0.0005", "--session-rate", "7200", "--cards", "C1", "--seed", "1"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "2/2 chargers online" in out and "sessions started" in out
    booted = {p["chargePointSerialNumber"] for p in csms_in_a_thread.events_of("BootNotification")}
    assert booted == {"CLI-1", "CLI-2"}
    assert csms_in_a_thread.events_of("Authorize")  # drivers came and presented cards


def test_simulate_main_reports_a_bad_password_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "passwords"
    bad.write_text("only-an-identity\n")
    assert simulate_main(["--url", "ws://127.0.0.1:1/ocpp", "--password-from", str(bad)]) == 1
    assert "expected 'IDENTITY PASSWORD'" in capsys.readouterr().err
