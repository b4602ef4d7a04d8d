"""Helpers shared by the bench/ scripts that run a controller in their own process and chargers in children.

What is here (the scripts import it as ``_common``; it is not a test or product module):

- ``Runner`` / ``RunnerPool``: a child process (``_fleet_runner.py`` or ``_scale_runner.py``) speaking
  JSON lines on stdin/stdout, and several of them at once (a fleet split over processes, so each holds
  at most a few thousand sockets);
- measurements of this process: ``status_kib`` (``/proc/self/status``), ``reset_peak_rss``,
  ``thread_cpu``, ``raise_nofile``; ``percentile``; the controller's WARNING+ log lines (``LogTally``);
- the controller's progress: ``synced_on`` / ``wait_synced`` on the revision in force, and ``LookTimes``,
  which records when each station's look after a connect or boot ended (so a storm is timed to the looks
  it caused, not to a status left Synced from before);
- an owner repository at scale (``write_scale_repo``) with an AuthorizationKey per station read from the
  environment, as ``chargeops demo`` does (``station_key`` / ``key_env`` / ``export_keys``);
- a self-signed certificate made with the ``openssl`` CLI (``self_signed_cert``);
- reporting: ``Table`` (measure / controller / baseline / target / verdict), ``machine_lines``,
  ``print_profile``.

Every wait is bounded: child answers by a timeout, polls by a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import hashlib
import inspect
import itertools
import json
import logging
import math
import os
import platform
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FLEET_RUNNER = BENCH_DIR / "_fleet_runner.py"
SCALE_RUNNER = BENCH_DIR / "_scale_runner.py"
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from controller.runtime import eventloop  # noqa: E402  (after the path is set)

KIB = 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
KEY_ENV_PREFIX = "CHARGEOPS_BENCH_KEY_"


class BenchError(Exception):
    """The benchmark could not run (as opposed to a target being missed)."""


# ------------------------------------------------------------------------------------------ child processes


class Runner:
    """A bench child process speaking JSON lines (commands on stdin, events and answers on stdout)."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path, name: str) -> None:
        self.proc = proc
        self.log_path = log_path
        self.name = name

    @classmethod
    async def start(
        cls, log_path: Path, *args: str, script: Path = FLEET_RUNNER, env: Mapping[str, str] | None = None
    ) -> Runner:
        with log_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                *args,
                cwd=REPO_ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=64 * MIB,
                env=None if env is None else dict(env),
            )
        return cls(proc, log_path, log_path.stem)

    def _stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        return ""

    async def recv(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"{self.name}: no answer within {timeout:g} s\n{self._stderr_tail()}") from None
        if not line:
            raise BenchError(f"{self.name} exited ({self.proc.returncode})\n{self._stderr_tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def send(self, command: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def request(self, command: Mapping[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        await self.send(command)
        return await self.recv(timeout)

    async def quit(self, timeout: float = 60.0) -> dict[str, Any]:
        try:
            await self.send({"cmd": "quit"})
            for _ in range(100):  # answers still in the pipe come first
                reply = await self.recv(timeout)
                if reply.get("event") == "bye":
                    return reply
            raise BenchError(f"{self.name}: no goodbye")
        finally:
            await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


def split(items: Sequence[str], parts: int) -> list[list[str]]:
    """``items`` in ``parts`` contiguous, nearly equal slices (none empty)."""
    parts = max(1, min(parts, len(items)))
    size = math.ceil(len(items) / parts)
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def runner_count(n: int, per_process: int = 2_500, low: int = 2, high: int = 4) -> int:
    """How many charger processes for n chargers: about per_process each, between low and high."""
    return max(low, min(high, math.ceil(n / per_process)))


class RunnerPool:
    """Several ``_scale_runner.py chargers`` processes, each with a slice of the identities."""

    def __init__(self, runners: list[Runner]) -> None:
        self.runners = runners

    @classmethod
    async def start(
        cls,
        tmp: Path,
        label: str,
        url: str,
        identities: Sequence[str],
        processes: int,
        *extra: str,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 300.0,
    ) -> RunnerPool:
        runners: list[Runner] = []
        try:
            for i, part in enumerate(split(identities, processes)):
                ids = tmp / f"{label}-{i}.ids"
                ids.write_text("\n".join(part) + "\n", encoding="ascii")
                runners.append(
                    await Runner.start(
                        tmp / f"{label}-{i}.log", "chargers", url, str(ids), "--index", str(i), *extra,
                        script=SCALE_RUNNER, env=env,
                    )
                )
            for runner in runners:
                ready = await runner.recv(ready_timeout)
                if ready.get("event") != "ready":
                    raise BenchError(f"{runner.name}: unexpected first line {ready}")
        except BaseException:
            await asyncio.gather(*(r.kill() for r in runners), return_exceptions=True)
            raise
        return cls(runners)

    async def request(self, command: Mapping[str, Any], timeout: float = 120.0) -> list[dict[str, Any]]:
        """Send a command to every runner at once; their answers, in runner order."""
        await asyncio.gather(*(r.send(command) for r in self.runners))
        replies = await asyncio.gather(*(r.recv(timeout) for r in self.runners))
        for reply in replies:
            if reply.get("ok") is False:
                raise BenchError(f"runner refused {command.get('cmd')!r}: {reply.get('error')}")
        return list(replies)

    async def quit(self) -> list[dict[str, Any]]:
        byes = await asyncio.gather(*(r.quit() for r in self.runners), return_exceptions=True)
        return [b for b in byes if isinstance(b, dict)]

    async def kill(self) -> None:
        await asyncio.gather(*(r.kill() for r in self.runners), return_exceptions=True)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without the benchmark's station keys (children derive their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(KEY_ENV_PREFIX)}
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------ server-driven baseline


@dataclass
class Baseline:
    clients: int
    round_trips: int
    cpu_runs: list[float] = field(default_factory=list)  # CPU seconds per run
    wall_runs: list[float] = field(default_factory=list)

    @property
    def cpu_per_round_trip(self) -> float:
        return min(self.cpu_runs) / self.round_trips

    @property
    def round_trips_per_second(self) -> float:
        return self.round_trips / min(self.wall_runs)


# What the bare server answers to the calls a simulated charger makes on its own (its boot and the statuses
# that follow; no heartbeat within a measurement with this interval): what any central system answers.
_BARE_ANSWERS: dict[str, dict[str, Any]] = {
    "BootNotification": {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 86400},
    "Heartbeat": {"currentTime": "2026-01-01T00:00:00Z"},
}
QUIET_S = 2.0  # a simulated charger that has said nothing for this long has booted and reported its statuses


BASELINE_MISSING_MAX = 0.01  # the share of baseline clients that may fail to connect (see measure_baseline)


async def measure_baseline(
    tmp: Path,
    clients: int,
    concurrency: int,
    per_client: int,
    repeat: int,
    calls: Sequence[tuple[str, Mapping[str, Any]]],
    loop: str = "asyncio",
    *,
    chargers: Path | None = None,
) -> Baseline:
    """A plain websockets server in THIS process (the controller's websocket options) sending `calls` in
    turn (json.dumps; ids made as the controller makes them: a random prefix and a counter) to `clients`
    clients in a child process and reading the replies (json.loads), `concurrency` connections in flight: CPU
    of this process per round trip, `repeat` runs of `per_client` round trips per client.

    The clients: plain websockets clients (``_fleet_runner.py baseline``: a canned answer per frame), or, with
    `chargers` (a file of identities, one per line), the benchmark's own simulated chargers
    (``_fleet_runner.py fleet``), the very peers the controller talks to: the server answers their boot and
    status calls as a central system would (not measured), then drives them as it drives the plain clients.
    The peers matter on a machine whose two vCPUs share a physical core: whatever runs on the other vCPU
    slows this process's every instruction (a CPU-bound loop runs 40 % slower next to a busy loop on the
    other vCPU here), and the simulated chargers do more per frame than canned clients (bare websockets:
    30-40 % more CPU per round trip with them as peers, measured alternately). With the same peers, only
    the server differs between the baseline and the controller.

    `loop`: the event loop the bare server runs on; by default the standard asyncio loop (the bare stack),
    whatever loop the controller runs on. When it is not the running loop the baseline runs on a loop of
    its own in a worker thread while the running loop waits (idle: no CPU of its own in the figure)."""
    if eventloop.name() != loop:
        return await asyncio.to_thread(
            eventloop.run,
            measure_baseline(tmp, clients, concurrency, per_client, repeat, calls, loop, chargers=chargers), loop,
        )
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.typing import Subprotocol

    from controller.hw.connection import ConnectionLimits, websocket_options

    conns: list[ServerConnection] = []
    done = asyncio.Event()

    async def answer(ws: ServerConnection, frame: list[Any]) -> None:
        await ws.send(json.dumps([3, frame[1], _BARE_ANSWERS.get(frame[2], {})], separators=(",", ":")))

    async def handler(ws: ServerConnection) -> None:
        if chargers is not None:  # a simulated charger boots and reports its statuses first
            while True:
                try:
                    async with asyncio.timeout(QUIET_S):
                        frame = json.loads(await ws.recv())
                except TimeoutError:
                    break
                if frame[0] == 2:
                    await answer(ws, frame)
        conns.append(ws)
        await done.wait()

    options = websocket_options(ConnectionLimits())
    protocols = [Subprotocol("ocpp1.6")] if chargers is not None else None
    async with serve(handler, "127.0.0.1", 0, ping_interval=60.0, ping_timeout=60.0, subprotocols=protocols,
                     **options) as server:
        port = server.sockets[0].getsockname()[1]
        if chargers is not None:
            runner = await Runner.start(tmp / "baseline-fleet.log", "fleet", f"ws://127.0.0.1:{port}/ocpp",
                                        str(chargers), script=FLEET_RUNNER)
        else:
            runner = await Runner.start(
                tmp / "baseline-runner.log", "baseline", f"ws://127.0.0.1:{port}/", str(clients),
                script=FLEET_RUNNER)
        try:
            ready = await runner.recv(timeout=120.0 + clients * 0.05)
            connected = int(ready.get("connected", ready.get("online")) or 0)
            # a few connects lost while ~20,000 loopback connections are open (10,000 chargers and as many
            # baseline clients) leave the measure per round trip as it is: measured on those connected
            if connected < clients * (1 - BASELINE_MISSING_MAX):
                raise BenchError(f"baseline: {connected} of {clients} clients connected")
            if connected != clients:
                print(f"  (baseline: {connected} of {clients} clients connected; measured with those)", flush=True)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30.0 + QUIET_S
            while len(conns) < connected and loop.time() < deadline:
                await asyncio.sleep(0.01)
            result = Baseline(clients, len(conns) * per_client)
            prefix, ids = uuid.uuid4().hex[:12], itertools.count(1)
            gate = asyncio.Semaphore(concurrency)

            async def drive(ws: ServerConnection) -> None:
                async with gate:
                    for i in range(per_client):
                        action, payload = calls[i % len(calls)]
                        frame = [2, f"{prefix}{next(ids):x}", action, payload]
                        await ws.send(json.dumps(frame, separators=(",", ":")))
                        reply = json.loads(await ws.recv())
                        while reply[0] == 2:  # a charger's own call in between (none expected): answered
                            await answer(ws, reply)
                            reply = json.loads(await ws.recv())
                        if reply[1] != frame[1]:
                            raise BenchError("baseline: a reply to another frame")

            for _ in range(repeat):
                cpu0, t0 = time.process_time(), time.perf_counter()
                async with asyncio.timeout(120.0):
                    await asyncio.gather(*(drive(ws) for ws in conns))
                result.wall_runs.append(time.perf_counter() - t0)
                result.cpu_runs.append(time.process_time() - cpu0)
        finally:
            done.set()
            with contextlib.suppress(BenchError):
                await runner.quit(timeout=30.0)
    return result


# ------------------------------------------------------------------------------------------ this process


def status_kib(name: str) -> int:
    """A ``/proc/self/status`` field in KiB (VmRSS, VmHWM...); ru_maxrss where /proc is missing."""
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux: 5 > /proc/self/clear_refs), so the peak is the controller's."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def raise_nofile() -> int:
    """Raise RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of every thread of this process, by thread name (Linux /proc)."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                rest = (task / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
                name = names.get(int(task.name), f"thread {task.name}")
                name = "ThreadPoolExecutor" if name.startswith(("ThreadPoolExecutor", "asyncio_")) else name
                out[name] = out.get(name, 0.0) + (int(rest[11]) + int(rest[12])) / tick
    return out


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    return [
        f"Python {platform.python_version()} ({platform.python_implementation()}) {sys.executable}",
        f"CPU {cpu_model()}, {os.cpu_count()} logical CPUs; {platform.system()} {platform.release()}",
        f"controller event loop: {eventloop.resolve()} (as `chargeops run` picks it; {eventloop.ENV} to choose);"
        " chargers and the bare baseline: asyncio",
    ]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class LogTally(logging.Handler):
    """Counts WARNING+ records of the controller and keeps the last few (the console stays readable)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.by_logger: Counter[str] = Counter()
        self.last: deque[str] = deque(maxlen=5)

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.by_logger[record.name] += 1
        self.last.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:200])

    def print(self) -> None:
        print(f"  controller log: {self.count} warnings or errors" + (":" if self.last else ""))
        for line in self.last:
            print(f"    {line}")


