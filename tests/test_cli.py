"""The `chargeops` command line (controller/cli.py): exit codes, output formats, and `render`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "owner-configs"
GARAGE = EXAMPLES / "workplace-garage"

OWNER = """\
apiVersion: chargeops.io/v1
kind: Owner
metadata:
  name: test-owner
spec:
  displayName: Test Owner B.V.
  timezone: Europe/Amsterdam
  country: NL
  currency: EUR
  ocpi: {countryCode: NL, partyId: TST}
  plans:
    - name: standard
  billing: {enabled: true}
"""

STATION = """\
apiVersion: chargeops.io/v1
kind: Station
metadata:
  name: st-1
spec:
  identity: ST-1
  activation: {plan: standard}
  tariff: standard
  evses:
    - id: 1
      plugs:
        - {standard: IEC_62196_T2, format: SOCKET, powerType: AC_3_PHASE, maxVoltage: 230, maxAmperage: 16}
"""

TARIFF = """\
apiVersion: chargeops.io/v1
kind: Tariff
metadata:
  name: standard
spec:
  price: {perKwh: "0.35"}
"""


@pytest.fixture
def valid_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "valid"
    repo.mkdir()
    (repo / "owner.yaml").write_text(OWNER)
    (repo / "station.yaml").write_text(STATION)
    (repo / "tariff.yaml").write_text(TARIFF)
    return repo


@pytest.fixture
def invalid_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "invalid"
    repo.mkdir()
    (repo / "owner.yaml").write_text(OWNER)
    station = STATION.replace("tariff: standard", "tarif: standard").replace(
        "maxAmperage: 16", "maxAmperage: 16, maxPowerKW: 11")
    (repo / "station.yaml").write_text(station)
    (repo / "tariff.yaml").write_text(TARIFF.replace("EUR", "EUX") + "  currency: EUX\n")
    private = STATION.replace("st-1", "st-2").replace("ST-1", "ST-2") + "  visibility: private\n"
    (repo / "private.yaml").write_text(private)
    return repo


# --- validate -------------------------------------------------------------------------------------------


def test_validate_exits_0_and_says_ok_for_a_valid_repository(valid_repo: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(valid_repo)]) == 0
    out = capsys.readouterr().out
    assert out == "OK: 3 file(s), 3 document(s) valid\n"


def test_validate_exits_1_and_lists_every_error_with_its_position(invalid_repo: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(invalid_repo)]) == 1
    out = capsys.readouterr().out
    station = invalid_repo / "station.yaml"
    assert f"{station}:8:3: error: spec.tarif: unknown field 'tarif' [unknown-field]" in out
    assert '    fix: did you mean "tariff"?' in out
    assert f"{station}:12:" in out  # maxPowerKW, in the flow mapping of line 12
    assert "\033[" not in out  # no colour when not on a terminal
    assert out.rstrip().endswith("3 error(s), 1 warning(s) in 4 file(s), 4 document(s)")


def test_validate_takes_single_files_as_well_as_directories(valid_repo: Path) -> None:
    assert main(["validate", str(valid_repo / "owner.yaml"), str(valid_repo / "tariff.yaml")]) == 0


def test_validate_of_a_missing_path_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [[], ["validate", "--format", "xml", "."], ["frobnicate"], ["render"], ["validate", "--no-such-flag"],
     ["run", ".", "--listen-backlog", "0"], ["run", ".", "--listen-backlog", "many"]],
    ids=["no-command", "bad-format", "unknown-command", "render-without-path", "unknown-flag", "backlog-zero",
         "backlog-not-a-number"],
)
def test_a_usage_error_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: chargeops" in capsys.readouterr().err


GITHUB_LINE = re.compile(r"^::(error|warning) file=([^,]+),line=(\d+),col=(\d+),title=chargeops ([a-z-]+)::(.+)$")


def test_validate_github_format_writes_one_annotation_per_problem(invalid_repo: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "github", str(invalid_repo)]) == 1
    lines = capsys.readouterr().out.splitlines()
    annotations = [GITHUB_LINE.match(line) for line in lines[:-1]]
    assert all(annotations), lines
    got = [(m.group(1), Path(m.group(2)).name, int(m.group(3)), int(m.group(4)), m.group(5))
           for m in annotations if m]
    assert ("error", "station.yaml", 8, 3, "unknown-field") in got
    assert ("warning", "private.yaml", 13, 15, "private-without-audience") in got
    assert [g[0] for g in got].count("error") == 3
    assert lines[-1] == "chargeops validate: 3 error(s), 1 warning(s)"
    body = next(m.group(6) for m in annotations if m and m.group(5) == "unknown-field")
    assert body == "spec.tarif: unknown field 'tarif' — fix: did you mean \"tariff\"?"


def test_validate_json_format_carries_every_diagnostic(invalid_repo: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(invalid_repo)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["valid"], report["files"], report["documents"], report["errors"], report["warnings"]) == (
        False, 4, 4, 3, 1)
    first = next(d for d in report["diagnostics"] if d["code"] == "unknown-field" and d["field"] == "spec.tarif")
    assert first == {"severity": "error", "code": "unknown-field", "file": str(invalid_repo / "station.yaml"),
                     "line": 8, "column": 3, "document": 0, "field": "spec.tarif",
                     "message": "unknown field 'tarif'", "hint": 'did you mean "tariff"?'}


def test_validate_json_format_of_a_valid_repository_says_valid(valid_repo: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(valid_repo)]) == 0
    assert json.loads(capsys.readouterr().out) == {"valid": True, "files": 3, "documents": 3, "errors": 0,
                                                   "warnings": 0, "diagnostics": []}


# --- render --------------------------------------------------------------------------------------------


def garage_id_tags() -> list[str]:
    tags = []
    for path in GARAGE.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and isinstance(doc.get("spec"), dict):
                tags += [c["idTag"] for c in doc["spec"].get("cards", [])]
    return tags


def test_render_json_shows_the_effective_keys_and_only_masked_id_tags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GARAGE)]) == 0, "the workplace-garage example must validate"
    capsys.readouterr()
    assert main(["render", str(GARAGE), "--station", "l0-dc-1", "--format", "json"]) == 0
    text = capsys.readouterr().out
    view = json.loads(text)
    [st] = view["stations"]
    assert (st["name"], st["identity"], st["operative"], st["securityProfile"]) == (
        "l0-dc-1", "PCG-UTR-L0-DC1", True, 2)
    assert st["profiles"] == ["dc-fast"]  # selected by its label power: dc
    config = st["ocppConfiguration"]
    assert config["HeartbeatInterval"] == "300"  # owner defaults
    assert config["MeterValueSampleInterval"] == "30"  # dc-fast profile over the owner's 60
    assert config["LocalAuthListEnabled"] == "true"  # derived
    assert st["derivedKeys"]["LocalAuthListEnabled"] == "offlineAuthorization is true"
    assert st["credentials"] == "env:CHARGEOPS_KEY_PCG_UTR_L0_DC1"
    entries = st["localList"]["entries"]
    assert st["localList"]["size"] == len(entries) > 0
    tags = garage_id_tags()
    assert len(tags) >= 10
    for tag in tags:
        assert tag not in text and tag.lower() not in text, tag
    assert all(re.fullmatch(r"\*+.{4}", e["idTag"]) for e in entries)


def test_render_with_boot_information_applies_the_profiles_that_select_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(GARAGE), "--station", "PCG-UTR-L0-DC1", "--format", "json"]) == 0
    before = json.loads(capsys.readouterr().out)["stations"][0]
    assert before["pendingBootProfiles"] == ["alfen-eve-double"]
    argv = ["render", str(GARAGE), "--station", "l0-dc-1", "--format", "json",
            "--boot", "vendor=Alfen BV", "--boot", "model=NG910-60023"]
    assert main(argv) == 0
    after = json.loads(capsys.readouterr().out)["stations"][0]
    assert after["pendingBootProfiles"] == []
    assert after["profiles"] == ["alfen-eve-double", "dc-fast"]
    assert after["ocppConfiguration"]["WebSocketPingInterval"] == "60"


def test_render_human_masks_id_tags_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(GARAGE)]) == 0
    text = capsys.readouterr().out
    assert 'station "l0-dc-1" (identity PCG-UTR-L0-DC1), operative' in text
    for tag in garage_id_tags():
        assert tag not in text, tag


def test_render_of_an_unknown_station_exits_1(valid_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(valid_repo), "--station", "nope"]) == 1
    assert "no station named 'nope'" in capsys.readouterr().err


def test_render_of_an_invalid_repository_exits_1_with_the_diagnostics_on_stderr(
        invalid_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(invalid_repo), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown field 'tarif'" in captured.err


# --- the installed command ---------------------------------------------------------------------------


def test_the_chargeops_command_runs_as_a_process_and_returns_the_exit_code(valid_repo: Path,
                                                                           invalid_repo: Path) -> None:
    script = Path(sys.executable).with_name("chargeops")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "controller.cli"]
    ok = subprocess.run([*cmd, "validate", str(valid_repo)], capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (0, "OK: 3 file(s), 3 document(s) valid\n")
    bad = subprocess.run([*cmd, "validate", "--format", "json", str(invalid_repo)], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["errors"] == 3


def test_run_takes_the_listen_backlog_from_the_command_line_or_the_default() -> None:
    from controller.cli import _server_settings, build_parser
    from controller.hw.server import ServerSettings

    given = _server_settings(build_parser().parse_args(["run", ".", "--listen-backlog", "4096"]))
    default = _server_settings(build_parser().parse_args(["run", "."]))
    assert isinstance(given, ServerSettings) and isinstance(default, ServerSettings)
    assert given.backlog == 4096
    assert default.backlog == ServerSettings().backlog == 1024
