"""Diagnostics: what `chargeops validate` reports, and where.

A `Diagnostic` names the file, the document inside it, the field path, what is wrong and how to fix it.
Line and column are resolved lazily (`controller.config.positions`) because the fast YAML path carries no
positions; only files that have diagnostics are re-read for them.

Boundary: pure data and formatting helpers; no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

Severity = Literal["error", "warning"]
PathElem = str | int


def mask_id_tag(id_tag: str) -> str:
    """Mask an idTag for any output: all but the last 4 characters become '*'.

    Tags of 4 characters or fewer are masked entirely, so that no short tag is ever shown whole.
    """
    if len(id_tag) <= 4:
        return "*" * len(id_tag)
    return "*" * (len(id_tag) - 4) + id_tag[-4:]


def format_path(path: Sequence[PathElem]) -> str:
    """Render a field path the way owners read YAML: spec.evses[0].plugs[1].standard."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        elif out:
            out += f".{elem}"
        else:
            out = str(elem)
    return out


@dataclasses.dataclass(slots=True)
class Diagnostic:
    """One problem found in the owner's configuration."""

    code: str
    message: str
    file: str
    doc: int | None = None
    path: tuple[PathElem, ...] = ()
    hint: str | None = None
    severity: Severity = "error"
    line: int | None = None
    column: int | None = None
    at_key: bool = False  # point at the mapping key rather than its value (unknown fields)

    @property
    def field(self) -> str:
        return format_path(self.path)

    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"

    def as_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "document": self.doc,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line or 0, self.column or 0, self.code, self.message)


class ConfigError(Exception):
    """Raised by loaders when a configuration cannot be used; carries every diagnostic found."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        summary = f"{first.location()}: {first.message}" if first else "invalid configuration"
        more = f" (and {len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(summary + more)


def suggest(name: str, options: Sequence[str] | set[str] | frozenset[str], cutoff: float = 0.6) -> str | None:
    """The closest option to a misspelt name, for 'did you mean' hints (ties go to the longer common prefix)."""
    import difflib

    best: tuple[float, int, str] | None = None
    lowered = name.lower()
    for opt in options:
        ratio = difflib.SequenceMatcher(None, lowered, opt.lower()).ratio()
        if ratio < cutoff:
            continue
        prefix = 0
        for a, b in zip(lowered, opt.lower()):
            if a != b:
                break
            prefix += 1
        cand = (ratio, prefix, opt)
        if best is None or cand[:2] > best[:2]:
            best = cand
    return best[2] if best else None
