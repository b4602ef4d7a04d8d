"""The `chargeops` command line.

Sub-commands import their machinery lazily, so `chargeops validate` starts fast and imports nothing of
the controller's network stack. Exit codes: 0 valid / no changes, 1 invalid / error, 2 usage error
(argparse) — `plan` will use 2 for "changes", like Terraform.

Boundary: argument parsing and dispatch only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _validate(args: argparse.Namespace) -> int:
    from .config import report
    from .config.loader import validate_paths

    result = validate_paths(args.paths or ["."])
    if args.format == "github":
        report.github(result.diagnostics, sys.stdout)
    elif args.format == "json":
        report.as_json(result.diagnostics, result.files, result.documents, sys.stdout)
    else:
        report.human(result.diagnostics, result.files, result.documents, sys.stdout)
    return 0 if result.ok else 1


def _render(args: argparse.Namespace) -> int:
    from .config import report
    from .config.loader import validate_paths
    from .config.render import render_human, render_json

    result = validate_paths([args.path])
    if result.desired is None:
        report.human(result.diagnostics, result.files, result.documents, sys.stderr)
        return 1
    boot = None
    if args.boot:
        from .config.effective import BootInfo

        parts = dict(p.split("=", 1) for p in args.boot)
        boot = BootInfo(parts.get("vendor", ""), parts.get("model", ""), parts.get("firmware", ""))
    desired = result.desired
    if args.station and desired.stations.get(args.station) is None \
            and desired.station_for_identity(args.station) is None:
        sys.stderr.write(f"chargeops render: no station named {args.station!r}\n")
        return 1
    if args.format == "json":
        render_json(desired, args.station, boot, sys.stdout)
    else:
        render_human(desired, args.station, boot, sys.stdout)
    return 0


def _server_settings(args: argparse.Namespace) -> object:
    from pathlib import Path

    from .hw.server import ServerSettings

    return ServerSettings(host=args.host, port=args.port,
                          tls_cert=Path(args.tls_cert) if args.tls_cert else None,
                          tls_key=Path(args.tls_key) if args.tls_key else None,
                          secrets_dir=Path(args.secrets_dir) if args.secrets_dir else None,
                          backlog=args.listen_backlog or ServerSettings.backlog)


def _setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("websockets", "ocpp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from .config import report
    from .config.diagnostics import ConfigError
    from .hw.server import ServerSettings
    from .runtime import eventloop
    from .runtime.controller import ApiSettings, Controller, ControllerSettings, GitSettings

    _setup_logging(args.log_level)
    server = _server_settings(args)
    assert isinstance(server, ServerSettings)
    if (args.repo is None) == (args.git is None):
        sys.stderr.write("chargeops run: give either a repository directory or --git URL\n")
        return 2
    token = args.api_token or os.environ.get("CHARGEOPS_API_TOKEN")
    api = ApiSettings(host=args.api_host, port=args.api_port, tokens=(token,) if token else (),
                      webhook_secret=args.webhook_secret or os.environ.get("CHARGEOPS_WEBHOOK_SECRET"))
    git = None if args.git is None else GitSettings(args.git, branch=args.branch, tag=args.tag, path=args.git_path,
                                                    interval=args.git_interval)
    settings = ControllerSettings(repo=Path(args.repo) if args.repo else None, db_path=Path(args.db), server=server,
                                  git=git, api=api)
    try:
        eventloop.run(Controller(settings).run_forever(), args.event_loop)
    except eventloop.EventLoopError as exc:
        sys.stderr.write(f"chargeops run: {exc}\n")
        return 2
    except ConfigError as exc:
        report.human(exc.diagnostics, 0, 0, sys.stderr)
        sys.stderr.write("chargeops run: the owner repository is invalid; nothing was started\n")
        return 1
    return 0


def _plan(args: argparse.Namespace) -> int:
    import os

    from .config import report
    from .config.loader import validate_paths
    from .runtime.planview import PlanInputError, load_observed, plans, render

    result = validate_paths([args.path])
    if result.desired is None:
        report.human(result.diagnostics, result.files, result.documents, sys.stderr)
        return 1
    try:
        export = load_observed(args.against, args.token or os.environ.get("CHARGEOPS_API_TOKEN"))
    except PlanInputError as exc:
        sys.stderr.write(f"chargeops plan: {exc}\n")
        return 1
    plan_list = plans(result.desired, export)
    sys.stdout.write(render(plan_list, args.format))
    return 2 if any(p.has_changes for p in plan_list) else 0


def _status(args: argparse.Namespace) -> int:
    import json
    import os
    import urllib.request

    token = args.token or os.environ.get("CHARGEOPS_API_TOKEN")
    url = args.controller.rstrip("/") + "/api/v1/status"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"chargeops status: cannot read {url}: {exc}\n")
        return 1
    if args.format == "json":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(f"revision {data.get('revision')} (applied: {data.get('appliedRevision')})\n")
    if data.get("failedRevision"):
        f = data["failedRevision"]
        where = f["errors"][0]["location"] if f["errors"] else ""
        sys.stdout.write(f"last revision REFUSED: {f['revision']}: {where}\n")
    if data.get("held"):
        sys.stdout.write(f"HELD: {data['held']['reason']}\n")
    ro = data.get("rollout")
    if ro and ro.get("paused"):
        sys.stdout.write(f"ROLLOUT PAUSED: {ro['paused']}\n")
    sys.stdout.write(f"{'STATION':<28} {'SYNC':<10} {'HEALTH':<12} {'APPLIED':<18} LAST ERROR\n")
    for s in data.get("stationStatus", []):
        sys.stdout.write(f"{s['identity']:<28} {s['sync']:<10} {s['health']:<12} "
                         f"{(s.get('lastAppliedRevision') or '-')[:16]:<18} {s.get('lastError') or ''}\n")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .runtime import eventloop
    from .runtime.demo import demo

    _setup_logging(args.log_level)
    try:
        return eventloop.run(demo(Path(args.repo), sys.stdout, duration=args.duration, sessions=args.sessions),
                             args.event_loop)
    except eventloop.EventLoopError as exc:
        sys.stderr.write(f"chargeops demo: {exc}\n")
        return 2


def _backup(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from .store.sqlite import SqliteStore

    src = Path(args.db)
    if not src.exists():
        sys.stderr.write(f"chargeops backup: no database at {src}\n")
        return 1

    async def go() -> None:
        store = await SqliteStore.open(src, owner="-")  # a backup copies every owner's data
        try:
            await store.backup(args.to)
        finally:
            await store.close()

    asyncio.run(go())
    sys.stdout.write(f"backup of {src} written to {args.to}\n")
    return 0


def _billing(args: argparse.Namespace) -> int:
    from .billing.cli import main as billing_main

    return billing_main(args)


def _simulate(args: argparse.Namespace) -> int:
    from .hw.sim.cli import simulate_main

    return simulate_main(args.rest)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="OCPP websocket port (default 9000; 0 = any free)")
    p.add_argument("--tls-cert", help="certificate (PEM) for wss:// and security profile 2")
    p.add_argument("--tls-key", help="private key (PEM) of --tls-cert")
    p.add_argument("--secrets-dir", help="directory that holds the files named by {file: ...} secret references")
    p.add_argument("--listen-backlog", type=_positive_int, metavar="N",
                   help="connections the kernel queues while the controller is busy, e.g. in a reconnect storm "
                        "(default 1024; capped by net.core.somaxconn)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _add_loop_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event-loop", choices=["auto", "asyncio", "uvloop"], default=None,
                   help="event loop: auto (the default: uvloop where installed, less CPU; see README), "
                        "uvloop or asyncio (or CHARGEOPS_EVENT_LOOP)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chargeops", description="GitOps controller for EV charging stations")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check owner configuration files (schema and semantics)")
    v.add_argument("paths", nargs="*", help="files or directories (default: .)")
    v.add_argument("--format", choices=["human", "github", "json"], default="human")
    v.set_defaults(func=_validate)

    r = sub.add_parser("render", help="show the effective desired state per station and EVSE")
    r.add_argument("path", help="owner repository directory")
    r.add_argument("--station", help="only this station (name or OCPP identity)")
    r.add_argument("--boot", action="append", metavar="FIELD=VALUE",
                   help="assume BootNotification info for boot-selected profiles (vendor=, model=, firmware=)")
    r.add_argument("--format", choices=["human", "json"], default="human")
    r.set_defaults(func=_render)

    run = sub.add_parser("run", help="run the controller: the OCPP 1.6J central system for the owner's chargers")
    run.add_argument("repo", nargs="?", help="owner repository directory (watched), or use --git")
    run.add_argument("--git", help="follow this git repository instead of a directory")
    run.add_argument("--branch", help="branch to follow (default: the remote's default branch)")
    run.add_argument("--tag", help="tag to follow instead of a branch")
    run.add_argument("--git-path", default="", help="folder inside the repository that holds the configuration")
    run.add_argument("--git-interval", type=float, default=60.0, help="seconds between fetches (default 60)")
    run.add_argument("--db", default="chargeops.db", help="SQLite database file (default chargeops.db)")
    run.add_argument("--api-host", default="127.0.0.1", help="address of the HTTP API (default 127.0.0.1)")
    run.add_argument("--api-port", type=int, help="port of the HTTP API (status, metrics, webhook); off if not set")
    run.add_argument("--api-token", help="bearer token for the API (or CHARGEOPS_API_TOKEN)")
    run.add_argument("--webhook-secret", help="shared secret of the git webhook (or CHARGEOPS_WEBHOOK_SECRET)")
    _add_server_args(run)
    _add_loop_arg(run)
    run.set_defaults(func=_run)

    d = sub.add_parser("demo", help="run the controller on a repository with a simulated charger per station")
    d.add_argument("repo", nargs="?", default="examples/owner-configs/workplace-garage")
    d.add_argument("--duration", type=float, default=15.0, help="seconds of simulated driving (default 15)")
    d.add_argument("--sessions", type=int, default=6, help="sessions the simulated drivers start (default 6)")
    d.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    _add_loop_arg(d)
    d.set_defaults(func=_demo)

    pl = sub.add_parser("plan", help="show what a merge would change on which charger (like terraform plan)")
    pl.add_argument("path", help="owner repository directory")
    pl.add_argument("--against", required=True,
                    help="controller URL (reads /api/v1/observed) or an exported observed-state file")
    pl.add_argument("--token", help="API token (or CHARGEOPS_API_TOKEN)")
    pl.add_argument("--format", choices=["human", "markdown", "json"], default="human")
    pl.set_defaults(func=_plan)

    stp = sub.add_parser("status", help="fleet status from a running controller")
    stp.add_argument("--controller", required=True, help="controller API URL, e.g. http://127.0.0.1:9080")
    stp.add_argument("--token", help="API token (or CHARGEOPS_API_TOKEN)")
    stp.add_argument("--format", choices=["human", "json"], default="human")
    stp.set_defaults(func=_status)

    b = sub.add_parser("backup", help="online backup of the controller's store (safe while it runs)")
    b.add_argument("--db", default="chargeops.db", help="the store (default chargeops.db)")
    b.add_argument("--to", required=True, help="file to write the backup to")
    b.set_defaults(func=_backup)

    from .billing.cli import add_parsers as add_billing_parsers  # argparse only: cheap

    add_billing_parsers(sub)
    for name in ("billing", "forget"):
        sub.choices[name].set_defaults(func=_billing)

    sim = sub.add_parser("simulate", help="run simulated OCPP 1.6J chargers against a central system",
                         add_help=False)
    sim.add_argument("rest", nargs=argparse.REMAINDER)
    sim.set_defaults(func=_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
