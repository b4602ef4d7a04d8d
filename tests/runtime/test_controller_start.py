"""A controller restarted while its directory is invalid starts on the last good revision, reports the
error, and takes the directory again once it is fixed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.config.diagnostics import ConfigError
from controller.hw.server import ServerSettings
from controller.runtime.controller import Controller, ControllerSettings

from .kit import run, station, tiny_repo, write_files


def settings(repo: Path, db: Path) -> ControllerSettings:
    return ControllerSettings(repo=repo, db_path=db, server=ServerSettings(port=0))


def test_a_restart_on_an_invalid_directory_keeps_the_last_good_revision(tmp_path: Path) -> None:
    repo, db = tmp_path / "repo", tmp_path / "state" / "c.db"
    repo.mkdir()
    db.parent.mkdir()
    write_files(repo, tiny_repo())

    async def main() -> None:
        ctl = Controller(settings(repo, db))
        await ctl.start()
        good = ctl.desired.revision
        await ctl.stop()
        assert good is not None

        write_files(repo, {"stations/st-2.yaml": station("st-2", plan="no-such-plan")})
        ctl = Controller(settings(repo, db))
        await ctl.start()
        try:
            assert ctl.desired.revision == good
            failure = ctl.desired.last_failure
            assert failure is not None and failure.revision != good
            assert any("no-such-plan" in d.message for d in failure.errors)
            write_files(repo, {"stations/st-2.yaml": station("st-2")})
            for _ in range(200):
                if ctl.desired.revision != good:
                    break
                await asyncio.sleep(0.05)
            assert ctl.desired.revision != good and ctl.desired.last_failure is None
            desired = ctl.desired.desired
            assert desired is not None and "st-2" in desired.stations
        finally:
            await ctl.stop()

    run(main())


def test_a_first_start_on_an_invalid_directory_still_refuses_to_start(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    write_files(repo, {**tiny_repo(), "stations/st-2.yaml": station("st-2", plan="no-such-plan")})

    async def main() -> None:
        with pytest.raises(ConfigError):
            await Controller(settings(repo, tmp_path / "c.db")).start()

    run(main())
