"""The simulated side of the scale benchmarks, in its own process (so the controller's CPU is its own).

    python bench/_scale_runner.py chargers URL IDENTITIES_FILE [--index I] [--model basic|biglist]
                                  [--time-scale S] [--reconnect-delay S] [--max-seconds S]
    python bench/_scale_runner.py bare [--tls-cert CERT --tls-key KEY] [--max-seconds S]

Both modes talk JSON lines: one event or answer per command on stdout, commands on stdin; logs go to
stderr. RLIMIT_NOFILE is raised to the hard limit first (a runner holds a few thousand sockets).

chargers
    One ``BenchCharger`` (a ``SimulatedCharger`` subclass; the simulator itself is unchanged) per
    identity in the file, password = ``_common.station_key(identity)``, created but not started.
    Prints ``{"event": "ready"}``. For ``wss://`` URLs the certificate is trusted through
    ``SSL_CERT_FILE`` in the environment. Commands:

    ``{"cmd": "storm", "url": U, "timeout": s}``   every charger connects at once (the first time: starts;
        later: leaves hold); answers when all are connected and ready (booted and Accepted, or
        reconnected) or at the timeout: wall-clock times (``time.time()``) of the last connect / boot /
        ready, boots tried and failed, connect errors
    ``{"cmd": "hold", "close": "none" | "abort" | "reboot"}``   no charger reconnects until the next
        storm; ``abort`` drops every connection (a network blip, no close frame), ``reboot`` power-cycles
        every charger (closes with 1001; the next connect sends BootNotification); ``none`` leaves the
        connections to the central system (it is about to stop)
    ``{"cmd": "parked", "timeout": s}``   wait until no charger has a connection and every one is held
    ``{"cmd": "mark"}`` / ``{"cmd": "counts"}``   calls each charger received since the mark, as
        histograms ``{action: {calls: chargers}}`` (SendLocalList also by update type, calls and entries)
    ``{"cmd": "prefill", "sessions": k, "seconds": s}``   start k sessions spread over s seconds (not
        measured), then wait for their StartTransaction answers
    ``{"cmd": "steady", ...}``   the steady-state workload for ``seconds``: session starts (and as many
        stops) at ``start_rate`` per second, reconnects at ``reconnect_rate`` per second; answers with the
        charger-side latencies (send -> answer) of Authorize, StartTransaction, StopTransaction and
        MeterValues, and the failures
    ``{"cmd": "quit"}``   stop every charger and exit (``{"event": "bye"}``)

bare
    A plain websockets server on 127.0.0.1 (the controller's websocket options: no compression, same
    ``max_size`` / ``max_queue``; subprotocol ocpp1.6; TLS when a certificate is given) that answers
    every CALL with a small canned CALLRESULT after ``json.loads`` (BootNotification Accepted,
    Authorize / Start / StopTransaction Accepted with a transactionId, ``{}`` otherwise). Prints
    ``{"event": "ready", "port": p}``. ``{"cmd": "rss"}`` answers its VmRSS and open connections.

Every wait is bounded: commands by end of input, 10,000 commands and ``--max-seconds`` (default 3,600),
storms and drains by their timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import itertools
import json
import logging
import random
import ssl
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _common import emit, raise_nofile, read_commands, station_key, status_kib
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from controller.hw.connection import ConnectionLimits, OcppConnection, websocket_options
from controller.hw.errors import ChargerError
from controller.hw.ocppj import Call
from controller.hw.sim.auth import LocalAuthList
from controller.hw.sim.charger import SimulatedCharger
from controller.hw.sim.connectors import Connector, ReceivedCall
from controller.hw.sim.model import ChargerModel
from controller.hw.sim.sessions import Sessions

TIMED = ("Authorize", "StartTransaction", "StopTransaction", "MeterValues", "BootNotification")
MODELS = {
    "basic": ChargerModel(),
    # a charger with room for a 5,000-card list, taking 250 entries per SendLocalList (64 KiB frames)
    "biglist": ChargerModel(model="SimCharger XL", local_list_max_length=10_000, send_local_list_max_length=250),
}
log = logging.getLogger("bench.runner")


# ------------------------------------------------------------------------------------------ chargers


class Shared:
    """State every charger of the runner shares: the measuring switch and what was measured."""

    def __init__(self) -> None:
        self.measuring = False
        self.latency: dict[str, list[float]] = {a: [] for a in TIMED}
        self.errors: Counter[str] = Counter()

    def reset(self) -> None:
        self.latency = {a: [] for a in TIMED}
        self.errors.clear()


class CountingList(LocalAuthList):
    """A local list that keeps its version and size but not its entries (10,000 chargers x 5,000 cards)."""

    def __init__(self, capacity: int, per_message: int) -> None:
        super().__init__(capacity, per_message)
        self.size = 0

    def apply(self, version: int, update_type: str, items: list[Any]) -> Any:
        from ocpp.v16.enums import UpdateStatus, UpdateType

        if self.capacity <= 0:
            return UpdateStatus.not_supported
        if len(items) > self.per_message or not all(isinstance(i, dict) and "idTag" in i for i in items):
            return UpdateStatus.failed
        adds = sum(1 for i in items if i.get("idTagInfo") is not None)
        if update_type == UpdateType.full.value:
            size = adds
        elif update_type == UpdateType.differential.value:
            if version <= self.version:
                return UpdateStatus.version_mismatch
            size = self.size + adds - (len(items) - adds)  # an upper bound when an update replaces an entry
        else:
            return UpdateStatus.failed
        if size > self.capacity:
            return UpdateStatus.failed
        self.size, self.version = max(0, size), version
        return UpdateStatus.accepted

    def clear(self) -> None:
        super().clear()
        self.size = 0


PHASES = ("L1", "L2", "L3")


class BenchSessions(Sessions):
    """Periodic meter values with 4-8 sampled values (energy, power, then per-phase current and voltage)."""

    def __init__(self, charger: SimulatedCharger, samples: int) -> None:
        super().__init__(charger)
        self.samples = samples

    def sample(self, connector: Connector, context: str, measurands: str | None = None) -> dict[str, Any]:
        if context != "Sample.Periodic":
            return super().sample(connector, context, measurands)
        power = self.cp.model.max_power_w if connector.transaction is not None else 0
        values: list[dict[str, Any]] = [
            {"value": str(connector.meter_wh), "context": context, "measurand": "Energy.Active.Import.Register",
             "location": "Outlet", "unit": "Wh"},
            {"value": str(power), "context": context, "measurand": "Power.Active.Import", "location": "Outlet",
             "unit": "W"},
        ]
        for phase in PHASES:
            values.append({"value": f"{power / 690:.1f}", "context": context, "measurand": "Current.Import",
                           "phase": phase, "location": "Outlet", "unit": "A"})
        for phase in PHASES:
            values.append({"value": "230.0", "context": context, "measurand": "Voltage", "phase": phase,
                           "location": "Outlet", "unit": "V"})
        return {"timestamp": self.cp.timestamp(), "sampledValue": values[: self.samples]}


class BenchCharger(SimulatedCharger):
    """A simulated charger that records when it connected and booted and how long its calls took."""

    def __init__(self, identity: str, url: str, shared: Shared, **options: Any) -> None:
        super().__init__(identity, url, station_key(identity), **options)
        self.shared = shared
        self.connected_at = 0.0
        self.booted_at = 0.0
        self.boot_attempts = 0
        self.boot_failures = 0
        self.open_failures: Counter[str] = Counter()
        self.sessions = BenchSessions(self, 4 + zlib.crc32(identity.encode()) % 5)  # 4-8 sampled values
        if self.model.local_list_max_length > 1_000:
            self.local_list = CountingList(self.model.local_list_max_length, self.model.send_local_list_max_length)
        inner = self._handlers["SendLocalList"]

        async def send_local_list(call: Call) -> Mapping[str, Any]:
            try:
                return await inner(call)
            finally:  # keep what was sent, not the 250 entries (memory)
                items = call.payload.get("localAuthorizationList") or []
                summary = {"updateType": call.payload.get("updateType"), "listVersion": call.payload.get("listVersion"),
                           "entries": len(items) if isinstance(items, list) else 0}
                for i in range(len(self.received) - 1, -1, -1):
                    rec = self.received[i]
                    if rec.message_id == call.message_id and rec.action == "SendLocalList":
                        self.received[i] = ReceivedCall(rec.action, summary, rec.message_id, rec.at)
                        break

        self._handlers["SendLocalList"] = send_local_list

    async def _open(self) -> ClientConnection:
        try:
            ws = await super()._open()
        except Exception as exc:  # refused, timed out, HTTP 401/503...: counted, the charger tries again
            self.open_failures[_reason(exc)] += 1
            raise
        self.connected_at = time.time()
        return ws

    async def _boot(self, conn: OcppConnection) -> None:
        await super()._boot(conn)
        self.booted_at = time.time()

    async def send(self, action: str, payload: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            reply = await super().send(action, payload, timeout=timeout)
        except ChargerError as err:
            if action == "BootNotification":
                self.boot_attempts += 1
                self.boot_failures += 1
            if self.shared.measuring:
                self.shared.errors[f"{action}: {type(err).__name__}"] += 1
            raise
        finally:
            if len(self.sent) > 200:  # keep the record of calls made bounded (steady state runs for minutes)
                del self.sent[:100]
        if action == "BootNotification":
            self.boot_attempts += 1
            if reply.get("status") != "Accepted":
                self.boot_failures += 1
        if self.shared.measuring and action in self.shared.latency:
            self.shared.latency[action].append(time.perf_counter() - t0)
            info = reply.get("idTagInfo")
            if isinstance(info, dict) and info.get("status") not in (None, "Accepted"):
                self.shared.errors[f"{action}: {info.get('status')}"] += 1
        return reply


def _reason(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__} {status}" if status else type(exc).__name__


class Chargers:
    """The runner's chargers and the commands that drive them."""

    def __init__(self, chargers: list[BenchCharger], shared: Shared, reconnect_delay: float, seed: int) -> None:
        self.chargers = chargers
        self.by_id = {cp.identity: cp for cp in chargers}
        self.shared = shared
        self.reconnect_delay = reconnect_delay
        self.started = False
        self.marks: dict[str, int] = {}
        self.rnd = random.Random(seed)
        self.active: dict[str, tuple[str, float]] = {}  # identity -> (card, started)
        self.busy: set[str] = set()  # chargers with a start or stop under way
        self.cards: deque[str] = deque()
        self.tasks: set[asyncio.Task[Any]] = set()

    # -- storms

    async def storm(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        t0 = time.time()
        url = cmd.get("url")
        for cp in self.chargers:
            if url:
                cp.url = url
            cp.connected_at = cp.booted_at = 0.0
            cp.open_failures.clear()
        connects0 = {cp.identity: cp.connect_count for cp in self.chargers}
        boots0 = sum(cp.boot_attempts for cp in self.chargers)
        fails0 = sum(cp.boot_failures for cp in self.chargers)
        if not self.started:
            self.started = True
            for cp in self.chargers:
                await cp.start()
        else:
            for cp in self.chargers:
                cp.go_online()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(cmd.get("timeout", 300.0))
        while loop.time() < deadline:
            if all(cp.online and cp.connected_at >= t0 for cp in self.chargers):
                break
            await asyncio.sleep(0.02)
        connected = [cp.connected_at for cp in self.chargers if cp.connected_at >= t0]
        booted = [cp.booted_at for cp in self.chargers if cp.booted_at >= t0]
        ready = [cp for cp in self.chargers if cp.online]
        errors: Counter[str] = Counter()
        for cp in self.chargers:
            errors.update(cp.open_failures)
        return {
            "ok": True,
            "t0": t0,
            "chargers": len(self.chargers),
            "connected": len(connected),
            "connected_at": max(connected, default=0.0),
            "booted": len(booted),
            "booted_at": max(booted, default=0.0),
            "ready": len(ready),
            "ready_at": time.time(),
            "boot_attempts": sum(cp.boot_attempts for cp in self.chargers) - boots0,
            "boot_failures": sum(cp.boot_failures for cp in self.chargers) - fails0,
            "connects": dict(Counter(str(cp.connect_count - connects0[cp.identity]) for cp in self.chargers)),
            "errors": dict(errors),
        }

    async def hold(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        close = cmd.get("close", "none")
        for cp in self.chargers:
            cp._want_online.clear()
        if close == "abort":
            for cp in self.chargers:
                await cp.drop_connection()
        elif close == "reboot":
            await asyncio.gather(*(cp.reboot() for cp in self.chargers), return_exceptions=True)
        elif close != "none":
            return {"ok": False, "error": f"unknown close {close!r}"}
        return {"ok": True}

    async def parked(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(cmd.get("timeout", 120.0))
        while loop.time() < deadline and any(cp.connection is not None for cp in self.chargers):
            await asyncio.sleep(0.05)
        left = sum(1 for cp in self.chargers if cp.connection is not None)
        await asyncio.sleep(self.reconnect_delay + 0.5)  # every charger is past its reconnect delay, held
        return {"ok": left == 0, "connected": left, "error": f"{left} chargers still connected"}

    # -- counting

    def mark(self) -> dict[str, Any]:
        self.marks = {cp.identity: len(cp.received) for cp in self.chargers}
        return {"ok": True}

    def counts(self) -> dict[str, Any]:
        per: dict[str, Counter[int]] = {}
        actions: set[str] = set()
        rows: list[Counter[str]] = []
        for cp in self.chargers:
            got: Counter[str] = Counter()
            for call in cp.received[self.marks.get(cp.identity, 0) :]:
                got[call.action] += 1
                if call.action == "SendLocalList":
                    kind = str(call.payload.get("updateType"))
                    got[f"SendLocalList {kind} calls"] += 1
                    entries = call.payload.get("entries")
                    if not isinstance(entries, int):
                        items = call.payload.get("localAuthorizationList") or []
                        entries = len(items) if isinstance(items, list) else 0
                    got[f"SendLocalList {kind} entries"] += entries
            rows.append(got)
            actions.update(got)
        for got in rows:
            for action in actions:
                per.setdefault(action, Counter())[got[action]] += 1
        return {"ok": True, "chargers": len(self.chargers), "hist": {a: dict(c) for a, c in per.items()}}

    # -- sessions

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def start_session(self, cp: BenchCharger) -> None:
        card = self.cards.popleft()
        self.busy.add(cp.identity)
        try:
            await cp.plug_in(1)
            answer = await cp.present_card(card, 1)
            if answer == "Accepted":
                self.active[cp.identity] = (card, time.monotonic())
                return
            self.shared.errors[f"start: {answer}"] += 1
            await cp.unplug(1)
            self.cards.append(card)
        except Exception as exc:  # a reconnect in the middle: counted, the load goes on
            self.shared.errors[f"start: {type(exc).__name__}"] += 1
            self.cards.append(card)
        finally:
            self.busy.discard(cp.identity)

    async def stop_session(self, identity: str) -> None:
        card, _ = self.active.pop(identity)
        cp = self.by_id[identity]
        self.busy.add(identity)
        try:
            await cp.stop_transaction(1)
            await cp.unplug(1)
        finally:
            self.busy.discard(identity)
            self.cards.append(card)  # reused last (FIFO): long after its StopTransaction went out

    def idle_charger(self) -> BenchCharger | None:
        for _ in range(50):
            cp = self.rnd.choice(self.chargers)
            if cp.online and cp.identity not in self.active and cp.identity not in self.busy:
                return cp
        return None

    async def prefill(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        if not self.cards:
            self.cards.extend(cmd.get("cards", []))
        want = int(cmd["sessions"])
        seconds = max(0.1, float(cmd.get("seconds", 10.0)))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for i in range(want):
            delay = t0 + seconds * i / max(1, want) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            cp = self.idle_charger()
            if cp is None or not self.cards:
                break
            self.spawn(self.start_session(cp))
        deadline = loop.time() + 120.0
        while loop.time() < deadline and (self.tasks or any(cp.tx_queue for cp in self.chargers)):
            await asyncio.sleep(0.1)
        return {"ok": True, "active": len(self.active), "errors": dict(self.shared.errors)}

    async def steady(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        seconds = float(cmd["seconds"])
        start_rate = float(cmd["start_rate"])
        reconnect_rate = float(cmd["reconnect_rate"])
        max_inflight = int(cmd.get("max_inflight", 500))
        self.shared.reset()
        self.shared.measuring = True
        loop = asyncio.get_running_loop()
        t0 = last = loop.time()
        starts_due = reconnects_due = 0.0
        starts = stops = reconnects = skipped = 0
        try:
            while (now := loop.time()) - t0 < seconds:
                dt_ = now - last
                last = now
                starts_due += start_rate * dt_
                reconnects_due += reconnect_rate * dt_
                while starts_due >= 1.0:
                    starts_due -= 1.0
                    cp = self.idle_charger()
                    if cp is None or not self.cards or len(self.tasks) >= max_inflight:
                        skipped += 1
                        continue
                    self.spawn(self.start_session(cp))
                    starts += 1
                    stoppable = [i for i, _ in sorted(self.active.items(), key=lambda kv: kv[1][1])[:20]
                                 if i not in self.busy]
                    if stoppable:  # as many stops as starts: the share in a session stays where it is
                        self.spawn(self.stop_session(stoppable[0]))
                        stops += 1
                while reconnects_due >= 1.0:
                    reconnects_due -= 1.0
                    cp = self.rnd.choice(self.chargers)
                    if cp.online:
                        await cp.drop_connection()
                        reconnects += 1
                await asyncio.sleep(0.05)
            deadline = loop.time() + 60.0
            while loop.time() < deadline and self.tasks:
                await asyncio.sleep(0.1)
        finally:
            self.shared.measuring = False
        return {
            "ok": True,
            "latency": self.shared.latency,
            "errors": dict(self.shared.errors),
            "starts": starts,
            "stops": stops,
            "reconnects": reconnects,
            "skipped": skipped,
            "active": len(self.active),
            "online": sum(1 for cp in self.chargers if cp.online),
            "queued": sum(len(cp.tx_queue) for cp in self.chargers),
            "discarded": sum(len(cp.discarded) for cp in self.chargers),
            "cpu": time.process_time(),
        }

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(cp.stop() for cp in self.chargers), return_exceptions=True)


async def run_chargers(args: argparse.Namespace) -> None:
    identities = [line.strip() for line in Path(args.target).read_text().splitlines() if line.strip()]
    shared = Shared()
    limits = ConnectionLimits(rate_per_second=1000, burst=1000)
    chargers = [
        BenchCharger(identity, args.url, shared, model=MODELS[args.model], time_scale=args.time_scale,
                     reconnect_delay=args.reconnect_delay, call_timeout=args.call_timeout, limits=limits)
        for identity in identities
    ]
    fleet = Chargers(chargers, shared, args.reconnect_delay, seed=args.index)
    emit({"event": "ready", "chargers": len(chargers), "nofile": args.nofile})
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.max_seconds):
                async for cmd in read_commands():
                    name = cmd.get("cmd")
                    if name == "quit":
                        break
                    try:
                        if name == "storm":
                            emit(await fleet.storm(cmd))
                        elif name == "hold":
                            emit(await fleet.hold(cmd))
                        elif name == "parked":
                            emit(await fleet.parked(cmd))
                        elif name == "mark":
                            emit(fleet.mark())
                        elif name == "counts":
                            emit(fleet.counts())
                        elif name == "prefill":
                            emit(await fleet.prefill(cmd))
                        elif name == "steady":
                            emit(await fleet.steady(cmd))
                        elif name == "rss":
                            emit({"ok": True, "rss_kib": status_kib("VmRSS")})
                        else:
                            emit({"ok": False, "error": f"unknown command {name!r}"})
                    except Exception as exc:  # answer, so the benchmark reports instead of waiting
                        log.exception("command %s failed", name)
                        emit({"ok": False, "error": f"{name}: {exc!r}"})
    finally:
        await fleet.stop()
    emit({"event": "bye", "cpu": time.process_time()})


# ------------------------------------------------------------------------------------------ bare server


def canned(action: str, tx_ids: itertools.count[int]) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if action == "BootNotification":
        return {"status": "Accepted", "currentTime": now, "interval": 300}
    if action == "Heartbeat":
        return {"currentTime": now}
    if action == "Authorize" or action == "StopTransaction":
        return {"idTagInfo": {"status": "Accepted"}}
    if action == "StartTransaction":
        return {"transactionId": next(tx_ids), "idTagInfo": {"status": "Accepted"}}
    return {}


async def run_bare(args: argparse.Namespace) -> None:
    tx_ids = itertools.count(1)
    open_connections = 0
    frames = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal open_connections, frames
        open_connections += 1
        try:
            async for message in ws:
                frame = json.loads(message)
                frames += 1
                if isinstance(frame, list) and len(frame) >= 3 and frame[0] == 2:
                    reply = [3, frame[1], canned(str(frame[2]), tx_ids)]
                    await ws.send(json.dumps(reply, separators=(",", ":")))
        except Exception:  # a dropped client: the same as a close
            pass
        finally:
            open_connections -= 1

    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
    options = websocket_options(ConnectionLimits())
    async with serve(handler, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")], ssl=ssl_ctx,
                     ping_interval=60.0, ping_timeout=60.0, **options,
                     **({"backlog": args.backlog} if args.backlog else {})) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        gc.collect()
        emit({"event": "ready", "port": port, "rss_kib": status_kib("VmRSS"), "nofile": args.nofile})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(args.max_seconds):
                async for cmd in read_commands():
                    if cmd.get("cmd") == "quit":
                        break
                    if cmd.get("cmd") == "rss":
                        if cmd.get("gc"):
                            gc.collect()
                        emit({"ok": True, "rss_kib": status_kib("VmRSS"), "connections": open_connections,
                              "frames": frames, "cpu": time.process_time()})
                    else:
                        emit({"ok": False, "error": f"unknown command {cmd.get('cmd')!r}"})
        server.close()
    emit({"event": "bye", "cpu": time.process_time()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("chargers", "bare"))
    ap.add_argument("url", nargs="?", default="")
    ap.add_argument("target", nargs="?", default="", help="chargers: a file of identities, one a line")
    ap.add_argument("--index", type=int, default=0, help="this runner's number (seeds its random choices)")
    ap.add_argument("--model", choices=sorted(MODELS), default="basic")
    ap.add_argument("--time-scale", type=float, default=1.0, help="every protocol period is multiplied by this")
    ap.add_argument("--reconnect-delay", type=float, default=1.0)
    ap.add_argument("--call-timeout", type=float, default=30.0)
    ap.add_argument("--tls-cert", default="")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--backlog", type=int, default=0,
                    help="bare: listen backlog (0: the asyncio default, 100; the benchmarks pass the controller's)")
    ap.add_argument("--max-seconds", type=float, default=3600.0, help="stop and exit after this long in any case")
    args = ap.parse_args(argv)
    args.nofile = raise_nofile()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("chargeops.sim").setLevel(logging.ERROR)  # a storm's refused attempts are expected
    if args.mode == "chargers":
        asyncio.run(run_chargers(args))
    else:
        asyncio.run(run_bare(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
