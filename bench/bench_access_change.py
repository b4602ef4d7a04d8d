"""Benchmark an access change at scale: one card added to a 5,000-card group used by N stations.

Targets (issue 7, "Benchmarks"): with offline authorization, one card added to a 5,000-card group used by
N stations (default 10,000) is one Differential entry on the wire per station, and the local-list
snapshot storage is proportional to the number of distinct lists, not to the number of stations.

What runs:
  1. the baseline, first: a plain websockets server in THIS process (the controller's websocket options)
     sending one SendLocalList Differential with one entry (json.dumps, fresh uuid4 id) to each of N plain
     clients in a child process (``_fleet_runner.py baseline``) and reading the answers, 100 connections in
     flight (the controller's max_concurrent_applies): wall time and CPU per round trip, best of 3;
  2. an owner repo in a temporary directory: N stations (two EVSEs, security profile 1 with a key each
     from the environment), all restricted to the group ``fleet`` (5,000 cards, a CardList file), every
     10th one also to ``visitors`` (20 cards): two distinct lists; offline authorization on;
  3. the controller in THIS process (directory mode, default settings); the chargers in 2-4 child
     processes, a model with LocalAuthListMaxLength 10,000 and SendLocalListMaxLength 250 (a list that
     counts its entries instead of keeping them, so 10,000 x 5,000 entries fit in memory); they connect
     and receive the Full list (20 SendLocalList calls each), all Synced: timed, not a target;
  4. the change: the fleet CardList is rewritten with one more card (a new file moved into place); from
     the write to every station Synced on the new revision: wall time, controller CPU, how late the
     event loop ran a 100 ms timer meanwhile (what every other charger waits), and the SendLocalList
     calls and entries each charger received, by update type (and any other call: a reconnect shows as
     GetConfiguration / TriggerMessage);
  5. the store, read from a separate read-only connection before and after the change: rows and bytes
     (``length(entries)`` and dbstat pages) of ``local_list_snapshots``, and the distinct snapshot hashes
     the stations point at;
  6. when a target is missed (or with ``--profile``) one more card is added under cProfile (main-thread
     CPU) and the top functions are printed.

Exit status: 0 when the benchmark ran, whether or not the targets were met; 1 when it could not run.

Usage::

    .venv/bin/python bench/bench_access_change.py            # 10,000 stations
    .venv/bin/python bench/bench_access_change.py --quick    # 1,000 stations
    .venv/bin/python bench/bench_access_change.py --stations 3000 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    BenchError,
    LogTally,
    LookTimes,
    LoopLag,
    RunnerPool,
    SyncPoll,
    Table,
    card_tag,
    cards_text,
    child_env,
    export_keys,
    fmt_s,
    histogram_spread,
    identities,
    machine_lines,
    measure_baseline,
    merge_counts,
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
    write_and_take,
    write_scale_repo,
)

from controller.hw.server import ServerSettings
from controller.runtime.controller import Controller, ControllerSettings

GROUP_CARDS = 5_000
VISITOR_CARDS = 20
VISITORS_EVERY = 10
CONCURRENCY = 100  # the controller's default max_concurrent_applies (the baseline's in-flight calls)
BASELINE_CALL = ("SendLocalList", {
    "listVersion": 22, "updateType": "Differential",
    "localAuthorizationList": [{"idTag": "BC00001388", "idTagInfo": {"status": "Accepted", "parentIdTag": "fleet"}}],
})


def main(argv: list[str] | None = None) -> int:
    ap = scale_parser(__doc__, quick="1,000 stations", profile="profile one more change")
    ap.add_argument("--timeout", type=float, default=0.0, help="per phase, seconds (default 120 + 0.1 s x N)")
    args = ap.parse_args(argv)
    if args.quick:
        args.stations = 1_000
    args.processes = args.processes or runner_count(args.stations)
    args.timeout = args.timeout or 120.0 + 0.1 * args.stations
    return run_in_tmp("access", lambda tmp: run(args, tmp))


@dataclass
class Storage:
    """local_list_snapshots as the store holds it."""

    rows: int = 0
    entry_bytes: int = 0  # sum(length(entries))
    page_bytes: int = 0  # dbstat pages of the table (and its overflow pages)
    entries: int = 0  # sum(entry_count)
    distinct_in_use: int = 0  # distinct local_list_hash of the stations
    stations_with_list: int = 0

    @classmethod
    def read(cls, db: Path) -> Storage:
        s = cls()
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)) as conn:
            s.rows, s.entry_bytes, s.entries = conn.execute(
                "SELECT count(*), coalesce(sum(length(entries)), 0), coalesce(sum(entry_count), 0)"
                " FROM local_list_snapshots").fetchone()
            with contextlib.suppress(sqlite3.Error):
                s.page_bytes = conn.execute(
                    "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'local_list_snapshots'").fetchone()[0]
            s.distinct_in_use, s.stations_with_list = conn.execute(
                "SELECT count(DISTINCT local_list_hash), count(local_list_hash) FROM stations").fetchone()
        return s

    def line(self) -> str:
        return (f"{self.rows} rows, {self.entries:,} entries, {self.entry_bytes / 1024:,.0f} KiB"
                f" ({self.page_bytes / 1024:,.0f} KiB in pages)")


@dataclass
class Change:
    label: str
    seconds: float = 0.0
    revision_seconds: float = 0.0
    cpu_seconds: float = 0.0
    synced: int = 0
    calls: dict[str, dict[str, int]] = field(default_factory=dict)

    def spread(self, action: str, n: int) -> str:
        hist = dict(self.calls.get(action, {}))
        missing = n - sum(hist.values())
        if missing > 0:
            hist["0"] = hist.get("0", 0) + missing
        return histogram_spread(hist)

    def exactly(self, action: str, value: int, n: int) -> bool:
        hist = self.calls.get(action, {})
        if value == 0:
            return sum(v for k, v in hist.items() if k != "0") == 0
        return hist.get(str(value), 0) == n


async def add_card(ctl: Controller, pool: RunnerPool, repo: Path, names: list[str], tags: list[str], label: str,
                   timeout: float) -> Change:
    """Rewrite the fleet CardList with one more card; wait until every station is Synced on the new revision."""
    change = Change(label)
    await pool.request({"cmd": "mark"})
    loop = asyncio.get_running_loop()
    old = ctl.desired.revision
    cpu0, t0 = time.process_time(), time.perf_counter()
    tags.append(card_tag(len(tags)))
    deadline = loop.time() + timeout  # (the revision's taking and the sync share the timeout, as before)
    await write_and_take(ctl, repo / "cards" / "fleet.yaml", cards_text("fleet", tags), timeout)
    if ctl.desired.revision == old:
        raise BenchError(f"{label}: the new revision was not taken within {timeout:g} s"
                         f" (last failure: {ctl.desired.last_failure})")
    change.revision_seconds = time.perf_counter() - t0
    revision = ctl.desired.revision
    assert revision is not None
    left = list(names)
    poll = SyncPoll(ctl, revision)
    while left and loop.time() < deadline:
        left = poll.left(left)
        if left:
            await asyncio.sleep(0.05 if len(left) > 1000 else 0.02)
    change.seconds = time.perf_counter() - t0
    change.cpu_seconds = time.process_time() - cpu0 - poll.cpu  # the benchmark's own polling left out
    change.synced = len(names) - len(left)
    change.calls = merge_counts(await pool.request({"cmd": "counts"}))
    return change


async def run(args: argparse.Namespace, tmp: Path) -> int:
    t_start = time.perf_counter()
    tally = LogTally()
    logging.basicConfig(level=logging.WARNING, handlers=[tally])
    nofile = raise_nofile()
    n = args.stations
    names = identities(n)
    print("chargeops access change benchmark")
    for line in machine_lines():
        print("  " + line)
    print(f"  {n:,} stations, a {GROUP_CARDS:,}-card group used by all, {VISITOR_CARDS} visitor cards on every"
          f" {VISITORS_EVERY}th; chargers in {args.processes} processes; RLIMIT_NOFILE {nofile}", flush=True)

    base = await measure_baseline(tmp, n, CONCURRENCY, 1, 3, [BASELINE_CALL])
    say(f"baseline: {n:,} SendLocalList round trips (1 entry each) in {min(base.wall_runs):.2f} s, "
        f"{base.cpu_per_round_trip * 1e6:.0f} us CPU each", t_start)

    repo = tmp / "repo"
    export_keys(names)
    tags = [card_tag(i) for i in range(GROUP_CARDS)]
    visitors = [card_tag(i, "VIS") for i in range(VISITOR_CARDS)]
    write_scale_repo(repo, names, groups={"fleet": tags, "visitors": visitors},
                     access=lambda i, name: ["fleet", "visitors"] if i % VISITORS_EVERY == 0 else ["fleet"])
    db = tmp / "chargeops.db"
    ctl = Controller(ControllerSettings(repo=repo, db_path=db, server=ServerSettings(port=0)))
    await ctl.start()
    say(f"controller up on port {ctl.port} (revision {ctl.desired.revision})", t_start)
    pool: RunnerPool | None = None
    prof = None
    prof_change: Change | None = None
    try:
        assert ctl.reconciler is not None
        looks = LookTimes(ctl.reconciler)
        pool = await RunnerPool.start(tmp, "chargers", f"ws://127.0.0.1:{ctl.port}/ocpp", names, args.processes,
                                      "--model", "biglist", env=child_env())
        first = await run_storm(pool, "connect + Full list", timeout=args.timeout, ctl=ctl, looks=looks,
                                names=names)
        say(f"fleet connected in {fmt_s(first.connect_s)}, Full lists sent and all Synced in"
            f" {fmt_s(first.synced_s)} ({first.synced}/{n})", t_start)
        if first.synced < n:
            raise BenchError(f"{n - first.synced} stations not Synced after the first connect")
        await asyncio.sleep(1.0)
        before = Storage.read(db)
        with LoopLag() as lag:
            change = await add_card(ctl, pool, repo, names, tags, "one card added", args.timeout)
        say(f"{change.label}: all Synced in {change.seconds:.2f} s ({change.synced}/{n}; revision taken after"
            f" {change.revision_seconds:.2f} s), controller CPU {change.cpu_seconds:.2f} s", t_start)
        await asyncio.sleep(1.0)
        after = Storage.read(db)
        rss = status_kib("VmRSS")
        ok = targets(change, n, before, after)
        if args.profile or not all(ok.values()):
            say("profiling one more card added" + ("" if all(ok.values()) else " (a target is missed)"), t_start)
            with profiling(True) as prof:
                prof_change = await add_card(ctl, pool, repo, names, tags, "profiled: one more card", args.timeout)
        await pool.quit()
        pool = None
    finally:
        if pool is not None:
            await pool.kill()
        await ctl.stop()
    say("chargers and controller stopped", t_start)

    print()
    table = Table()
    table.add("first connect: Full list to every station, all Synced", fmt_s(first.synced_s), "", "", "")
    table.add("  SendLocalList calls / entries per station (median)",
              f"{part(first.per_charger('SendLocalList'), 1)} / "
              f"{part(first.per_charger('SendLocalList Full entries'), 1)} Full + "
              f"{part(first.per_charger('SendLocalList Differential entries'), 1)} Differential")
    table.add("one card added: write -> all Synced", f"{change.seconds:.2f} s",
              f"{min(base.wall_runs):.2f} s ({n:,} round trips)", "", "")
    table.add("  of which until the revision was taken", f"{change.revision_seconds:.2f} s")
    table.add("  controller CPU per station", f"{change.cpu_seconds / n * 1e6:,.0f} us",
              f"{base.cpu_per_round_trip * 1e6:.0f} us / round trip",
              f"ratio {change.cpu_seconds / n / base.cpu_per_round_trip:.1f}x")
    table.add("  event loop lateness during the change (100 ms timer)", lag.line())
    table.add("  Differential entries / station (min/med/max)", change.spread("SendLocalList Differential entries", n),
              "1 / 1 / 1", "= 1", pass_fail(ok["differential"]))
    table.add("  SendLocalList calls / station (min/med/max)", change.spread("SendLocalList", n), "1 / 1 / 1",
              "= 1", pass_fail(ok["calls"]))
    table.add("  Full lists sent", change.spread("SendLocalList Full calls", n), "", "0", pass_fail(ok["full"]))
    others = sorted(a for a in change.calls if not a.startswith("SendLocalList"))
    table.add("  other calls / station (max)", ", ".join(
        f"{a} {part(change.spread(a, n), 2)}" for a in others) or "none")
    table.add("snapshot storage before the change", before.line(), "",
              f"{before.distinct_in_use} distinct lists, {before.stations_with_list:,} stations")
    table.add("snapshot storage after the change", after.line(), "",
              f"{after.distinct_in_use} distinct lists, {after.stations_with_list:,} stations")
    table.add("  snapshot rows added by the change", str(after.rows - before.rows), "",
              f"= distinct lists ({after.distinct_in_use})", pass_fail(ok["storage"]))
    table.add("  bytes per stored row (after)", f"{after.entry_bytes / max(1, after.rows) / 1024:,.0f} KiB", "",
              f"per station: {after.entry_bytes / n:,.0f} B")
    table.add("controller RSS", f"{rss / 1024:,.0f} MiB")
    table.print()
    print(f"\n  all targets {'met' if all(ok.values()) else 'NOT met'}")
    tally.print()
    if prof is not None and prof_change is not None:
        print(f"\nProfiled change: all Synced in {prof_change.seconds:.2f} s, Differential entries / station"
              f" {prof_change.spread('SendLocalList Differential entries', n)}")
        print(f"cProfile of the controller, main thread CPU time (time.thread_time), top {args.profile_top}:")
        print_profile(prof, args.profile_top)
    return 0


def part(spread: str, i: int) -> str:
    """The i-th of "min / median / max" ("-" when there is none)."""
    parts = spread.split(" / ")
    return parts[i] if len(parts) == 3 else "-"


def targets(change: Change, n: int, before: Storage, after: Storage) -> dict[str, bool]:
    return {
        "synced": change.synced == n,
        "differential": change.exactly("SendLocalList Differential entries", 1, n),
        "calls": change.exactly("SendLocalList", 1, n),
        "full": change.exactly("SendLocalList Full calls", 0, n),
        "storage": after.rows - before.rows == after.distinct_in_use and after.distinct_in_use < n,
    }


if __name__ == "__main__":
    sys.exit(main())
