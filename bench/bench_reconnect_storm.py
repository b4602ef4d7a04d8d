"""Benchmark a reconnect storm: N chargers connecting at once, through authentication, to all Synced.

Target (issue 7, "Benchmarks"): N simulated chargers (default 10,000) reconnect at once to a running
controller, with and without a reboot (with and without BootNotification), through authentication (HTTP
Basic, a key per station from the environment, as `chargeops demo` does), boot or re-observation, to all
Synced, with bounded post-connect reads (GetConfiguration per charger = 1), zero failed boots; the
times printed next to the bare websockets connect time for the same N.

What runs:
  1. the baseline, first: a plain websockets server in a child process (``_scale_runner.py bare``: the
     controller's websocket options, canned answers after json.loads) and the same simulated chargers
     as below (``_scale_runner.py chargers``, split over 2-4 processes): a first connect (with boot),
     then a network blip (every connection dropped, reconnect without boot), then a power cut (every
     charger reboots, reconnects with boot);
  2. an owner repo in a temporary directory: N stations with security profile 1 and an AuthorizationKey
     each (``{env: ...}``, the keys put in this process's environment), restricted to a 20-card access
     group with offline authorization (a 20-entry local list, shared by every station), two EVSEs;
  3. the controller in THIS process (directory mode, default settings), fresh chargers in child
     processes (new runner processes, so the baseline's leftovers do not count), and four storms:
       - first connect (new chargers: boot, first read, the key, settings and the local list written);
       - network blip (no boot: re-observation only);
       - power cut (reboot: BootNotification + re-observation);
       - controller restart (the controller is stopped and started on the same database while the
         chargers are held, then they all reconnect at once, without boot);
     each timed from the release of the chargers (wall clock shared by the processes) to the last
     connect (websocket open), the last boot answered, every charger online, and every station Synced
     after the look its connect or boot caused (``ctl.reconciler.status``; ``reconciler.look`` is wrapped
     to record when those looks end). Calls every charger received in each storm are counted;
  4. with ``--profile`` (or when a target is missed) one more network-blip storm runs with its first
     ``--profile-seconds`` (60) under cProfile (main-thread CPU) and the top functions are printed.

Both servers listen with the controller's listen backlog (``ServerSettings.backlog``, 1,024, capped by
the kernel's net.core.somaxconn). ``--backlog B`` is a what-if: both listen with B instead (100 is
asyncio's default, what the controller used before), to show how much of a storm is the kernel dropping
SYNs on a full accept queue and the chargers' TCP retransmission backoff (1, 3, 7, 15, 31, 63 s).

Exit status: 0 when the benchmark ran, whether or not the targets were met; 1 when it could not run.

Usage::

    .venv/bin/python bench/bench_reconnect_storm.py            # 10,000 chargers
    .venv/bin/python bench/bench_reconnect_storm.py --quick    # 1,000 chargers
    .venv/bin/python bench/bench_reconnect_storm.py --stations 3000 --processes 3 --profile
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from _common import (
    SCALE_RUNNER,
    BenchError,
    LogTally,
    LookTimes,
    LoopLag,
    Runner,
    RunnerPool,
    StormResult,
    Table,
    card_tag,
    child_env,
    export_keys,
    fmt_s,
    histogram_spread,
    identities,
    machine_lines,
    pass_fail,
    print_profile,
    profiling,
    raise_nofile,
    run_in_tmp,
    run_storm,
    runner_count,
    say,
    scale_parser,
    status_kib,
    write_scale_repo,
)

from controller.hw.server import ServerSettings
from controller.runtime.controller import Controller, ControllerSettings

GROUP_CARDS = 20


def main(argv: list[str] | None = None) -> int:
    ap = scale_parser(__doc__, quick="1,000 chargers", profile="profile one more network-blip storm")
    ap.add_argument("--timeout", type=float, default=0.0, help="per storm, seconds (default 60 + 0.05 s x N)")
    ap.add_argument("--profile-seconds", type=float, default=60.0, help="profile this much of the storm")
    ap.add_argument("--backlog", type=int, default=0,
                    help="what-if: listen backlog of both servers (0: as shipped, the controller's default)")
    args = ap.parse_args(argv)
    if args.quick:
        args.stations = 1_000
    args.processes = args.processes or runner_count(args.stations)
    args.timeout = args.timeout or 60.0 + 0.05 * args.stations
    return run_in_tmp("storm", lambda tmp: run(args, tmp))


async def baseline(args: argparse.Namespace, tmp: Path, names: list[str]) -> list[StormResult]:
    bare = await Runner.start(tmp / "bare-server.log", "bare", "--backlog", str(args.backlog), script=SCALE_RUNNER,
                              env=child_env())
    pool: RunnerPool | None = None
    try:
        ready = await bare.recv(60.0)
        url = f"ws://127.0.0.1:{ready['port']}/ocpp"
        pool = await RunnerPool.start(tmp, "bare-chargers", url, names, args.processes, env=child_env())
        out = [await run_storm(pool, "first connect (boot)", timeout=args.timeout)]
        await pool.request({"cmd": "hold", "close": "abort"})
        await pool.request({"cmd": "parked"}, timeout=180.0)
        out.append(await run_storm(pool, "network blip (no boot)", timeout=args.timeout))
        await pool.request({"cmd": "hold", "close": "reboot"}, timeout=180.0)
        await pool.request({"cmd": "parked"}, timeout=180.0)
        out.append(await run_storm(pool, "power cut (reboot)", timeout=args.timeout))
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await bare.quit()
    return out


def somaxconn() -> str:
    try:
        return Path("/proc/sys/net/core/somaxconn").read_text().strip()
    except OSError:
        return "unknown"


def controller_settings(repo: Path, tmp: Path, backlog: int) -> ControllerSettings:
    return ControllerSettings(repo=repo, db_path=tmp / "chargeops.db", server=ServerSettings(port=0, backlog=backlog))


async def run(args: argparse.Namespace, tmp: Path) -> int:
    t_start = time.perf_counter()
    tally = LogTally()
    logging.basicConfig(level=logging.WARNING, handlers=[tally])
    nofile = raise_nofile()
    n = args.stations
    names = identities(n)
    print("chargeops reconnect storm benchmark")
    for line in machine_lines():
        print("  " + line)
    print(f"  {n:,} chargers in {args.processes} processes; RLIMIT_NOFILE {nofile}; storm timeout {args.timeout:g} s",
          flush=True)
    if nofile < n + 200:
        raise BenchError(f"RLIMIT_NOFILE {nofile} is too low for {n} connections in this process")
    if args.backlog:
        print(f"  WHAT-IF: both servers listen with backlog {args.backlog}"
              f" (as shipped: {ServerSettings().backlog})")
    args.backlog = args.backlog or ServerSettings().backlog
    print(f"  listen backlog of both servers {args.backlog:,} (net.core.somaxconn {somaxconn()})", flush=True)

    base = await baseline(args, tmp, names)
    for b in base:
        say(f"baseline {b.label}: connected {fmt_s(b.connect_s)}, online {fmt_s(b.ready_s)}"
            f" ({b.ready}/{b.chargers}); boots {b.boot_attempts} failed {b.boot_failures}", t_start)

    repo = tmp / "repo"
    export_keys(names)
    cards = [card_tag(i) for i in range(GROUP_CARDS)]
    write_scale_repo(repo, names, groups={"staff": cards}, access=lambda i, name: ["staff"])
    ctl = Controller(controller_settings(repo, tmp, args.backlog))
    await ctl.start()
    say(f"controller up on port {ctl.port} (revision {ctl.desired.revision}); RSS {status_kib('VmRSS') / 1024:.0f} MiB",
        t_start)
    url = f"ws://127.0.0.1:{ctl.port}/ocpp"
    storms: list[StormResult] = []
    lags: dict[str, str] = {}
    pool: RunnerPool | None = None
    prof = None
    try:
        assert ctl.reconciler is not None
        looks = LookTimes(ctl.reconciler)
        pool = await RunnerPool.start(tmp, "chargers", url, names, args.processes, env=child_env())

        async def storm(label: str, close: str | None, new_url: str | None = None) -> StormResult:
            if close is not None:
                await pool.request({"cmd": "hold", "close": close}, timeout=180.0)
                await pool.request({"cmd": "parked"}, timeout=180.0)
            with LoopLag() as lag:
                res = await run_storm(pool, label, url=new_url, timeout=args.timeout, ctl=ctl, looks=looks,
                                      names=names)
            lags[label] = lag.line()
            say(f"{label}: connected {fmt_s(res.connect_s)}, booted {fmt_s(res.boot_s)}, online {fmt_s(res.ready_s)},"
                f" Synced {fmt_s(res.synced_s)} ({res.synced}/{n}); failed boots {res.boot_failures}", t_start)
            if res.synced < n:
                status = ctl.reconciler.status if ctl.reconciler else {}
                stuck = [s for s in status.values() if s.sync.value != "Synced"][:3]
                print(f"    not Synced, e.g.: {[(s.identity, s.sync.value, s.last_error) for s in stuck]}")
            storms.append(res)
            return res

        await storm("first connect (boot)", None)
        await storm("network blip (no boot)", "abort")
        await storm("power cut (reboot)", "reboot")
        # controller restart: hold the chargers, stop the controller (it closes every connection), start a
        # new one on the same database, release the chargers at once
        await pool.request({"cmd": "hold", "close": "none"})
        await ctl.stop()
        await pool.request({"cmd": "parked"}, timeout=180.0)
        ctl = Controller(controller_settings(repo, tmp, args.backlog))
        await ctl.start()
        assert ctl.reconciler is not None
        looks = LookTimes(ctl.reconciler)
        say(f"controller restarted on port {ctl.port}", t_start)
        await storm("controller restart (no boot)", None, new_url=f"ws://127.0.0.1:{ctl.port}/ocpp")

        missed = [s for s in storms[1:] if not targets_met(s, n)]
        if args.profile or missed:
            say("profiling one more network-blip storm" + (" (a target is missed)" if missed else ""), t_start)
            await pool.request({"cmd": "hold", "close": "abort"}, timeout=180.0)
            await pool.request({"cmd": "parked"}, timeout=180.0)
            with profiling(True, args.profile_seconds) as prof:
                await storm("profiled network blip (no boot)", None)
        rss = status_kib("VmRSS")
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await ctl.stop()
    say("chargers and controller stopped", t_start)
    report(n, base, storms, rss, lags)
    tally.print()
    if prof is not None:
        print(f"\ncProfile of the profiled storm, main thread CPU time (time.thread_time), top {args.profile_top}:")
        print_profile(prof, args.profile_top)
    return 0


def targets_met(s: StormResult, n: int) -> bool:
    return s.synced == n and s.boot_failures == 0 and s.exactly("GetConfiguration", 1)


def report(n: int, base: list[StormResult], storms: list[StormResult], rss_kib: int, lags: dict[str, str]) -> None:
    by_label = {b.label: b for b in base}
    print()
    table = Table()
    for s in storms:
        b = by_label.get(s.label) or by_label.get(
            "network blip (no boot)" if "no boot" in s.label else "power cut (reboot)")
        bare = "(blip) " if b is not None and b.label != s.label else ""
        table.add(f"{s.label}", "", "", "", "")
        table.add("  all connected (websocket open)", fmt_s(s.connect_s), bare + (fmt_s(b.connect_s) if b else "-"))
        if s.boot_attempts or (b is not None and b.boot_attempts):
            table.add("  all booted (Accepted)", fmt_s(s.boot_s), fmt_s(b.boot_s) if b else "-")
        table.add("  all online", fmt_s(s.ready_s), bare + (fmt_s(b.ready_s) if b else "-"))
        table.add("  SYNs dropped on a full accept queue", str(s.listen_drops), str(b.listen_drops) if b else "-")
        table.add("  all Synced", fmt_s(s.synced_s) if s.synced == n else f"{s.synced}/{n} Synced", "",
                  f"all {n:,}", pass_fail(s.synced == n))
        if s.boot_attempts:
            table.add("  failed boots (of tried)", f"{s.boot_failures} (of {s.boot_attempts})",
                      f"{b.boot_failures} (of {b.boot_attempts})" if b else "-", "0", pass_fail(s.boot_failures == 0))
        first = s.label.startswith("first")
        table.add("  GetConfiguration / charger (min/med/max)", s.per_charger("GetConfiguration"), "",
                  "" if first else "= 1", "" if first else pass_fail(s.exactly("GetConfiguration", 1)))
        table.add("  event loop lateness (100 ms timer)", lags.get(s.label, "-"))
        table.add("  websocket connects / charger (min/med/max)", histogram_spread(s.connects) if s.connects else "-",
                  histogram_spread(b.connects) if b and b.connects else "-")
        others = sorted(a for a in s.calls if a != "GetConfiguration" and " " not in a)
        table.add("  other calls / charger (median)", ", ".join(
            f"{a} {s.per_charger(a).split(' / ')[1]}" for a in others) or "none")
        if s.errors:
            table.add("  failed connect attempts (retried)", ", ".join(f"{k} {v}" for k, v in s.errors.items()))
    table.add("controller RSS after the storms", f"{rss_kib / 1024:.0f} MiB")
    table.print()


if __name__ == "__main__":
    sys.exit(main())
