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
                          secrets_dir=Path(args.secrets_dir) if args.secrets_dir else None)


def _setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("websockets", "ocpp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from .config import report
    from .config.diagnostics import ConfigError
    from .hw.server import ServerSettings
    from .runtime.controller import Controller, ControllerSettings

    _setup_logging(args.log_level)
    server = _server_settings(args)
    assert isinstance(server, ServerSettings)
    settings = ControllerSettings(repo=Path(args.repo), db_path=Path(args.db), server=server)
    try:
        asyncio.run(Controller(settings).run_forever())
    except ConfigError as exc:
        report.human(exc.diagnostics, 0, 0, sys.stderr)
        sys.stderr.write("chargeops run: the owner repository is invalid; nothing was started\n")
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from .runtime.demo import demo

    _setup_logging(args.log_level)
    return asyncio.run(demo(Path(args.repo), sys.stdout, duration=args.duration, sessions=args.sessions))


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


def _simulate(args: argparse.Namespace) -> int:
    from .hw.sim.cli import simulate_main

    return simulate_main(args.rest)


def _add_server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9000, help="OCPP websocket port (default 9000; 0 = any free)")
    p.add_argument("--tls-cert", help="certificate (PEM) for wss:// and security profile 2")
    p.add_argument("--tls-key", help="private key (PEM) of --tls-cert")
    p.add_argument("--secrets-dir", help="directory that holds the files named by {file: ...} secret references")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


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
    run.add_argument("repo", help="owner repository directory")
    run.add_argument("--db", default="chargeops.db", help="SQLite database file (default chargeops.db)")
    _add_server_args(run)
    run.set_defaults(func=_run)

    d = sub.add_parser("demo", help="run the controller on a repository with a simulated charger per station")
    d.add_argument("repo", nargs="?", default="examples/owner-configs/workplace-garage")
    d.add_argument("--duration", type=float, default=15.0, help="seconds of simulated driving (default 15)")
    d.add_argument("--sessions", type=int, default=6, help="sessions the simulated drivers start (default 6)")
    d.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    d.set_defaults(func=_demo)

    b = sub.add_parser("backup", help="online backup of the controller's store (safe while it runs)")
    b.add_argument("--db", default="chargeops.db", help="the store (default chargeops.db)")
    b.add_argument("--to", required=True, help="file to write the backup to")
    b.set_defaults(func=_backup)

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
