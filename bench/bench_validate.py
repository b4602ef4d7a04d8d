"""Benchmark a cold, complete `chargeops validate` against json.loads of the same content.

Targets (from the issue):
  * validate of a 10,000-station / 50,000-card / 200-group owner repo takes at most 10x the
    time json.loads needs for the same content as JSON, measured in the same run;
  * `chargeops validate` of the small example repo, interpreter start-up included, < 0.3 s;
  * the validate path imports none of the controller's network stack.

What runs:
  1. the repo is generated into a temporary directory (bench/gen_owner_repo.py), or --repo
     is used as is; it is converted once to JSON (one .json per .yaml, multi-document files
     become a JSON array) outside any timing;
  2. each measurement runs in a fresh interpreter (bench/_bench_child.py), so every run is
     cold and its memory is its own: (a) json.loads of every .json file, (b) PyYAML
     CSafeLoader load_all of every .yaml file, (c) `import controller.config` +
     `validate_paths([repo])`. Timed: import of the parser/validator, finding, reading and
     parsing/validating the files; not timed: interpreter start-up. Each is run --repeat
     times (default 3) and the best time is reported; peak RSS is the child's VmHWM (max
     over those runs) and the tracemalloc peak comes from one extra run with tracemalloc on
     (tracemalloc slows allocation, so that run is not timed);
  3. `.venv/bin/chargeops validate examples/owner-configs/workplace-garage` is timed as a
     whole process (start-up included), best of 5;
  4. sys.modules is checked after validate (and after the CLI path) for the network stack.

Exit status: 0 when the benchmark ran, whether or not the targets were met; 1 when
validation reported diagnostics or failed (the benchmark measures the success path).

Usage::

    .venv/bin/python bench/bench_validate.py            # 10,000 / 50,000 / 200
    .venv/bin/python bench/bench_validate.py --quick    # 1,000 / 5,000 / 20
    .venv/bin/python bench/bench_validate.py --repo PATH [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CHILD = BENCH_DIR / "_bench_child.py"
SMALL_REPO = Path("examples/owner-configs/workplace-garage")
RATIO_TARGET = 10.0
STARTUP_TARGET_S = 0.3
MIB = 1024 * 1024

sys.path.insert(0, str(BENCH_DIR))
from gen_owner_repo import generate  # noqa: E402


class BenchError(Exception):
    """A child failed, or validation did not succeed."""


@dataclass
class Measurement:
    mode: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    traced: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, Any]:
        return min(self.runs, key=lambda r: float(r["seconds"]))

    @property
    def seconds(self) -> float:
        return float(self.best["seconds"])

    @property
    def rss_peak_mib(self) -> float:
        return max(int(r["rss_peak_kib"]) for r in self.runs) / 1024

    @property
    def rss_start_mib(self) -> float:
        return min(int(r["rss_start_kib"]) for r in self.runs) / 1024

    @property
    def tracemalloc_mib(self) -> float:
        return int(self.traced.get("tracemalloc_peak", 0)) / MIB


def run_child(mode: str, target: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, str(CHILD), mode, str(target), *extra]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{mode} child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def check_diagnostics(result: dict[str, Any]) -> None:
    n = int(result["n_diagnostics"])
    if n:
        shown = "\n".join(f"  {d}" for d in result["diagnostics"])
        raise BenchError(f"validate_paths reported {n} diagnostic(s) for a repo that should be valid:\n{shown}")


def measure(mode: str, target: Path, repeat: int) -> Measurement:
    m = Measurement(mode)
    for _ in range(repeat):
        result = run_child(mode, target)
        if mode == "validate":
            check_diagnostics(result)
        m.runs.append(result)
    m.traced = run_child(mode, target, "--tracemalloc")
    return m


def convert_to_json(repo: Path, out: Path) -> tuple[int, int]:
    """One .json per .yaml with the same content (a JSON array for multi-document files)."""
    import yaml_rs

    files = nbytes = 0
    for path in sorted(repo.rglob("*")):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        if any(part.startswith(".") for part in path.relative_to(repo).parts):
            continue
        try:
            data = yaml_rs.loads(path.read_text(encoding="utf-8"), parse_datetime=False)
            text = json.dumps(data, ensure_ascii=False)
        except (UnicodeDecodeError, ValueError, TypeError, yaml_rs.YAMLDecodeError) as exc:
            print(f"  not converted to JSON: {path.relative_to(repo)}: {str(exc).splitlines()[0]}")
            continue
        dest = out / path.relative_to(repo).with_suffix(".json")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        files += 1
        nbytes += len(text.encode("utf-8"))
    return files, nbytes


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def chargeops_exe() -> Path:
    for candidate in (Path(sys.executable).parent / "chargeops", REPO_ROOT / ".venv" / "bin" / "chargeops"):
        if candidate.exists():
            return candidate
    raise BenchError("chargeops executable not found next to the interpreter or in .venv/bin")


def time_small_repo(runs: int) -> tuple[list[float], str]:
    """Wall time of whole `chargeops validate SMALL_REPO` processes; error text if one fails."""
    exe = chargeops_exe()
    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(exe), "validate", str(SMALL_REPO)], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return times, f"exit {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return times, ""


def print_profile(repo: Path, tmp: Path, top: int) -> None:
    prof = tmp / "validate.prof"
    run_child("validate", repo, f"--profile={prof}")
    print(f"\ncProfile of import controller.config + validate_paths (one cold child), top {top}:")
    for key in ("tottime", "cumulative"):
        print(f"\n-- sorted by {key}")
        stats = pstats.Stats(str(prof), stream=sys.stdout)
        stats.strip_dirs().sort_stats(key).print_stats(top)


def pass_fail(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, help="benchmark this owner repo instead of generating one")
    ap.add_argument("--stations", type=int, default=10_000)
    ap.add_argument("--cards", type=int, default=50_000)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="1,000 stations, 5,000 cards, 20 groups")
    ap.add_argument("--repeat", type=int, default=3, help="fresh child runs per measurement; best is kept")
    ap.add_argument("--small-runs", type=int, default=5, help="runs of the small-repo start-up timing")
    ap.add_argument("--profile", action="store_true", help="always print a cProfile of validate")
    ap.add_argument("--profile-top", type=int, default=10)
    args = ap.parse_args(argv)
    if args.quick:
        args.stations, args.cards, args.groups = 1_000, 5_000, 20

    try:
        with tempfile.TemporaryDirectory(prefix="chargeops-bench-") as tmp_name:
            return run(args, Path(tmp_name))
    except BenchError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace, tmp: Path) -> int:
    print("chargeops validate benchmark")
    print(f"  Python {platform.python_version()} ({platform.python_implementation()}) {sys.executable}")
    print(f"  CPU {cpu_model()}, {os.cpu_count()} logical CPUs; {platform.system()} {platform.release()}")
    if args.repo:
        repo = args.repo.resolve()
        print(f"  repo {repo} (given)")
    else:
        repo = tmp / "repo"
        t0 = time.perf_counter()
        generate(repo, args.stations, args.cards, args.groups, args.seed)
        print(
            f"  repo generated: {args.stations:,} stations, {args.cards:,} cards, {args.groups:,} groups,"
            f" seed {args.seed} ({time.perf_counter() - t0:.1f} s)"
        )
    json_dir = tmp / "json"
    n_json, json_bytes = convert_to_json(repo, json_dir)
    print(f"  converted to JSON outside the timing: {n_json} files, {json_bytes / 1e6:.1f} MB")
    print(f"  each measurement: {args.repeat} fresh child processes, best time kept; + 1 run with tracemalloc")
    sys.stdout.flush()

    m_val = measure("validate", repo, args.repeat)  # first: a repo that does not validate stops here
    m_json = measure("json", json_dir, args.repeat)
    m_yaml = measure("yaml", repo, args.repeat)

    small = REPO_ROOT / SMALL_REPO
    small_times: list[float] = []
    small_err = ""
    cli_forbidden: list[str] | None = None
    if small.is_dir():
        small_times, small_err = time_small_repo(args.small_runs)
        cli_forbidden = list(run_child("cli", small)["forbidden_modules"])

    y = m_yaml.best
    ratio = m_val.seconds / m_json.seconds
    ratio_yaml = m_yaml.seconds / m_json.seconds
    print()
    print(
        f"  content: {y['files']} YAML files, {y['docs']:,} documents, {y['bytes'] / 1e6:.1f} MB YAML;"
        f" {m_json.best['files']} JSON files, {m_json.best['bytes'] / 1e6:.1f} MB JSON"
    )
    print()
    header = f"  {'measurement':<44}{'best s':>8}{'runs s':>22}{'peak RSS MiB':>14}{'tracemalloc MiB':>17}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for label, m in (
        ("json.loads (all .json)", m_json),
        ("PyYAML CSafeLoader load_all (all .yaml)", m_yaml),
        ("validate: import controller.config + run", m_val),
    ):
        runs = " ".join(f"{float(r['seconds']):.3f}" for r in m.runs)
        print(f"  {label:<44}{m.seconds:>8.3f}{runs:>22}{m.rss_peak_mib:>14.1f}{m.tracemalloc_mib:>17.1f}")
    imp = float(m_val.best["import_seconds"])
    print(f"    of which import controller.config {imp:.3f} s, validate_paths {m_val.seconds - imp:.3f} s")
    print(f"  (peak RSS includes the interpreter baseline of ~{m_json.rss_start_mib:.1f} MiB at child start)")
    print()
    verdict = pass_fail(ratio <= RATIO_TARGET)
    print(f"  ratio validate / json.loads   {ratio:7.1f}x   target <= {RATIO_TARGET:.0f}x   {verdict}")
    print(f"  ratio PyYAML C / json.loads   {ratio_yaml:7.1f}x")
    print(f"  ratio validate / PyYAML C     {m_val.seconds / m_yaml.seconds:7.2f}x")
    if not small.is_dir():
        print(f"  small repo {SMALL_REPO}: MISSING, start-up not measured")
    elif small_err:
        print(f"  small repo: `chargeops validate {SMALL_REPO}` FAILED: {small_err}")
    else:
        best_small = min(small_times)
        print(
            f"  `chargeops validate {SMALL_REPO}` (whole process) {best_small:.3f} s best of {len(small_times)}"
            f"   target < {STARTUP_TARGET_S} s   {pass_fail(best_small < STARTUP_TARGET_S)}"
        )
    val_forbidden = list(m_val.best["forbidden_modules"])
    print(
        f"  network-stack modules after import controller.config + validate: {', '.join(val_forbidden) or 'none'}"
        f"   {pass_fail(not val_forbidden)}"
    )
    if cli_forbidden is not None:
        print(
            f"  network-stack modules after the CLI validate path: {', '.join(cli_forbidden) or 'none'}"
            f"   {pass_fail(not cli_forbidden)}"
        )

    if args.profile or ratio > RATIO_TARGET:
        print_profile(repo, tmp, args.profile_top)
    return 1 if small_err else 0


if __name__ == "__main__":
    sys.exit(main())