@contextlib.contextmanager
def counting_store_calls(store: object) -> Iterator[Counter[str]]:
    """Count calls of the store's public coroutine methods (instance attributes, removed afterwards)."""
    calls: Counter[str] = Counter()
    names = [n for n in dir(store) if not n.startswith("_") and inspect.iscoroutinefunction(getattr(store, n))]

    def counted(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return await fn(*args, **kwargs)

        return wrapper

    for name in names:
        setattr(store, name, counted(name, getattr(store, name)))
    make_batch = getattr(store, "batch", None)
    if make_batch is not None:  # a batch commits several writes in one trip: count the trips and the writes

        def batch() -> Any:
            b = make_batch()
            commit = b.commit

            async def counted_commit() -> None:
                calls["batch commit"] += 1
                calls["  writes in batches"] += len(b)
                await commit()

            b.commit = counted_commit
            return b

        store.batch = batch
    try:
        yield calls
    finally:
        for name in [*names, "batch"]:
            with contextlib.suppress(AttributeError):
                delattr(store, name)


# ------------------------------------------------------------------------------------------ child side
# Runner processes (_fleet_runner.py, _scale_runner.py) read JSON-line commands on stdin and answer on stdout.

MAX_COMMANDS = 10_000


def emit(obj: Mapping[str, Any]) -> None:
    """One JSON line to the parent."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def read_commands() -> AsyncIterator[dict[str, Any]]:
    """Commands from stdin until end of input (at most MAX_COMMANDS; the caller bounds the time)."""
    loop = asyncio.get_running_loop()
    for _ in range(MAX_COMMANDS):
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip():
            yield json.loads(line)


def scale_parser(doc: str | None, *, quick: str, profile: str) -> argparse.ArgumentParser:
    """The options every scale benchmark has: --stations (10,000), --quick, --processes, --profile(-top)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=10_000, help="declared stations = simulated chargers (N)")
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--processes", type=int, default=0, help="charger processes (default: 2-4, ~2,500 each)")
    ap.add_argument("--profile", action="store_true", help=profile)
    ap.add_argument("--profile-top", type=int, default=15)
    return ap


