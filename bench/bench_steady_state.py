"""Benchmark the steady state of a large fleet: driver-facing latency, durable stops, queues, database growth.

Targets (issue 7, "Benchmarks"), with N simulated chargers (default 10,000) for a bounded time (default
120 s): 40 % of the chargers in a session, MeterValues every 60 s with 4-8 sampled values, 3 session
starts per second (and as many stops), 1 % of the chargers reconnecting per minute:
  * p99 Authorize and StartTransaction <= 300 ms (charger side, send -> answer);
  * p99 StopTransaction <= 500 ms (the controller answers once the stop is durable: answered = durable);
  * queues bounded (reconciler queue depth, store writer queue, asyncio tasks sampled every second);
  * database growth per day printed (``store.size_bytes()`` before / after the window, extrapolated).
``--time-factor F`` compresses time: every charger period (heartbeat, meter interval, connection
timeout) is divided by F and every rate (starts, reconnects) multiplied by F, so a window of S seconds
stands for S x F seconds of fleet time; growth per day is computed per fleet day. Default F = 1 (real).

What runs:
  1. the baseline, first: a plain websockets server in a child process (``_scale_runner.py bare``: the
     controller's websocket options; every CALL answered with a small canned CALLRESULT after
     json.loads, StartTransaction with a transactionId) and the same chargers and workload as below;
  2. an owner repo in a temporary directory: N stations (two EVSEs, security profile 1, a key each from
     the environment), restricted to one access group of N cards (at least 2,000), offline authorization
     off (the local list is bench_access_change.py's subject; here every Authorize is online), Flex
     Billing on with one per-kWh tariff, HeartbeatInterval 300, MeterValueSampleInterval 60;
  3. the controller in THIS process (directory mode, default settings); the chargers in 2-4 child
     processes (``_scale_runner.py chargers``): they connect (all Synced), then 40 % of them start a
     session, spread over one meter interval (not measured), then the measured window runs; each runner
     times its own calls (``SimulatedCharger.send``: send -> answer);
  4. in the window this process samples, every second, the reconciler's queue depth, the store writer's
     queue, the number of asyncio tasks and of connections; the database is checkpointed (TRUNCATE, from
     a separate connection) before and after, so ``size_bytes()`` is the file without a stale WAL;
  5. when a target is missed (or with ``--profile``) one more window of ``--profile-seconds`` runs with
     the controller under cProfile (main-thread CPU) and the top functions are printed.

Exit status: 0 when the benchmark ran, whether or not the targets were met; 1 when it could not run.

Usage::

    .venv/bin/python bench/bench_steady_state.py            # 10,000 chargers, 120 s
    .venv/bin/python bench/bench_steady_state.py --quick    # 1,000 chargers, 30 s
    .venv/bin/python bench/bench_steady_state.py --stations 5000 --seconds 60 --time-factor 4 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    MIB,
    SCALE_RUNNER,
    BenchError,
    LogTally,
    LookTimes,
    LoopLag,
    Runner,
    RunnerPool,
    Table,
    card_tag,
    child_env,
    export_keys,
    fmt_s,
    identities,
    machine_lines,
    pass_fail,
    percentile,
    print_profile,
    profiling,
    raise_nofile,
    run_in_tmp,
    run_storm,
    runner_count,
    say,
    scale_parser,
    split,
    status_kib,
    write_scale_repo,
)
from _handler_trace import HandlerTrace

from controller.hw.server import ServerSettings
from controller.runtime.controller import Controller, ControllerSettings

SESSION_SHARE = 0.40
STARTS_PER_SECOND = 3.0
RECONNECT_SHARE_PER_MINUTE = 0.01
METER_INTERVAL_S = 60
P99_DRIVER_MS = 300.0
P99_STOP_MS = 500.0


def main(argv: list[str] | None = None) -> int:
    ap = scale_parser(__doc__, quick="1,000 chargers, 30 s", profile="profile one more window")
    ap.add_argument("--seconds", type=float, default=120.0, help="the measured window, wall seconds")
    ap.add_argument("--time-factor", type=float, default=1.0, help="compress fleet time by this factor")
    ap.add_argument("--profile-seconds", type=float, default=30.0)
    ap.add_argument("--trace", action="store_true",
                    help="time each store call of Authorize / Start / Stop answers in the window (diagnosis: the"
                         " wrapping adds a little to every store call; see bench/_handler_trace.py)")
    args = ap.parse_args(argv)
    if args.quick:
        args.stations, args.seconds = 1_000, 30.0
    args.processes = args.processes or runner_count(args.stations)
    return run_in_tmp("steady", lambda tmp: run(args, tmp))


@dataclass
class Window:
    """What the runners measured in one window (latencies in seconds)."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    starts: int = 0
    stops: int = 0
    reconnects: int = 0
    skipped: int = 0
    active: int = 0
    online: int = 0
    queued: int = 0
    seconds: float = 0.0

    @classmethod
    def merge(cls, replies: Sequence[dict[str, Any]], seconds: float) -> Window:
        w = cls(seconds=seconds)
        for r in replies:
            for action, values in r["latency"].items():
                w.latency.setdefault(action, []).extend(values)
            w.errors.update(r["errors"])
            for name in ("starts", "stops", "reconnects", "skipped", "active", "online", "queued"):
                setattr(w, name, getattr(w, name) + int(r[name]))
        return w

    def p(self, action: str, pct: float) -> float:
        return percentile(self.latency.get(action, []), pct) * 1000

    def count(self, action: str) -> int:
        return len(self.latency.get(action, []))

    def line(self, action: str) -> str:
        if not self.latency.get(action):
            return "-"
        return f"{self.p(action, 50):.1f} / {self.p(action, 99):.1f} / {self.p(action, 100):.0f} ms"


