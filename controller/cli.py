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