def run_in_tmp(name: str, run: Callable[[Path], Awaitable[int]]) -> int:
    """Run a benchmark's `run(tmp)` in a fresh temporary directory; a BenchError is printed, exit status 1."""
    try:
        with tempfile.TemporaryDirectory(prefix=f"chargeops-bench-{name}-") as tmp_name:
            return eventloop.run(run(Path(tmp_name)))  # the loop `chargeops run` would pick
    except BenchError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        return 1


class GcWatch:
    """Wall time spent in the cyclic garbage collector, per generation, until `stop()`."""

    def __init__(self) -> None:
        self.by_gen: dict[int, list[float]] = {}
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        slot = self.by_gen.setdefault(info["generation"], [0, 0.0])
        slot[0] += 1
        slot[1] += time.perf_counter() - self._started

    def stop(self) -> dict[int, list[float]]:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._callback)
        return self.by_gen


@contextlib.contextmanager
def counting_looks(ctl: Any) -> Iterator[Counter[str]]:
    """Count the reconciler's looks by their reasons ("revision", "applied+status", ...)."""
    calls: Counter[str] = Counter()
    rec = ctl.reconciler
    look = rec.look

    async def counted(identity: str, reasons: set[str]) -> None:
        calls["+".join(sorted(reasons)) or "(none)"] += 1
        await look(identity, reasons)

    rec.look = counted
    try:
        yield calls
    finally:
        with contextlib.suppress(AttributeError):
            del rec.look


