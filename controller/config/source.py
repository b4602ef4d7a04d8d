"""Reading owner configuration files: discovery, decoding, fast YAML parsing, document splitting.

One YAML dialect everywhere (CI, pre-commit and the controller all call this module): YAML 1.2 as read by
`yaml_rs` (a Rust parser, ~1x the cost of `json.loads`), with duplicate keys refused, alias expansion
bounded, and timestamps left as strings. Positions are not tracked on this fast path;
`controller.config.positions` recovers them for files that have diagnostics.

Boundary: turns bytes into plain Python documents plus diagnostics. No schema or semantic knowledge here
except the idTag quoting scan, which needs the raw text.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml_rs

from .diagnostics import Diagnostic

YAML_SUFFIXES = (".yaml", ".yml")
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024

# A line starting a new YAML document ("---" then whitespace or end of line).
_DOC_START = re.compile(rb"^---(?:[ \t].*)?$", re.M)
_PARSE_POS = re.compile(r"line (\d+),? column (\d+)")


@dataclasses.dataclass(slots=True)
class SourceFile:
    """One configuration file: its display name, text and parsed documents (None for empty documents)."""

    name: str
    path: Path
    text: str = ""
    documents: list[Any] = dataclasses.field(default_factory=list)
    ok: bool = False


def display_name(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def discover(paths: Sequence[str | os.PathLike[str]], diags: list[Diagnostic]) -> list[tuple[Path, str]]:
    """Every YAML file under the given paths (hidden directories skipped), in a stable order.

    A file named explicitly is taken whatever its suffix; a directory contributes its *.yaml / *.yml files.
    """
    found: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            diags.append(Diagnostic("path-not-found", f"{root} does not exist", file=str(root),
                                    hint="check the path given to chargeops"))
            continue
        if root.is_file():
            candidates: Iterable[Path] = [root]
        else:
            candidates = sorted(_walk_yaml(root))
            if not candidates:
                diags.append(Diagnostic(
                    "no-configs", f"no configuration files (*.yaml, *.yml) under {root}", file=str(root),
                    hint="point chargeops at the folder that holds the owner's YAML files"))
                continue
        for p in candidates:
            rp = p.resolve()
            if rp in seen:
                continue
            seen.add(rp)
            found.append((p, p.as_posix()))
    return found


def _walk_yaml(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in filenames:
            if fn.endswith(YAML_SUFFIXES) and not fn.startswith("."):
                yield Path(dirpath) / fn


def read_file(path: Path, name: str, diags: list[Diagnostic],
              max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SourceFile:
    """Read, decode and parse one file; problems become diagnostics, never exceptions."""
    sf = SourceFile(name=name, path=path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            diags.append(Diagnostic(
                "file-too-large", f"file is {size:,} bytes, more than the limit of {max_bytes:,}", file=name,
                hint="split it into several files (card lists can be spread over many CardList files)"))
            return sf
        data = path.read_bytes()
    except OSError as exc:
        diags.append(Diagnostic("unreadable-file", f"cannot read file: {exc.strerror or exc}", file=name))
        return sf
    return parse_bytes(sf, data, diags)


def parse_bytes(sf: SourceFile, data: bytes, diags: list[Diagnostic]) -> SourceFile:
    name = sf.name
    if b"\x00" in data:
        diags.append(Diagnostic("binary-file", "file is binary (contains NUL bytes), not YAML text", file=name,
                                hint="remove it, or give it a name that does not end in .yaml/.yml"))
        return sf
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        diags.append(Diagnostic("not-utf8", f"file is not UTF-8 text (invalid byte at offset {exc.start})",
                                file=name, line=line, column=1, hint="save the file as UTF-8"))
        return sf
    sf.text = text
    try:
        parsed = yaml_rs.loads(text, parse_datetime=False,
                               duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
    except yaml_rs.YAMLDecodeError as exc:
        diags.append(_decode_error(name, text, str(exc)))
        return sf
    except (RecursionError, ValueError, OverflowError) as exc:
        diags.append(Diagnostic("yaml-syntax", f"cannot read YAML: {exc}", file=name, line=1, column=1))
        return sf
    ndocs = count_documents(data)
    if ndocs == 0 or (parsed is None and ndocs == 1):
        diags.append(Diagnostic("empty-file", "file holds no configuration document", file=name,
                                hint="add a document (apiVersion, kind, metadata, spec) or delete the file"))
        return sf
    if ndocs == 1:
        sf.documents = [parsed]
    elif isinstance(parsed, list) and len(parsed) == ndocs:
        sf.documents = parsed
    else:  # the cheap document count disagreed with the parser: trust the parser's shape
        sf.documents = parsed if isinstance(parsed, list) else [parsed]
    sf.ok = True
    return sf


def count_documents(data: bytes) -> int:
    """Number of YAML documents in a stream: '---' markers, plus one if content precedes the first."""
    markers = list(_DOC_START.finditer(data))
    head = data[: markers[0].start()] if markers else data
    has_head = any(
        ln.strip() and not ln.lstrip().startswith((b"#", b"%")) for ln in head.splitlines()
    )
    return len(markers) + (1 if has_head else 0)


def _decode_error(name: str, text: str, message: str) -> Diagnostic:
    first = message.splitlines()[0] if message else "invalid YAML"
    if first.startswith("duplicate mapping key"):
        from .positions import find_duplicate_key

        where = find_duplicate_key(text)
        line, col = where if where else (None, None)
        key = first.partition(":")[2].strip()
        return Diagnostic("duplicate-key", f"key {key} appears twice in the same mapping", file=name,
                          line=line, column=col, hint="remove or rename one of the two keys")
    m = _PARSE_POS.search(message)
    detail = message.splitlines()[-1].strip() if "\n" in message else first
    if m:
        return Diagnostic("yaml-syntax", f"invalid YAML: {detail}", file=name, line=int(m.group(1)),
                          column=int(m.group(2)),
                          hint="check indentation, brackets and quotes around this point")
    return Diagnostic("yaml-syntax", f"invalid YAML: {first}", file=name, line=1, column=1)


# --- idTag quoting -------------------------------------------------------------------------------------

_IDTAG_PLAIN = re.compile(r"(?:^|[\s{,])(idTag|parentIdTag)[ \t]*:[ \t]+(?![\"'\s|>])([^\n,}#]*)", re.M)


def scan_unquoted_id_tags(sf: SourceFile, diags: list[Diagnostic]) -> None:
    """Report every idTag written as a plain (unquoted) YAML scalar.

    YAML dialects disagree on plain scalars (YAML 1.1 reads 00412345 as a number and NO as false), so idTags
    must always be quoted. Works on the raw text, so it gives exact positions at the cost of one regex.
    """
    text = sf.text
    if "idTag" not in text:
        return
    for m in _IDTAG_PLAIN.finditer(text):
        start = m.start(2)
        line_start = text.rfind("\n", 0, start) + 1
        if "#" in text[line_start:start]:
            continue
        value = m.group(2).strip()
        line = text.count("\n", 0, start) + 1
        diags.append(Diagnostic(
            "idtag-unquoted",
            "idTag is not quoted: YAML may read it as a number or a boolean (00412345 -> 412345, NO -> false)",
            file=sf.name, line=line, column=start - line_start + 1,
            hint=f'quote it: {m.group(1)}: "{_mask_plain(value)}"'))


def _mask_plain(value: str) -> str:
    from .diagnostics import mask_id_tag

    return mask_id_tag(value)
