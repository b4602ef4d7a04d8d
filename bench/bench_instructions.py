"""Instructions, not seconds: a fleet-wide change and the bare websockets baseline counted under callgrind.

The CPU-time benchmark (`bench_fleet_change.py`) is the target's measure, but on a shared machine the CPU time of
the same work moves by a third within minutes, so a 5 % change in the controller cannot be seen in it. Valgrind's
callgrind counts the instructions a process executes: the same code, inputs and interleaving give the same count
to within a fraction of a percent, whatever else the machine is doing. This script runs, each in a fresh process
under callgrind with instrumentation switched on only around the measured work (`callgrind_control -i on/off`):

  * `change`: the controller (directory source, real SQLite, uvloop as shipped) with N simulated chargers in a
    separate process (not counted), every one Synced; two warm-up changes of the profile's HeartbeatInterval, then
    one more, counted from the file write to every online station Synced on the new revision (the revision's
    loading, planning, the calls, persistence, status - every thread of the controller process);
  * `bare`: the baseline of `bench_fleet_change.py` - a plain websockets server on the standard asyncio loop
    (and, for information, on uvloop) sending the same ChangeConfiguration and GetConfiguration frames to N plain
    clients in a separate process, as many in flight as the controller's concurrency: one warm-up run, then one
    counted run of 2 round trips per client, the same number of round trips as the change.

Printed: instructions of each, per round trip, and the ratio change / bare. Kernel work (system calls, thread
switches, page faults) and memory stalls are not instructions of the process: the CPU-time benchmark remains the
measure of the target; this one tells whether a change to the code made the work smaller.

Usage::

    .venv/bin/python bench/bench_instructions.py              # 200 chargers (about a minute)
    .venv/bin/python bench/bench_instructions.py --stations 100

Needs valgrind (Debian: `apt-get install valgrind`). Exit status 0 when it ran, 1 when it could not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_fleet_change as fleet  # noqa: E402  (also puts the repository root on sys.path)
from _common import FLEET_RUNNER, Runner, measure_baseline, wait_synced, write_and_take  # noqa: E402

from controller.hw.server import ServerSettings  # noqa: E402
from controller.runtime import eventloop  # noqa: E402
from controller.runtime.controller import ApiSettings, Controller, ControllerSettings  # noqa: E402
from controller.runtime.reconcile import ReconcileSettings  # noqa: E402

CONCURRENCY = ReconcileSettings().max_concurrent_applies


def _instrument(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True,
                   capture_output=True)


async def _change(tmp: Path, n: int) -> None:
    names = fleet.identities(n)
    repo = tmp / "repo"
    fleet.write_repo(repo, names, fleet.FIRST_HEARTBEAT)
    ctl = Controller(ControllerSettings(
        repo=repo, db_path=tmp / "chargeops.db", server=ServerSettings(port=0, call_timeout=120.0),
        reconcile=ReconcileSettings(call_timeout=120.0), api=ApiSettings(port=0, tokens=("bench-token",))))
    await ctl.start()
    ids = tmp / "online.txt"
    ids.write_text("\n".join(names) + "\n", encoding="ascii")
    runner = await Runner.start(tmp / "runner.log", "fleet", f"ws://127.0.0.1:{ctl.port}/ocpp", str(ids),
                                "--seed", "1", script=FLEET_RUNNER)
    try:
        ready = await runner.recv(timeout=900.0)
        names = [name for name in names if name not in set(ready.get("offline", []))]
        left = await wait_synced(ctl, names, timeout=900.0)
        if left:
            raise SystemExit(f"{len(left)} stations not Synced after connecting")
        heartbeat = fleet.FIRST_HEARTBEAT
        for i in range(3):
            heartbeat += 300
            text = fleet.profile_text(heartbeat)  # the benchmark's own work, before the count starts
            await asyncio.sleep(1.0)
            if i == 2:
                _instrument(True)
            if not await write_and_take(ctl, repo / "profiles.yaml", text, 900.0):
                raise SystemExit(f"change {i + 1}: the revision was not taken")
            left = await wait_synced(ctl, names, timeout=900.0)
            if i == 2:
                _instrument(False)
            if left:
                raise SystemExit(f"change {i + 1}: {len(left)} stations not Synced")
        print(f"round trips {2 * len(names)}", flush=True)
    finally:
        await runner.kill()
        await ctl.stop()


async def _bare(tmp: Path, n: int) -> None:
    real = time.process_time
    calls = 0

    def process_time() -> float:  # measure_baseline reads the clock at each run's start and end: count run 2
        nonlocal calls
        calls += 1
        if calls == 3:
            _instrument(True)
        elif calls == 4:
            _instrument(False)
        return real()

    import _common
    _common.time.process_time = process_time  # type: ignore[attr-defined]
    await measure_baseline(tmp, n, CONCURRENCY, 2, 2, fleet.BASELINE_CALLS, os.environ.get("BENCH_LOOP", "asyncio"))
    print(f"round trips {2 * n}", flush=True)


def _child(mode: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chargeops-instr-") as d:
        tmp = Path(d)
        if mode == "change":
            eventloop.run(_change(tmp, n))
        else:
            eventloop.run(_bare(tmp, n), os.environ.get("BENCH_LOOP", "asyncio"))


def _count(mode: str, n: int, loop: str = "asyncio") -> tuple[int, int]:
    """(instructions, round trips) of one child run under callgrind."""
    with tempfile.TemporaryDirectory(prefix="chargeops-callgrind-") as d:
        out = Path(d) / "callgrind.out"
        env = {**os.environ, "BENCH_LOOP": loop}
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--child", mode, "--stations", str(n)],
            capture_output=True, text=True, env=env, timeout=3600)
        trips = re.search(r"round trips (\d+)", proc.stdout)
        if proc.returncode != 0 or trips is None or not out.exists():
            raise SystemExit(f"{mode}: the child failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                             f"{proc.stderr[-2000:]}")
        summary = subprocess.run(["callgrind_annotate", str(out)], capture_output=True, text=True).stdout
        total = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", summary)
        if total is None:
            raise SystemExit(f"{mode}: no total in callgrind's output")
        return int(total.group(1).replace(",", "")), int(trips.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=200)
    ap.add_argument("--child", choices=("change", "bare"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child, args.stations)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)")
        return 1
    print("chargeops instruction counts (callgrind): one fleet-wide change vs the bare websockets baseline")
    print(f"  {args.stations} chargers, concurrency {CONCURRENCY}; Python {sys.version.split()[0]}", flush=True)
    change, trips = _count("change", args.stations)
    print(f"  change: {change:,} instructions / {trips} round trips = {change // trips:,} per round trip", flush=True)
    bare, bare_trips = _count("bare", args.stations)
    print(f"  bare websockets (asyncio): {bare:,} / {bare_trips} = {bare // bare_trips:,} per round trip", flush=True)
    loop = eventloop.resolve()
    uv, uv_trips = _count("bare", args.stations, loop)
    print(f"  bare websockets ({loop}, for information): {uv:,} / {uv_trips} = {uv // uv_trips:,}"
          " per round trip")
    print(f"  ratio change / bare: {(change / trips) / (bare / bare_trips):.2f}x"
          f" (target for CPU time: <= {fleet.CPU_RATIO_TARGET:g}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