# ------------------------------------------------------------------------------------------ controller progress


def synced_on(ctl: Any, names: Sequence[str], revision: str) -> list[str]:
    """The stations of `names` not yet Synced on `revision` (``ctl.reconciler.status``)."""
    from controller.runtime.status import Sync

    assert ctl.reconciler is not None
    status = ctl.reconciler.status
    return [
        n
        for n in names
        if (s := status.get(n)) is None or s.sync is not Sync.SYNCED or s.last_applied_revision != revision
    ]


class SyncPoll:
    """`synced_on` for a benchmark's polling loop, timing its own CPU (`time.thread_time`: it runs on the
    controller's thread), so that the benchmark's polling can be subtracted from the controller's CPU (at
    10,000 stations, checking who is Synced every 20 ms was ~7 % of a change's process CPU)."""

    def __init__(self, ctl: Any, revision: str) -> None:
        self.ctl = ctl
        self.revision = revision
        self.cpu = 0.0

    def left(self, names: Sequence[str]) -> list[str]:
        started = time.thread_time()
        try:
            return synced_on(self.ctl, names, self.revision)
        finally:
            self.cpu += time.thread_time() - started


async def wait_synced(ctl: Any, names: Sequence[str], timeout: float, poll: float = 0.02) -> list[str]:
    """Wait until every station of `names` is Synced on the revision in force; the ones left at timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    left = list(names)
    while loop.time() < deadline:
        revision = ctl.desired.revision
        if revision is not None:
            left = synced_on(ctl, left, revision)
            if not left:
                return []
        await asyncio.sleep(poll)
    return left


class LookTimes:
    """Wraps ``ctl.reconciler.look`` (an instance attribute; the class is untouched) to record, per station,
    when its last look for a connect or a boot ended (``time.time()``), and how many such looks ran."""

    WATCHED = frozenset({"connect", "boot"})

    def __init__(self, reconciler: Any) -> None:
        self.reconciler = reconciler
        self.done_at: dict[str, float] = {}
        self.looks: Counter[str] = Counter()
        inner = reconciler.look

        async def look(identity: str, reasons: set[str]) -> None:
            try:
                await inner(identity, reasons)
            finally:
                if reasons & self.WATCHED:
                    key = identity.upper()
                    self.done_at[key] = time.time()
                    self.looks[key] += 1

        reconciler.look = look

    def reset(self) -> None:
        self.done_at.clear()
        self.looks.clear()

    def not_synced_since(self, names: Sequence[str], since: float) -> list[str]:
        """Stations without a connect/boot look ended after `since`, or not Synced now."""
        from controller.runtime.status import Sync

        status = self.reconciler.status
        return [
            n
            for n in names
            if self.done_at.get(n.upper(), 0.0) < since or (s := status.get(n.upper())) is None
            or s.sync is not Sync.SYNCED
        ]

    async def wait(self, names: Sequence[str], since: float, timeout: float, poll: float = 0.05) -> list[str]:
        """Wait until every station is Synced after a connect/boot look that ended after `since`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        left = list(names)
        while loop.time() < deadline:
            left = self.not_synced_since(left, since)
            if not left:
                return []
            await asyncio.sleep(poll)
        return left

    def last_done(self, names: Sequence[str]) -> float:
        return max((self.done_at.get(n.upper(), 0.0) for n in names), default=0.0)