async def workload(pool: RunnerPool, args: argparse.Namespace, cards: list[str], t_start: float,
                   label: str) -> None:
    """40 % of the chargers in a session, started over one meter interval (not measured)."""
    parts = split(cards, len(pool.runners))
    sizes = [len(r) for r in parts]
    share = [round(args.stations * SESSION_SHARE * s / len(cards)) for s in sizes]
    seconds = METER_INTERVAL_S / args.time_factor
    replies = await asyncio.gather(*(
        r.request({"cmd": "prefill", "sessions": k, "seconds": seconds, "cards": part}, timeout=seconds + 240)
        for r, k, part in zip(pool.runners, share, parts, strict=True)))
    active = sum(int(r["active"]) for r in replies)
    errors = Counter[str]()
    for r in replies:
        errors.update(r.get("errors", {}))
    say(f"{label}: {active} sessions running ({sum(share)} wanted){'; ' + str(dict(errors)) if errors else ''}",
        t_start)


async def window(pool: RunnerPool, args: argparse.Namespace, seconds: float) -> Window:
    n_runners = len(pool.runners)
    reconnect_rate = args.stations * RECONNECT_SHARE_PER_MINUTE / 60 * args.time_factor
    cmd = {"cmd": "steady", "seconds": seconds, "start_rate": STARTS_PER_SECOND * args.time_factor / n_runners,
           "reconnect_rate": reconnect_rate / n_runners}
    replies = await pool.request(cmd, timeout=seconds + 180)
    return Window.merge(replies, seconds)


@dataclass
class Samples:
    """Queue depths sampled every second in the window."""

    at: list[float] = field(default_factory=list)
    values: dict[str, list[int]] = field(default_factory=dict)

    def add(self, t: float, **values: int) -> None:
        self.at.append(t)
        for k, v in values.items():
            self.values.setdefault(k, []).append(v)

    def bounded(self, name: str) -> tuple[bool, str]:
        """Bounded: the second half's peak is no more than 1.5x the first half's + 50 (no upward trend)."""
        v = self.values.get(name, [])
        if len(v) < 4:
            return True, "-"
        half = len(v) // 2
        first, second = max(v[:half]), max(v[half:])
        ok = second <= 1.5 * first + 50
        return ok, f"{min(v)} / {statistics.median(v):g} / {max(v)} (peaks {first} -> {second})"


