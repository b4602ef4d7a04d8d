"""Recovering line and column numbers for diagnostics (the error path only).

The fast parser keeps no positions, so a file that has diagnostics is composed once more with PyYAML's
C-accelerated composer, which keeps a mark on every node; a field path is then walked down that node tree.
If PyYAML cannot read a file the fast parser accepted (the dialects differ in corners), the diagnostic
keeps the document's first line.

Boundary: PyYAML is imported here only, lazily, so the success path never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .diagnostics import Diagnostic, PathElem


def _loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def compose_documents(text: str) -> list[Any] | None:
    import yaml

    try:
        return list(yaml.compose_all(text, Loader=_loader()))
    except yaml.YAMLError:
        return None


def find_duplicate_key(text: str) -> tuple[int, int] | None:
    """Position (1-based line, column) of the second occurrence of the first duplicated mapping key."""
    import yaml

    docs = compose_documents(text)
    if not docs:
        return None
    stack: list[Any] = [d for d in docs if d is not None]
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                k = str(key.value)
                if k in seen:
                    return key.start_mark.line + 1, key.start_mark.column + 1
                seen.add(k)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


def locate(doc_node: Any, path: Sequence[PathElem], at_key: bool) -> tuple[int, int] | None:
    """Walk a composed document along a field path; the deepest node reached gives the position."""
    import yaml

    node = doc_node
    key_node = None
    for elem in path:
        if isinstance(node, yaml.MappingNode) and not isinstance(elem, int):
            nxt = None
            for k, v in node.value:
                if str(k.value) == elem:
                    key_node, nxt = k, v
                    break
            if nxt is None:
                break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(elem, int):
            if elem >= len(node.value):
                break
            key_node, node = None, node.value[elem]
        else:
            break
    else:
        if at_key and key_node is not None:
            node = key_node
    if node is None:
        return None
    return node.start_mark.line + 1, node.start_mark.column + 1


def resolve(diags: Iterable[Diagnostic], texts: dict[str, str]) -> None:
    """Fill in line and column for every diagnostic that names a document but has no position yet."""
    cache: dict[str, list[Any] | None] = {}
    for d in diags:
        if d.line is not None or d.doc is None or d.file not in texts:
            continue
        if d.file not in cache:
            cache[d.file] = compose_documents(texts[d.file])
        docs = cache[d.file]
        if not docs or d.doc >= len(docs) or docs[d.doc] is None:
            d.line, d.column = 1, 1
            continue
        pos = locate(docs[d.doc], d.path, d.at_key)
        if pos is None:
            node = docs[d.doc]
            pos = (node.start_mark.line + 1, node.start_mark.column + 1)
        d.line, d.column = pos