# ------------------------------------------------------------------------------------------ owner repository


def identities(n: int, prefix: str = "SIM-") -> list[str]:
    width = max(4, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def key_env(identity: str) -> str:
    return KEY_ENV_PREFIX + "".join(c if c.isalnum() else "_" for c in identity.upper())


def station_key(identity: str, seed: str = "chargeops-bench") -> str:
    """The station's AuthorizationKey: 16 bytes as 32 hex digits, derived from its identity."""
    return hashlib.sha256(f"{seed}/{identity}".encode()).hexdigest()[:32]


def export_keys(names: Sequence[str]) -> None:
    """Put every station's key in this process's environment, where its ``{env: ...}`` reference points."""
    for name in names:
        os.environ[key_env(name)] = station_key(name)


def card_tag(i: int, prefix: str = "BC") -> str:
    return f"{prefix}{i:08X}"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")  # hidden: the directory source ignores it
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


async def write_and_take(ctl: Any, path: Path, text: str, timeout: float) -> bool:
    """`write_atomic(path, text)` into the controller's watched repository, then wait until the controller takes
    a new revision (True) or `timeout` passes (False), without polling: `ctl.desired.offer` is wrapped for the
    wait (an instance attribute, removed after; the class is untouched). Polling every 10 ms through the ~0.6 s
    until a revision is taken cost ~10 ms of CPU counted as the controller's: on this machine every wake-up of
    an idle event loop costs ~170-250 us of CPU (a bare asyncio or uvloop loop waking from `sleep(0.01)`,
    measured 2026-12-07)."""
    holder = ctl.desired
    inner = holder.offer
    taken = asyncio.Event()

    def offer(*args: Any, **kwargs: Any) -> bool:
        ok = inner(*args, **kwargs)
        if ok:
            taken.set()
        return bool(ok)

    holder.offer = offer
    try:
        write_atomic(path, text)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(taken.wait(), timeout)
    finally:
        del holder.offer
    return taken.is_set()


def cards_text(group: str, tags: Sequence[str], list_name: str | None = None) -> str:
    from tests.config.ownerrepo import card, card_list, dump

    cards = [card(tag, f"drv-{i:06d}") for i, tag in enumerate(tags)]
    return dump(card_list(list_name or f"{group}-cards", group, *cards))


def write_scale_repo(
    repo: Path,
    names: Sequence[str],
    *,
    groups: Mapping[str, Sequence[str]],
    access: Callable[[int, str], list[str]],
    offline_authorization: bool = True,
    security_profile: int = 1,
    settings: Mapping[str, Any] | None = None,
    evses: int = 2,
    billing: bool = False,
) -> None:
    """An owner repo for N stations with an AuthorizationKey each (``{env: ...}``, see ``export_keys``).

    `groups`: access group -> its idTags (one CardList file per group); `access(i, identity)`: the groups
    a station is restricted to ([] = public). `settings`: the owner's default ocppConfiguration.
    `billing`: Flex Billing on, with one tariff (0.35 per kWh) for every station.
    """
    from tests.config.ownerrepo import dump, evse, group, owner, station, tariff

    repo.mkdir(parents=True, exist_ok=True)
    defaults: dict[str, Any] = {
        "offlineAuthorization": offline_authorization,
        "ocppConfiguration": dict(settings or {"HeartbeatInterval": 300, "MeterValueSampleInterval": 60}),
    }
    if billing:
        defaults["tariff"] = "standard"
        (repo / "tariffs.yaml").write_text(dump(tariff("standard")), encoding="utf-8")
    (repo / "owner.yaml").write_text(
        dump(owner("bench-owner", billing=billing, defaults=defaults, rollout={"waves": [100]})), encoding="utf-8"
    )
    (repo / "groups.yaml").write_text(dump(*(group(g) for g in groups)), encoding="utf-8")
    cards = repo / "cards"
    cards.mkdir(exist_ok=True)
    for g, tags in groups.items():
        write_atomic(cards / f"{g}.yaml", cards_text(g, tags))
    docs = []
    for i, name in enumerate(names):
        spec: dict[str, Any] = {
            "securityProfile": security_profile,
            "credentials": {"authorizationKey": {"env": key_env(name)}},
        }
        chosen = access(i, name)
        spec["access"] = {"mode": "restricted", "groups": chosen} if chosen else {"mode": "public"}
        docs.append(station(f"st-{name.lower()}", name, evses=[evse(e) for e in range(1, evses + 1)], **spec))
    (repo / "stations.yaml").write_text(dump(*docs), encoding="utf-8")


# ------------------------------------------------------------------------------------------ TLS


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (EC P-256, 2 days) made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    cmd = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchError(f"openssl could not make a self-signed certificate: {exc}") from exc
    return cert, key


# ------------------------------------------------------------------------------------------ reporting


def pass_fail(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def spread(values: Sequence[float]) -> str:
    """min / median / max."""
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[0]:g} / {ordered[len(ordered) // 2]:g} / {ordered[-1]:g}"


def histogram_spread(hist: Mapping[Any, int]) -> str:
    """min / median / max of values given as {value: how many}."""
    if not hist:
        return "-"
    values = sorted((float(k), n) for k, n in hist.items())
    total = sum(n for _, n in values)
    seen, median = 0, values[0][0]
    for value, n in values:
        seen += n
        if seen * 2 > total:
            median = value
            break
    return f"{values[0][0]:g} / {median:g} / {values[-1][0]:g}"


def say(text: str, t_start: float) -> None:
    print(f"  [{time.perf_counter() - t_start:6.1f} s] {text}", flush=True)


@dataclass
class Table:
    """Rows of measure / controller / baseline / target / verdict, printed aligned."""

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def add(self, label: str, value: str = "", baseline: str = "", target: str = "", verdict: str = "") -> None:
        self.rows.append((label, value, baseline, target, verdict))

    def print(self, value_title: str = "controller", baseline_title: str = "bare websockets") -> None:
        heads = ("measure", value_title, baseline_title, "target", "verdict")
        widths = [max(len(heads[i]), *(len(r[i]) for r in self.rows)) + 2 for i in range(4)]
        print("  " + "".join(h.ljust(w) for h, w in zip(heads, widths, strict=False)) + heads[4])
        print("  " + "-" * (sum(widths) + 7))
        for row in self.rows:
            print("  " + "".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + row[4])


def print_profile(prof: cProfile.Profile, top: int) -> None:
    """Top functions by own and cumulative time; the event loop's idle wait (epoll) is left out."""
    for key in ("tottime", "cumulative"):
        stats = pstats.Stats(prof, stream=sys.stdout)
        table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        idle = [k for k in table if k[2].startswith("<method 'poll' of 'select.")]
        idle_s = sum(table.pop(k)[2] for k in idle)
        print(f"\n-- sorted by {key} (the event loop's wait in epoll left out: {idle_s:.2f} s)")
        stats.strip_dirs().sort_stats(key).print_stats(top)
    print_own_time_by_module(prof, top)


def print_own_time_by_module(prof: cProfile.Profile, top: int) -> None:
    """Own time summed by source file (built-ins under the name of the module that calls them most): where
    the time goes when no single function stands out."""
    table: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    by_file: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in table.items():
        if name.startswith("<method 'poll' of 'select."):
            continue
        if filename == "~" and callers:  # a built-in: charged to the file of its heaviest caller
            filename = max(callers.items(), key=lambda item: item[1][2])[0][0]
        by_file[filename] = by_file.get(filename, 0.0) + tottime
    total = sum(by_file.values()) or 1.0
    print(f"\n-- own time by source file (built-ins charged to their heaviest caller's file), top {top}")
    for filename, seconds in sorted(by_file.items(), key=lambda item: -item[1])[:top]:
        short = "/".join(Path(filename).parts[-3:]) if filename != "~" else "(built-ins)"
        print(f"  {seconds:8.3f} s {100 * seconds / total:5.1f} %  {short}")


@contextlib.contextmanager
def profiling(enabled: bool, limit: float | None = None) -> Iterator[cProfile.Profile | None]:
    """cProfile of the main thread's CPU time (time.thread_time) while the block runs, when enabled; with
    `limit`, only its first `limit` seconds (the running event loop stops the profiler then)."""
    if not enabled:
        yield None
        return
    prof = cProfile.Profile(time.thread_time)
    handle = asyncio.get_running_loop().call_later(limit, prof.disable) if limit else None
    prof.enable()
    try:
        yield prof
    finally:
        prof.disable()
        if handle is not None:
            handle.cancel()


# ------------------------------------------------------------------------------------------ storms


@dataclass
class StormResult:
    """One storm: every charger of a pool connecting at once, timed from the command (``time.time()``)."""

    label: str
    chargers: int = 0
    connected: int = 0
    booted: int = 0
    ready: int = 0
    synced: int = 0
    connect_s: float = math.nan  # last charger connected (websocket open)
    boot_s: float = math.nan  # last BootNotification answered Accepted
    ready_s: float = math.nan  # every charger online (noticed by the runners' 20 ms poll)
    synced_s: float = math.nan  # every station Synced after the look its connect or boot caused
    boot_attempts: int = 0
    boot_failures: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    listen_drops: int = 0  # TcpExt ListenDrops during the storm: SYNs dropped on a full accept queue
    connects: dict[str, int] = field(default_factory=dict)  # websocket connects per charger: {count: chargers}
    calls: dict[str, dict[str, int]] = field(default_factory=dict)  # action -> {calls: chargers}

    @property
    def all_ready(self) -> bool:
        return self.ready == self.chargers

    def per_charger(self, action: str) -> str:
        hist = self.calls.get(action)
        if hist is None:
            return "0 / 0 / 0" if self.calls else "-"
        missing = self.chargers - sum(hist.values())
        return histogram_spread({**hist, **({"0": missing} if missing > 0 else {})})

    def exactly(self, action: str, n: int) -> bool:
        hist = self.calls.get(action, {})
        return hist.get(str(n), 0) == self.chargers


def listen_drops() -> int:
    """The kernel's count of connection requests dropped at a listening socket (TcpExt ListenDrops)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = Path("/proc/net/netstat").read_text(encoding="ascii").splitlines()
        head, values = next((a, b) for a, b in itertools.pairwise(lines) if a.startswith("TcpExt:")
                            and b.startswith("TcpExt:"))
        return int(dict(zip(head.split()[1:], values.split()[1:], strict=False))["ListenDrops"])
    return 0


def merge_counts(replies: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Sum the runners' {action: {calls: chargers}} histograms."""
    out: dict[str, Counter[str]] = {}
    for reply in replies:
        for action, hist in reply.get("hist", {}).items():
            out.setdefault(action, Counter()).update({str(k): int(v) for k, v in hist.items()})
    return {a: dict(c) for a, c in out.items()}


async def run_storm(
    pool: RunnerPool,
    label: str,
    *,
    url: str | None = None,
    timeout: float = 300.0,
    ctl: Any = None,
    looks: LookTimes | None = None,
    names: Sequence[str] = (),
) -> StormResult:
    """Release every charger of the pool at once; with a controller, wait for every station Synced too."""
    await pool.request({"cmd": "mark"})
    drops0 = listen_drops()
    t0 = time.time()
    replies = await pool.request({"cmd": "storm", "url": url, "timeout": timeout}, timeout=timeout + 60)
    res = StormResult(label)
    res.listen_drops = listen_drops() - drops0
    for r in replies:
        res.chargers += r["chargers"]
        res.connected += r["connected"]
        res.booted += r["booted"]
        res.ready += r["ready"]
        res.boot_attempts += r["boot_attempts"]
        res.boot_failures += r["boot_failures"]
        res.errors.update(r.get("errors", {}))
        for k, v in r.get("connects", {}).items():
            res.connects[k] = res.connects.get(k, 0) + int(v)
    if res.connected == res.chargers:
        res.connect_s = max(r["connected_at"] for r in replies) - t0
    if res.booted == res.chargers:
        res.boot_s = max(r["booted_at"] for r in replies) - t0
    if res.all_ready:
        res.ready_s = max(r["ready_at"] for r in replies) - t0
    if ctl is not None and looks is not None:
        left = await looks.wait(names, t0, timeout)
        res.synced = len(names) - len(left)
        if not left:
            status = ctl.reconciler.status
            ends = []
            for name in names:
                end = looks.done_at.get(name.upper(), t0)
                st = status.get(name.upper())
                if st is not None and st.converged_at is not None and st.converged_at.timestamp() >= t0:
                    end = max(end, st.converged_at.timestamp())
                ends.append(end)
            res.synced_s = max(ends) - t0
    res.calls = merge_counts(await pool.request({"cmd": "counts"}))
    return res


def fmt_s(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds:.2f} s"


class LoopLag:
    """How late the event loop runs a 100 ms timer (max and p99 of the lateness while running).

    A proxy for what every other charger of the controller waits (a Heartbeat, an Authorize, a pong) while
    the loop runs CPU-bound work."""

    def __init__(self, period: float = 0.1) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, loop.time() - t0 - self.period))
            if len(self.lags) > 1_000_000:
                del self.lags[:500_000]

    def __enter__(self) -> LoopLag:
        self.lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    @property
    def max_s(self) -> float:
        return max(self.lags, default=0.0)

    def line(self) -> str:
        if not self.lags:
            return "-"
        return f"p99 {percentile(self.lags, 99) * 1000:,.0f} ms, max {self.max_s:,.1f} s"