async def sample(ctl: Controller, samples: Samples, stop: asyncio.Event) -> None:
    t0 = time.perf_counter()
    while not stop.is_set():
        engine = getattr(ctl.store, "_engine", None)
        writer_queue = getattr(engine, "_queue", None)
        samples.add(
            time.perf_counter() - t0,
            reconcile_queue=ctl.reconciler.queue_depth if ctl.reconciler else 0,
            store_writer_queue=writer_queue.qsize() if writer_queue is not None else -1,
            asyncio_tasks=len(asyncio.all_tasks()),
            connections=len(ctl.central.connections) if ctl.central else 0,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


class ServedTimes:
    """The controller's side of its answers while it runs: (seconds waited behind the charger's earlier calls,
    seconds from the handler's start to the answer written) per action, from `CentralSystem.on_handled`. Next to
    the charger-side times it tells a tail in the controller from one in the charger processes or the machine."""

    def __init__(self, ctl: Controller) -> None:
        assert ctl.central is not None
        self._central = ctl.central
        self._before = ctl.central.on_handled
        self.times: dict[str, list[tuple[float, float]]] = {}
        ctl.central.on_handled = self._record

    def _record(self, action: str, waited: float, handled: float) -> None:
        self.times.setdefault(action, []).append((waited, handled))
        if self._before is not None:
            self._before(action, waited, handled)

    def stop(self) -> None:
        self._central.on_handled = self._before

    def line(self, action: str) -> str:
        rows = self.times.get(action, [])
        if not rows:
            return "-"
        total = sorted(w + h for w, h in rows)
        p99 = total[min(len(total) - 1, int(len(total) * 0.99))]
        return (f"{total[len(total) // 2] * 1e3:.1f} / {p99 * 1e3:.1f} / {total[-1] * 1e3:.0f} ms"
                f" (waited <= {max(w for w, _ in rows) * 1e3:.0f} ms)")


def table_sizes(db: Path) -> dict[str, tuple[int, int]]:
    """Bytes (dbstat pages) and rows of every table and index, from a read-only connection."""
    out: dict[str, tuple[int, int]] = {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)) as conn:
            sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
            for name, size in sizes.items():
                rows = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] if name in tables else -1
                out[name] = (int(size), int(rows))
    except sqlite3.Error:
        pass
    return out


def growth_lines(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], top: int = 8) -> str:
    grown = sorted(((after[k][0] - before.get(k, (0, 0))[0], k) for k in after), reverse=True)[:top]
    parts = []
    for delta, name in grown:
        if delta <= 0:
            continue
        rows = after[name][1] - before.get(name, (0, 0))[1]
        parts.append(f"{name} +{delta / 1024:,.0f} KiB" + (f" (+{rows:,} rows)" if after[name][1] >= 0 else ""))
    return ", ".join(parts) or "none"


