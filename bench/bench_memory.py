"""Benchmark the controller's resident memory with N connected, observed, Synced chargers, with and without TLS.

Targets (issue 7, "Benchmarks"): resident memory with all per-station state <= 64 KiB per charger without
TLS, <= 120 KiB per charger with TLS, <= 1.5 GiB in all for 10,000 chargers. Baseline, measured in the
same run: a bare websockets server holding N idle connections from the same simulated chargers (with
and without TLS).

What runs, for N = 1,000 and 10,000 (``--quick``: 1,000 only), without and with TLS:
  1. the baseline: ``_scale_runner.py bare`` in a fresh process (the controller's websocket options;
     with TLS the same certificate and ssl settings as the controller), its VmRSS before any connection
     and once all N chargers are connected and idle (after gc): (after - before) / N per connection;
  2. the controller: this script again in a fresh process (``--one N [--tls]``), so nothing of another
     measurement stays in its heap. It imports the controller, then reads VmRSS (``import``), starts the
     controller (directory mode, default settings) on an owner repo of N stations (two EVSEs each,
     security profile 1 with a key per station from the environment, restricted to a 20-card group with
     offline authorization) and reads VmRSS (``started``: desired state loaded, store open); the chargers
     (2-4 processes of ``_scale_runner.py chargers``, ``wss://`` with TLS) connect, boot, are observed and
     Synced (``ctl.reconciler.status``); after gc and a short settle VmRSS is read again (``synced``);
  3. per charger, all per-station state = (synced - import) / N (desired station, store caches,
     connection, observed state and status; the interpreter and libraries left out), and the connected
     part alone = (synced - started) / N; total = VmRSS at ``synced``;
  4. when a target is missed (or with ``--profile``) one more controller process runs N =
     ``--profile-stations`` (1,000) of the first config that missed with tracemalloc on from before the
     chargers connect, and the top allocation sites of what the connected fleet added are printed.

TLS: a self-signed EC P-256 certificate for 127.0.0.1 made with the openssl CLI; the chargers trust it
through ``SSL_CERT_FILE``. The controller runs on the event loop ``chargeops run`` picks (uvloop, whose
TLS transport is its own, where installed; CHARGEOPS_EVENT_LOOP=asyncio for the standard loop); the
chargers and the bare baseline use the standard library's loop and ssl transport.

Exit status: 0 when the benchmark ran, whether or not the targets were met; 1 when it could not run.

Usage::

    .venv/bin/python bench/bench_memory.py            # 1,000 and 10,000 chargers, without and with TLS
    .venv/bin/python bench/bench_memory.py --quick    # 1,000 chargers, without and with TLS
    .venv/bin/python bench/bench_memory.py --stations 2000 --no-tls --profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    GIB,
    KIB,
    SCALE_RUNNER,
    BenchError,
    LogTally,
    LookTimes,
    Runner,
    RunnerPool,
    Table,
    card_tag,
    child_env,
    emit,
    export_keys,
    fmt_s,
    identities,
    machine_lines,
    pass_fail,
    raise_nofile,
    run_in_tmp,
    run_storm,
    runner_count,
    say,
    self_signed_cert,
    status_kib,
    write_scale_repo,
)

from controller.runtime import eventloop

TARGET_KIB = {False: 64, True: 120}
TARGET_TOTAL = 1.5 * GIB
TOTAL_AT = 10_000
SETTLE_S = 3.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Result:
    n: int
    tls: bool
    bare_before: int = 0  # KiB
    bare_after: int = 0
    bare_connect_s: float = 0.0
    rss_import: int = 0
    rss_started: int = 0
    rss_synced: int = 0
    synced_s: float = 0.0

    @property
    def per_station_kib(self) -> float:
        return (self.rss_synced - self.rss_import) / self.n

    @property
    def per_connection_kib(self) -> float:
        return (self.rss_synced - self.rss_started) / self.n

    @property
    def bare_kib(self) -> float:
        return (self.bare_after - self.bare_before) / self.n

    def ok(self) -> tuple[bool, bool]:
        per = self.per_station_kib <= TARGET_KIB[self.tls]
        total = self.n < TOTAL_AT or self.rss_synced * KIB <= TARGET_TOTAL
        return per, total


# ------------------------------------------------------------------------------------------ the parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, nargs="*", default=[1_000, 10_000], help="the N to measure")
    ap.add_argument("--quick", action="store_true", help="N = 1,000 only")
    ap.add_argument("--no-tls", action="store_true", help="without TLS only")
    ap.add_argument("--tls-only", action="store_true", help="with TLS only")
    ap.add_argument("--processes", type=int, default=0, help="charger processes (default: 2-4, ~2,500 each)")
    ap.add_argument("--profile", action="store_true", help="run one more controller under tracemalloc")
    ap.add_argument("--profile-stations", type=int, default=1_000)
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # child: one controller measurement
    ap.add_argument("--tls", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cert", default="", help=argparse.SUPPRESS)
    ap.add_argument("--key", default="", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", default="", help=argparse.SUPPRESS)
    ap.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        try:
            return eventloop.run(one(args))  # the loop `chargeops run` picks
        except BenchError as exc:
            print(f"\nERROR: {exc}", file=sys.stderr)
            return 1
    if args.quick:
        args.stations = [1_000]
    return run_in_tmp("memory", lambda tmp: run(args, tmp))


async def run(args: argparse.Namespace, tmp: Path) -> int:
    t_start = time.perf_counter()
    print("chargeops memory benchmark")
    for line in machine_lines():
        print("  " + line)
    modes = [False, True]
    if args.no_tls:
        modes = [False]
    if args.tls_only:
        modes = [True]
    cert, key = self_signed_cert(tmp) if True in modes else (Path(), Path())
    sizes = ", ".join(f"{n:,}" for n in args.stations)
    tls_modes = ", ".join("with" if m else "without" for m in modes)
    print(f"  N = {sizes}; TLS: {tls_modes}; RLIMIT_NOFILE {raise_nofile()}", flush=True)
    results: list[Result] = []
    for n in args.stations:
        for tls in modes:
            res = Result(n, tls)
            await measure_bare(res, args, tmp, cert, key)
            say(f"N={n:,} {'TLS' if tls else 'no TLS'}: bare server {res.bare_before / 1024:.0f} ->"
                f" {res.bare_after / 1024:.0f} MiB ({res.bare_kib:.1f} KiB per connection)", t_start)
            child = await controller_child(args, tmp, n, tls, cert, key)
            res.rss_import, res.rss_started = child["rss_import"], child["rss_started"]
            res.rss_synced, res.synced_s = child["rss_synced"], child["synced_s"]
            say(f"N={n:,} {'TLS' if tls else 'no TLS'}: controller {res.rss_import / 1024:.0f} (imported) ->"
                f" {res.rss_started / 1024:.0f} (started) -> {res.rss_synced / 1024:.0f} MiB (all Synced in"
                f" {fmt_s(res.synced_s)})", t_start)
            results.append(res)

    print()
    table = Table()
    for r in results:
        per_ok, total_ok = r.ok()
        label = f"N={r.n:,} {'with TLS' if r.tls else 'without TLS'}"
        table.add(label)
        table.add("  per charger, all per-station state", f"{r.per_station_kib:.1f} KiB",
                  f"{r.bare_kib:.1f} KiB / idle connection", f"<= {TARGET_KIB[r.tls]} KiB", pass_fail(per_ok))
        table.add("  per charger, the connected part", f"{r.per_connection_kib:.1f} KiB", "", "")
        table.add("  total RSS", f"{r.rss_synced / 1024:,.0f} MiB", f"{r.bare_after / 1024:,.0f} MiB",
                  "<= 1.5 GiB" if r.n >= TOTAL_AT else "", pass_fail(total_ok) if r.n >= TOTAL_AT else "")
        table.add("  RSS imported -> started -> Synced",
                  f"{r.rss_import / 1024:.0f} -> {r.rss_started / 1024:.0f} -> {r.rss_synced / 1024:.0f} MiB",
                  f"{r.bare_before / 1024:.0f} -> {r.bare_after / 1024:.0f} MiB")
    if len({r.n for r in results}) > 1:
        for tls in modes:
            pair = sorted((r for r in results if r.tls is tls), key=lambda r: r.n)
            if len(pair) >= 2:
                lo, hi = pair[0], pair[-1]
                slope = (hi.rss_synced - lo.rss_synced) / (hi.n - lo.n)
                bare = (hi.bare_after - lo.bare_after) / (hi.n - lo.n)
                table.add(f"marginal per charger {lo.n:,} -> {hi.n:,} {'with' if tls else 'without'} TLS",
                          f"{slope:.1f} KiB", f"{bare:.1f} KiB", f"<= {TARGET_KIB[tls]} KiB",
                          pass_fail(slope <= TARGET_KIB[tls]))
    table.print()
    missed = [r for r in results if not all(r.ok())]
    if args.profile or missed:
        tls = missed[0].tls if missed else modes[0]
        n = args.profile_stations
        say(f"tracemalloc: one more controller, N={n:,} {'with' if tls else 'without'} TLS"
            + (" (a target is missed)" if missed else ""), t_start)
        child = await controller_child(args, tmp, n, tls, cert, key, trace=True)
        print(f"\nTop {args.profile_top} allocation sites of what the connected, Synced fleet added"
              f" (tracemalloc, N={n:,}; total {child['traced_kib'] / 1024:.1f} MiB = "
              f"{child['traced_kib'] / n:.1f} KiB per charger of Python objects):")
        for line in child["top"]:
            print(f"  {line}")
    return 0


async def measure_bare(res: Result, args: argparse.Namespace, tmp: Path, cert: Path, key: Path) -> None:
    from controller.hw.server import ServerSettings

    extra = ["--backlog", str(ServerSettings().backlog)]  # the controller's listen backlog
    if res.tls:
        extra += ["--tls-cert", str(cert), "--tls-key", str(key)]
    bare = await Runner.start(tmp / f"bare-{res.n}-{res.tls}.log", "bare", *extra, script=SCALE_RUNNER,
                              env=child_env())
    pool: RunnerPool | None = None
    try:
        ready = await bare.recv(60.0)
        res.bare_before = int(ready["rss_kib"])
        url = f"{'wss' if res.tls else 'ws'}://127.0.0.1:{ready['port']}/ocpp"
        env = child_env(**({"SSL_CERT_FILE": str(cert)} if res.tls else {}))
        pool = await RunnerPool.start(tmp, f"bare-chargers-{res.n}-{res.tls}", url, identities(res.n),
                                      args.processes or runner_count(res.n), env=env)
        storm = await run_storm(pool, "connect", timeout=120 + 0.06 * res.n)
        if not storm.all_ready:
            raise BenchError(f"baseline: {storm.ready} of {res.n} chargers online ({dict(storm.errors)})")
        res.bare_connect_s = storm.connect_s
        await asyncio.sleep(SETTLE_S)
        rss = await bare.request({"cmd": "rss", "gc": True})
        if rss.get("connections") != res.n:
            raise BenchError(f"baseline: the bare server holds {rss.get('connections')} of {res.n} connections")
        res.bare_after = int(rss["rss_kib"])
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await bare.quit()


async def controller_child(args: argparse.Namespace, tmp: Path, n: int, tls: bool, cert: Path, key: Path,
                           trace: bool = False) -> dict[str, Any]:
    work = tmp / f"controller-{n}-{tls}-{trace}"
    work.mkdir()
    cmd = ["--one", str(n), "--tmp", str(work), "--processes", str(args.processes or runner_count(n)),
           "--profile-top", str(args.profile_top)]
    if tls:
        cmd += ["--tls", "--cert", str(cert), "--key", str(key)]
    if trace:
        cmd.append("--tracemalloc")
    child = await Runner.start(tmp / f"controller-{n}-{tls}-{trace}.log", *cmd, script=Path(__file__),
                               env=child_env())
    try:
        result = await child.recv(600.0 + 0.2 * n)
        # let it quit its charger processes and stop its controller: killing it at once left them orphaned,
        # reconnecting to nothing and taking CPU from the benchmarks that ran next
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.proc.wait(), 120.0)
    finally:
        await child.kill()
    if result.get("event") != "result":
        raise BenchError(f"controller process: {result.get('error', result)}")
    return result


# ------------------------------------------------------------------------------------------ the child


async def one(args: argparse.Namespace) -> int:
    """One controller in this process with N chargers connected and Synced; prints one JSON result line."""
    logging.basicConfig(level=logging.WARNING, handlers=[LogTally()])
    raise_nofile()
    import controller.runtime.features  # noqa: F401  (what Controller.start imports, before the first reading)
    from controller.hw.server import ServerSettings
    from controller.runtime.controller import Controller, ControllerSettings

    n, tmp = args.one, Path(args.tmp)
    names = identities(n)
    export_keys(names)
    repo = tmp / "repo"
    write_scale_repo(repo, names, groups={"staff": [card_tag(i) for i in range(20)]},
                     access=lambda i, name: ["staff"])
    gc.collect()
    rss_import = status_kib("VmRSS")
    server = ServerSettings(port=0, tls_cert=Path(args.cert) if args.tls else None,
                            tls_key=Path(args.key) if args.tls else None)
    ctl = Controller(ControllerSettings(repo=repo, db_path=tmp / "chargeops.db", server=server))
    await ctl.start()
    pool: RunnerPool | None = None
    try:
        assert ctl.reconciler is not None
        looks = LookTimes(ctl.reconciler)
        await asyncio.sleep(1.0)
        gc.collect()
        rss_started = status_kib("VmRSS")
        if args.tracemalloc:
            tracemalloc.start(10)
        before = tracemalloc.take_snapshot() if args.tracemalloc else None
        url = f"{'wss' if args.tls else 'ws'}://127.0.0.1:{ctl.port}/ocpp"
        env = child_env(**({"SSL_CERT_FILE": args.cert} if args.tls else {}))
        pool = await RunnerPool.start(tmp, "chargers", url, names, args.processes, env=env)
        storm = await run_storm(pool, "connect", timeout=120 + 0.06 * n, ctl=ctl, looks=looks, names=names)
        log(f"N={n}: connected {fmt_s(storm.connect_s)}, Synced {fmt_s(storm.synced_s)} ({storm.synced}/{n})")
        if storm.synced < n:
            emit({"event": "error", "error": f"{n - storm.synced} of {n} stations not Synced"})
            return 1
        await asyncio.sleep(SETTLE_S)
        gc.collect()
        rss_synced = status_kib("VmRSS")
        out: dict[str, Any] = {"event": "result", "rss_import": rss_import, "rss_started": rss_started,
                               "rss_synced": rss_synced, "synced_s": storm.synced_s}
        if before is not None:
            after = tracemalloc.take_snapshot()
            stats = after.compare_to(before, "lineno")
            out["traced_kib"] = sum(s.size_diff for s in stats) / 1024
            out["top"] = [f"{s.size_diff / 1024:10,.0f} KiB {s.count_diff:+9,d} blocks  {s.traceback[0]}"
                          for s in stats[: args.profile_top]]
            tracemalloc.stop()
        emit(out)
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
