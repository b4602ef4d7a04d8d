"""One cold measurement in a fresh interpreter, run by bench_validate.py.

    python bench/_bench_child.py MODE TARGET [--tracemalloc] [--profile=OUT.prof]

MODE is one of
  json      read and json.loads every *.json file under TARGET
  yaml      read and yaml.load_all (PyYAML CSafeLoader) every *.yaml / *.yml file under TARGET
  validate  import controller.config and run validate_paths([TARGET])
  cli       run `chargeops validate TARGET` in-process via controller.cli.main (import check)

The timed section includes importing the parser / validator, finding the files and reading
them; interpreter start-up is not included. Results go to stdout as one JSON line.

This module imports only sys, os and time before the timed section so that the measurement
and the sys.modules check see what the measured code itself imports.
"""

from __future__ import annotations

import os
import sys
import time

FORBIDDEN = ("websockets", "ocpp", "git", "sqlite3", "asyncio", "watchdog")


def _status_kib(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _files(root: str, suffixes: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(suffixes))
    return out


def _loaded_forbidden() -> list[str]:
    return sorted(name for name in sys.modules if any(name == m or name.startswith(m + ".") for m in FORBIDDEN))


def main(argv: list[str]) -> int:
    mode, target = argv[1], argv[2]
    trace = "--tracemalloc" in argv[3:]
    profile_out = next((a.split("=", 1)[1] for a in argv[3:] if a.startswith("--profile=")), "")
    result: dict[str, object] = {"mode": mode}
    rss_start = _status_kib("VmRSS")
    if trace:
        import tracemalloc

        tracemalloc.start()
    profiler = None
    if profile_out:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    keep: list[object] = []  # results stay alive until the end, as a real caller's would
    t0 = time.perf_counter()
    if mode == "json":
        import json

        docs = nbytes = 0
        files = _files(target, (".json",))
        for path in files:
            with open(path, "rb") as fh:
                raw = fh.read()
            nbytes += len(raw)
            data = json.loads(raw)
            docs += len(data) if isinstance(data, list) else 1
            keep.append(data)
        result.update(files=len(files), docs=docs, bytes=nbytes)
    elif mode == "yaml":
        import yaml

        docs = nbytes = 0
        files = _files(target, (".yaml", ".yml"))
        for path in files:
            with open(path, "rb") as fh:
                raw = fh.read()
            nbytes += len(raw)
            loaded = list(yaml.load_all(raw, Loader=yaml.CSafeLoader))
            docs += len(loaded)
            keep.append(loaded)
        result.update(files=len(files), docs=docs, bytes=nbytes)
    elif mode == "validate":
        from pathlib import Path

        from controller.config import validate_paths

        t_import = time.perf_counter()
        outcome = validate_paths([Path(target)])
        keep.append(outcome)
        diagnostics = list(outcome.diagnostics)
        result.update(
            import_seconds=t_import - t0,
            n_diagnostics=len(diagnostics),
            diagnostics=[str(d) for d in diagnostics[:20]],
        )
    elif mode == "cli":
        from controller.cli import main as cli_main

        sys.argv = ["chargeops", "validate", target]
        try:
            rc = cli_main()
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        result.update(exit_code=rc)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_out)
    if trace:
        import tracemalloc

        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    result.update(
        seconds=seconds,
        rss_start_kib=rss_start,
        rss_peak_kib=_status_kib("VmHWM"),
        forbidden_modules=_loaded_forbidden(),
    )
    import json

    sys.stdout.flush()
    print("\n" + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