def checkpoint(db: Path) -> str:
    """Fold the WAL into the database file (a separate connection; the controller's writer keeps going)."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=10.0)) as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return "busy" if busy else "ok"
    except sqlite3.Error as exc:
        return f"failed: {exc}"


async def baseline(args: argparse.Namespace, tmp: Path, names: list[str], cards: list[str],
                   t_start: float) -> Window:
    bare = await Runner.start(tmp / "bare-server.log", "bare", "--backlog", str(ServerSettings().backlog),
                              script=SCALE_RUNNER, env=child_env())  # the controller's listen backlog
    pool: RunnerPool | None = None
    try:
        ready = await bare.recv(60.0)
        url = f"ws://127.0.0.1:{ready['port']}/ocpp"
        pool = await RunnerPool.start(tmp, "bare-chargers", url, names, args.processes,
                                      "--time-scale", str(1 / args.time_factor), env=child_env())
        storm = await run_storm(pool, "connect", timeout=60 + 0.05 * len(names))
        if not storm.all_ready:
            raise BenchError(f"baseline: {storm.ready} of {len(names)} chargers online")
        await workload(pool, args, cards, t_start, "baseline")
        w = await window(pool, args, args.seconds)
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await bare.quit()
    return w


async def run(args: argparse.Namespace, tmp: Path) -> int:
    t_start = time.perf_counter()
    tally = LogTally()
    logging.basicConfig(level=logging.WARNING, handlers=[tally])
    nofile = raise_nofile()
    n = args.stations
    names = identities(n)
    cards = [card_tag(i) for i in range(max(n, 2_000))]
    print("chargeops steady-state benchmark")
    for line in machine_lines():
        print("  " + line)
    print(f"  {n:,} chargers in {args.processes} processes, window {args.seconds:g} s, time factor"
          f" {args.time_factor:g} (fleet periods / {args.time_factor:g}, rates x {args.time_factor:g});"
          f" RLIMIT_NOFILE {nofile}", flush=True)

    base = await baseline(args, tmp, names, cards, t_start)
    say(f"baseline window: {base.starts} starts, {base.reconnects} reconnects, Authorize p99"
        f" {base.p('Authorize', 99):.1f} ms", t_start)

    repo = tmp / "repo"
    export_keys(names)
    write_scale_repo(repo, names, groups={"drivers": cards}, access=lambda i, name: ["drivers"],
                     offline_authorization=False, billing=True,
                     settings={"HeartbeatInterval": 300, "MeterValueSampleInterval": METER_INTERVAL_S})
    db = tmp / "chargeops.db"
    trace = HandlerTrace() if args.trace else None
    if trace is not None:
        trace.install()  # before the controller: each connection's handlers are bound as it connects
    ctl = Controller(ControllerSettings(repo=repo, db_path=db, server=ServerSettings(port=0)))
    await ctl.start()
    say(f"controller up on port {ctl.port} (revision {ctl.desired.revision})", t_start)
    pool: RunnerPool | None = None
    samples = Samples()
    prof = None
    prof_window: Window | None = None
    try:
        assert ctl.reconciler is not None and ctl.store is not None
        looks = LookTimes(ctl.reconciler)
        pool = await RunnerPool.start(tmp, "chargers", f"ws://127.0.0.1:{ctl.port}/ocpp", names, args.processes,
                                      "--time-scale", str(1 / args.time_factor), env=child_env())
        storm = await run_storm(pool, "connect", timeout=60 + 0.05 * n, ctl=ctl, looks=looks, names=names)
        say(f"fleet connected in {fmt_s(storm.connect_s)}, Synced in {fmt_s(storm.synced_s)}"
            f" ({storm.synced}/{n})", t_start)
        if storm.synced < n:
            raise BenchError(f"{n - storm.synced} stations not Synced after connecting")
        await workload(pool, args, cards, t_start, "controller")
        ck0 = checkpoint(db)
        size0 = await ctl.store.size_bytes()
        tables0 = table_sizes(db)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(ctl, samples, stop))
        ctl.store.engine.slowest_commit(reset=True)
        served = ServedTimes(ctl)  # the controller's side of each answer, for the window
        cpu0 = time.process_time()
        if trace is not None:
            trace.on = True
        with LoopLag() as lag:
            w = await window(pool, args, args.seconds)
        cpu = time.process_time() - cpu0
        if trace is not None:
            trace.on = False
        slowest = ctl.store.engine.slowest_commit(reset=True)
        served.stop()
        stop.set()
        await sampler
        ck1 = checkpoint(db)
        size1 = await ctl.store.size_bytes()
        tables1 = table_sizes(db)
        rss = status_kib("VmRSS")
        say(f"window done: {w.starts} starts, {w.stops} stops, {w.reconnects} reconnects; controller CPU"
            f" {cpu:.1f} s ({cpu / args.seconds * 100:.0f} % of a core)", t_start)
        missed = not targets(w)[0]
        if args.profile or missed:
            say(f"profiling a {args.profile_seconds:g} s window" + (" (a target is missed)" if missed else ""),
                t_start)
            with profiling(True) as prof:
                prof_window = await window(pool, args, args.profile_seconds)
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await ctl.stop()
        if trace is not None:
            trace.uninstall()
    say("chargers and controller stopped", t_start)

    fleet_seconds = args.seconds * args.time_factor
    growth_day = (size1 - size0) / fleet_seconds * 86400
    print()
    table = Table()
    ok_all, checks = targets(w)
    table.add("sessions running / chargers online (end)", f"{w.active:,} / {w.online:,}",
              f"{base.active:,} / {base.online:,}", f"{SESSION_SHARE:.0%} in a session")
    table.add("session starts / stops / reconnects in the window", f"{w.starts} / {w.stops} / {w.reconnects}",
              f"{base.starts} / {base.stops} / {base.reconnects}",
              f"{STARTS_PER_SECOND * args.time_factor:g}/s, {RECONNECT_SHARE_PER_MINUTE:.0%} per fleet minute")
    for action, target in (("Authorize", P99_DRIVER_MS), ("StartTransaction", P99_DRIVER_MS),
                           ("StopTransaction", P99_STOP_MS)):
        table.add(f"{action} p50 / p99 / max ({w.count(action)} calls)", w.line(action), base.line(action),
                  f"p99 <= {target:g} ms", pass_fail(checks[action]))
    table.add(f"MeterValues p50 / p99 / max ({w.count('MeterValues')} calls)", w.line("MeterValues"),
              base.line("MeterValues"), "4-8 sampled values each")
    for name in ("reconcile_queue", "store_writer_queue", "asyncio_tasks", "connections"):
        ok, text = samples.bounded(name)
        bounded = name != "connections"
        table.add(f"{name.replace('_', ' ')} min / median / max", text, "", "bounded" if bounded else "",
                  pass_fail(ok) if bounded else "")
    table.add("database size before -> after the window", f"{size0 / MIB:.1f} -> {size1 / MIB:.1f} MiB",
              "", f"checkpoint {ck0} / {ck1}")
    table.add("database growth per fleet day (extrapolated)", f"{growth_day / MIB:,.0f} MiB/day", "",
              f"({(size1 - size0) / 1024:,.0f} KiB in {fleet_seconds:g} fleet s)")
    table.add("event loop lateness in the window (100 ms timer)", lag.line())
    for action in ("Authorize", "StartTransaction", "StopTransaction"):
        table.add(f"  {action}: controller side p50 / p99 / max", served.line(action), "",
                  "arrival -> answer written")
    if slowest is not None:  # what a durable answer waited for, at worst (a StopTransaction waits for its commit)
        table.add("slowest store commit in the window", f"{slowest.seconds * 1e3:,.0f} ms",
                  "", f"COMMIT {slowest.commit_seconds * 1e3:,.0f} ms, {slowest.jobs} jobs"
                  f"{', during a WAL checkpoint' if slowest.during_checkpoint else ''}")
    table.add("controller CPU in the window", f"{cpu:.1f} s ({cpu / args.seconds * 100:.0f} % of a core)")
    table.add("controller RSS at the end of the window", f"{rss / 1024:.0f} MiB")
    table.print()
    print(f"\n  database growth in the window by table / index: {growth_lines(tables0, tables1)}")
    if slowest is not None:
        print("  slowest store commit's jobs: " + ", ".join(f"{name} {count}" for name, count in slowest.kinds[:8]))
    errs = ", ".join(f"{k} {v}" for k, v in w.errors.most_common(8))
    base_errs = ", ".join(f"{k} {v}" for k, v in base.errors.most_common(8))
    print(f"  charger-side failures: controller {errs or 'none'}; baseline {base_errs or 'none'}")
    print(f"  skipped starts (no idle charger or card): controller {w.skipped}, baseline {base.skipped};"
          f" transaction messages still queued at the end: {w.queued} / {base.queued}")
    print(f"  all targets {'met' if ok_all else 'NOT met'}")
    tally.print()
    if trace is not None:
        print("\nStore awaits of the answers in the window (--trace; a traced run's figures are not the benchmark's):")
        for line in trace.lines():
            print("  " + line)
    if prof is not None and prof_window is not None:
        print(f"\nProfiled window ({args.profile_seconds:g} s): Authorize {prof_window.line('Authorize')},"
              f" StartTransaction {prof_window.line('StartTransaction')}, StopTransaction"
              f" {prof_window.line('StopTransaction')}")
        print(f"cProfile of the controller, main thread CPU time (time.thread_time), top {args.profile_top}:")
        print_profile(prof, args.profile_top)
    return 0


def targets(w: Window) -> tuple[bool, dict[str, bool]]:
    checks = {
        "Authorize": w.count("Authorize") > 0 and w.p("Authorize", 99) <= P99_DRIVER_MS,
        "StartTransaction": w.count("StartTransaction") > 0 and w.p("StartTransaction", 99) <= P99_DRIVER_MS,
        "StopTransaction": w.count("StopTransaction") > 0 and w.p("StopTransaction", 99) <= P99_STOP_MS,
    }
    return all(checks.values()) and not math.isnan(w.p("Authorize", 99)), checks


if __name__ == "__main__":
    sys.exit(main())
