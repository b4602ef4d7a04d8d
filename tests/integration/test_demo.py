"""The quick start's main job: `chargeops demo` on the bundled example brings every simulated charger
online through the real central system and records the sessions its drivers start."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "owner-configs" / "workplace-garage"


def test_the_demo_connects_every_station_and_records_sessions(tmp_path: Path) -> None:
    from controller.runtime.demo import demo

    out = io.StringIO()
    code = asyncio.run(demo(EXAMPLE, out, duration=10, sessions=3, db=tmp_path / "demo.db"))
    text = out.getvalue()
    assert code == 0, text
    assert text.count("registration Accepted") == 8
    assert "sessions recorded in the store: 3" in text
    assert "stopped" in text


def test_the_demo_refuses_an_invalid_repository(tmp_path: Path) -> None:
    from controller.runtime.demo import demo

    bad = EXAMPLE.parent / "invalid" / "unknown-tariff-reference"
    out = io.StringIO()
    assert asyncio.run(demo(bad, out, duration=1, sessions=1, db=tmp_path / "d.db")) == 1
    assert "unknown tariff" in out.getvalue()
