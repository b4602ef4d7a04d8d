"""Printing diagnostics: human (default), GitHub workflow annotations, or JSON.

Colour only on a TTY and never with NO_COLOR. idTags are already masked in every message.

Boundary: formatting only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TextIO

from .diagnostics import Diagnostic


def _colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def human(diags: Sequence[Diagnostic], files: int, documents: int, stream: TextIO) -> None:
    col = _colour(stream)
    red, yellow, dim, reset = ("\033[31m", "\033[33m", "\033[2m", "\033[0m") if col else ("",) * 4
    for d in diags:
        tone = red if d.severity == "error" else yellow
        field = f" {d.field}:" if d.field else ""
        stream.write(f"{d.location()}: {tone}{d.severity}{reset}:{field} {d.message} {dim}[{d.code}]{reset}\n")
        if d.hint:
            stream.write(f"    {dim}fix:{reset} {d.hint}\n")
    errors = sum(1 for d in diags if d.severity == "error")
    warnings = len(diags) - errors
    if errors:
        stream.write(f"\n{errors} error(s), {warnings} warning(s) in {files} file(s), {documents} document(s)\n")
    else:
        extra = f", {warnings} warning(s)" if warnings else ""
        stream.write(f"OK: {files} file(s), {documents} document(s) valid{extra}\n")


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def github(diags: Sequence[Diagnostic], stream: TextIO) -> None:
    """GitHub Actions workflow commands: each shows as an annotation on the pull request's diff."""
    for d in diags:
        level = "error" if d.severity == "error" else "warning"
        props = [f"file={_gh_escape(d.file, True)}"]
        if d.line is not None:
            props += [f"line={d.line}", f"col={d.column or 1}"]
        props.append(f"title={_gh_escape('chargeops ' + d.code, True)}")
        body = (f"{d.field}: " if d.field else "") + d.message + (f" — fix: {d.hint}" if d.hint else "")
        stream.write(f"::{level} {','.join(props)}::{_gh_escape(body)}\n")
    errors = sum(1 for d in diags if d.severity == "error")
    stream.write(f"chargeops validate: {errors} error(s), {len(diags) - errors} warning(s)\n")


def as_json(diags: Sequence[Diagnostic], files: int, documents: int, stream: TextIO) -> None:
    errors = sum(1 for d in diags if d.severity == "error")
    json.dump({"valid": errors == 0, "files": files, "documents": documents, "errors": errors,
               "warnings": len(diags) - errors, "diagnostics": [d.as_dict() for d in diags]},
              stream, indent=2)
    stream.write("\n")
