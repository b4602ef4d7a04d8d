"""Every bundled example: the valid owner repositories load cleanly, and each invalid one gives exactly
the diagnostics recorded in its `expected.txt` (golden files; refresh with CHARGEOPS_UPDATE_GOLDEN=1 and
review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.config import validate_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "owner-configs"
VALID = sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name != "invalid")
INVALID = sorted(p for p in (EXAMPLES / "invalid").iterdir() if p.is_dir())


def test_there_are_at_least_two_valid_and_twenty_invalid_examples() -> None:
    assert len(VALID) >= 2
    assert len(INVALID) >= 20


@pytest.mark.parametrize("repo", VALID, ids=lambda p: p.name)
def test_valid_example_repository_has_no_errors_or_warnings(repo: Path) -> None:
    result = validate_paths([repo])
    assert [d.location() + " " + d.message for d in result.diagnostics] == []
    assert result.desired is not None
    assert result.desired.stations


def _render(repo: Path) -> str:
    result = validate_paths([repo])
    lines = []
    for d in result.diagnostics:
        file = Path(d.file)
        rel = file.relative_to(repo).as_posix() if file.is_relative_to(repo) else file.name
        where = f"{rel}:{d.line}:{d.column}" if d.line is not None else rel
        field = f" {d.field}:" if d.field else ""
        lines.append(f"{where}: {d.severity} {d.code}{field} {d.message}" + (f" | fix: {d.hint}" if d.hint else ""))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("repo", INVALID, ids=lambda p: p.name)
def test_invalid_example_gives_exactly_the_expected_diagnostics(repo: Path) -> None:
    got = _render(repo).replace(str(repo) + "/", "").replace(str(repo), ".")
    expected_file = repo / "expected.txt"
    if os.environ.get("CHARGEOPS_UPDATE_GOLDEN"):
        expected_file.write_text(got, encoding="utf-8")
    assert expected_file.exists(), f"no golden file for {repo.name}: run with CHARGEOPS_UPDATE_GOLDEN=1"
    assert got == expected_file.read_text(encoding="utf-8")
    assert "error" in got  # an invalid example must fail


def test_the_many_errors_example_reports_every_error_in_one_run() -> None:
    result = validate_paths([EXAMPLES / "invalid" / "many-errors"])
    assert len(result.errors) >= 4
    assert len({d.file for d in result.errors}) >= 2
