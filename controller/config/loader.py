"""Loading an owner repository into a validated `DesiredState`, reporting every problem at once.

Pipeline: discover files -> decode and parse (fast YAML) -> check each document's apiVersion / kind ->
schema -> build model objects -> semantic checks -> positions for the diagnostics (error path only).
Sources can be paths on disk (`validate_paths`) or in-memory files, e.g. a git commit's tree
(`validate_sources`), so the controller loads immutable snapshots the same way CI does.

Boundary: the only entry points that turn owner files into desired state; no network imports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import build
from . import model as m
from .diagnostics import ConfigError, Diagnostic
from .positions import resolve
from .schema import check_envelope, validate_document
from .semantic import check_all
from .source import (
    DEFAULT_MAX_FILE_BYTES,
    SourceFile,
    discover,
    parse_bytes,
    read_file,
    scan_unquoted_id_tags,
)

_LABELS = {"Tariff": "tariff", "ReservationPolicy": "reservation policy", "AccessGroup": "access group",
           "StationProfile": "station profile", "Station": "station", "CardList": "card list",
           "Owner": "owner"}


@dataclasses.dataclass
class LoadResult:
    """Outcome of loading: the desired state when there is no error, and every diagnostic."""

    desired: m.DesiredState | None
    diagnostics: list[Diagnostic]
    files: int = 0
    documents: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_paths(paths: Sequence[str | os.PathLike[str]], *, revision: str = "",
                   max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> LoadResult:
    """Validate the configuration files under `paths` (files or directories)."""
    diags: list[Diagnostic] = []
    found = discover(paths, diags)
    with _gc_paused():
        files = [read_file(p, name, diags, max_file_bytes) for p, name in found]
    return _finish(files, diags, revision)


def validate_sources(sources: Iterable[tuple[str, bytes]], *, revision: str = "",
                     max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, cache: FileCache | None = None) -> LoadResult:
    """Validate in-memory files (name, content), e.g. the YAML files of a git commit's tree.

    With a `cache` (one per source of revisions), files whose bytes are those of the previous load are not
    parsed, schema-checked or built again (see `FileCache`); the result is the same."""
    diags: list[Diagnostic] = []
    files = []
    reused: dict[str, _CachedFile] = {}
    digests: dict[str, bytes] = {}
    for name, data in sources:
        sf = SourceFile(name=name, path=Path(name))
        if len(data) > max_file_bytes:
            diags.append(Diagnostic("file-too-large", f"file is {len(data):,} bytes, more than the limit of "
                                    f"{max_file_bytes:,}", file=name))
            continue
        hit = None
        if cache is not None:
            digests[name] = FileCache.digest(data)
            hit = cache.lookup(name, digests[name])
        if hit is not None:
            sf.text, sf.ok = hit.text, True
            reused[name] = hit
            files.append(sf)
            continue
        files.append(parse_bytes(sf, data, diags))
    if not files and not diags:
        diags.append(Diagnostic("no-configs", "no configuration files (*.yaml, *.yml)", file="."))
    return _finish(files, diags, revision, cache, reused, digests)


def load_desired(paths: Sequence[str | os.PathLike[str]], *, revision: str = "") -> m.DesiredState:
    """Like `validate_paths`, but returns the desired state or raises `ConfigError` with every error."""
    result = validate_paths(paths, revision=revision)
    if result.desired is None:
        raise ConfigError(result.errors)
    return result.desired


def content_revision(files: Sequence[SourceFile]) -> str:
    h = hashlib.sha256()
    for sf in sorted(files, key=lambda f: f.name):
        h.update(sf.name.encode())
        h.update(b"\0")
        h.update(sf.text.encode())
        h.update(b"\0")
    return "sha256:" + h.hexdigest()[:16]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading allocates hundreds of thousands of long-lived objects and no cycles: the cyclic garbage
    collector would rescan them again and again (a third of the time on a 10,000-station repository)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ------------------------------------------------------------------------------------------ file cache


class _Doc:
    """One schema-valid document on its way into the desired state: its source document until the kinds
    that are many (stations, access groups, card lists) are built, then only what was built from it."""

    __slots__ = ("built", "doc", "kind", "src")

    def __init__(self, kind: str, doc: dict[str, Any] | None, src: m.Src):
        self.kind = kind
        self.doc = doc
        self.src = src
        self.built: Any = None


@dataclasses.dataclass(frozen=True, slots=True)
class _CachedFile:
    digest: bytes
    text: str
    docs: tuple[_Doc, ...]
    ndocs: int


class FileCache:
    """What a load worked out from each file that had no diagnostic of its own, for the next load.

    A revision usually changes a file or two of a repository; the others (10,000 stations, thousands of
    cards) come back byte for byte. For those, the next load skips decoding, YAML parsing, the idTag
    quoting scan, the envelope and schema checks, and building the model objects of stations, access
    groups and card lists (frozen, so the new desired state shares them with the old one); the semantic
    checks still run over the whole repository, since a change in one file can break a reference in
    another. Entries are kept for the files of the last load only, keyed by name and SHA-256 of the bytes.
    Files with any diagnostic are never cached (they are read again, and their diagnostics reported again).
    """

    def __init__(self) -> None:
        self._files: dict[str, _CachedFile] = {}
        self.hits = 0  # files reused (for tests and metrics)
        self.misses = 0

    @staticmethod
    def digest(data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    def lookup(self, name: str, digest: bytes) -> _CachedFile | None:
        """The entry of the file `name` whose bytes have this `digest` (see `digest`), if kept."""
        hit = self._files.get(name)
        if hit is not None and hit.digest == digest:
            self.hits += 1
            return hit
        self.misses += 1
        return None

    def replace(self, files: dict[str, _CachedFile]) -> None:
        self._files = files


def _finish(files: list[SourceFile], diags: list[Diagnostic], revision: str, cache: FileCache | None = None,
            reused: dict[str, _CachedFile] | None = None, digests: dict[str, bytes] | None = None) -> LoadResult:
    with _gc_paused():
        return _finish_checked(files, diags, revision, cache, reused or {}, digests or {})


def _finish_checked(files: list[SourceFile], diags: list[Diagnostic], revision: str, cache: FileCache | None,
                    reused: dict[str, _CachedFile], digests: dict[str, bytes]) -> LoadResult:
    by_kind: dict[str, list[_Doc]] = {k: [] for k in _LABELS}
    broken: dict[str, set[str]] = {}
    ndocs = 0
    unsure_owner = any(not sf.ok for sf in files)  # an unreadable file may hold the Owner
    keep: dict[str, _CachedFile] = {}
    for sf in files:
        if not sf.ok:
            continue
        hit = reused.get(sf.name)
        if hit is not None:
            for d in hit.docs:
                by_kind[d.kind].append(d)
            ndocs += hit.ndocs
            keep[sf.name] = hit
            continue
        before = len(diags)
        docs: list[_Doc] = []
        n_before = ndocs
        scan_unquoted_id_tags(sf, diags)
        for i, doc in enumerate(sf.documents):
            if doc is None:
                continue
            ndocs += 1
            kind = check_envelope(doc, sf.name, i, diags)
            if kind is None:
                unsure_owner |= isinstance(doc, dict) and doc.get("kind") == "Owner"
                continue
            if validate_document(kind, doc, sf.name, i, diags):
                entry = _Doc(kind, doc, m.Src(sf.name, i))
                by_kind[kind].append(entry)
                docs.append(entry)
            else:
                name = doc.get("metadata", {}).get("name") if isinstance(doc.get("metadata"), dict) else None
                if isinstance(name, str):
                    broken.setdefault(_LABELS[kind], set()).add(name)
                if kind == "CardList" and isinstance(doc.get("spec"), dict):
                    g = doc["spec"].get("group")
                    if isinstance(g, str):
                        broken.setdefault("access group", set()).add(g)
        if cache is not None and len(diags) == before and sf.name in digests:
            keep[sf.name] = _CachedFile(digests[sf.name], sf.text, tuple(docs), ndocs - n_before)
    if unsure_owner:
        broken.setdefault("owner", set()).add("?")
    desired = _build(files, by_kind, broken, diags, revision)
    if cache is not None:
        cache.replace(keep)
    resolve(diags, {sf.name: sf.text for sf in files if sf.ok})
    _dedupe(diags)
    diags.sort(key=Diagnostic.sort_key)
    ok = not any(d.severity == "error" for d in diags)
    return LoadResult(desired if ok else None, diags, files=len(files), documents=ndocs)


def _built(entry: _Doc, make: Any) -> Any:
    """What `make(doc, src)` builds from the entry's document, built once (see `FileCache`); the
    document itself is dropped then."""
    if entry.doc is not None:
        entry.built = make(entry.doc, entry.src)
        entry.doc = None
    return entry.built


def _docs(entries: list[_Doc]) -> list[tuple[dict[str, Any], m.Src]]:
    return [(e.doc, e.src) for e in entries if e.doc is not None]


def _build(files: list[SourceFile], by_kind: dict[str, list[_Doc]],
           broken: dict[str, set[str]], diags: list[Diagnostic], revision: str) -> m.DesiredState | None:
    owners = [build.owner(d, src) for d, src in _docs(by_kind["Owner"])]
    if len(owners) > 1:
        for o in owners[1:]:
            diags.append(Diagnostic("duplicate-owner", f"a second Owner document ({o.name!r}); a repository "
                                    f"has exactly one (the first is in {owners[0].src.file})",
                                    file=o.src.file, doc=o.src.doc, path=("kind",),
                                    hint="keep one Owner document"))
    if not owners:
        if not by_kind["Owner"] and "owner" not in broken and files:
            diags.append(Diagnostic("missing-owner", "no Owner document: a repository needs exactly one",
                                    file=files[0].name if len(files) == 1 else str(Path(files[0].name).parent),
                                    hint="add owner.yaml with kind: Owner (name, timezone, country, currency, "
                                    "ocpi, plans)"))
        # a permissive stand-in so the other documents are still checked in this run
        plans = {s.activation.plan for s in (_built(e, build.station) for e in by_kind["Station"])
                 if s.activation is not None}
        owner = m.Owner("unknown", "unknown", "UTC", "NL", "EUR", "NL", "XXX",
                        tuple(m.Plan(p) for p in sorted(plans)), m.Billing(enabled=True), m.DataRetention(),
                        m.Rollout(), m.Safety(), m.StationSettings(), m.Src("", 0))
    else:
        owner = owners[0]

    tariffs = [build.tariff(d, src, owner.currency) for d, src in _docs(by_kind["Tariff"])]
    policies = [build.reservation_policy(d, src) for d, src in _docs(by_kind["ReservationPolicy"])]
    profiles = [build.profile(d, src) for d, src in _docs(by_kind["StationProfile"])]
    stations = [_built(e, build.station) for e in by_kind["Station"]]
    group_parts = [_built(e, _group) for e in by_kind["AccessGroup"]]
    list_parts = [_built(e, _card_list) for e in by_kind["CardList"]]
    groups = [g for g, _, _ in group_parts]
    card_lists = [c for c, _, _ in list_parts]
    cards: list[tuple[m.Card, tuple[str | int, ...]]] = []
    invalid_dates: list[tuple[m.Src, tuple[str | int, ...], str]] = []
    for _, some_cards, some_dates in (*group_parts, *list_parts):
        cards.extend(some_cards)
        invalid_dates.extend(some_dates)

    card_map: dict[str, m.Card] = {}
    for card, _ in cards:
        card_map.setdefault(card.key, card)
    ds = m.DesiredState(
        owner=owner,
        stations={s.name: s for s in reversed(stations)},
        profiles={p.name: p for p in reversed(profiles)},
        tariffs={t.name: t for t in reversed(tariffs)},
        groups={g.name: g for g in reversed(groups)},
        cards=card_map,
        reservation_policies={p.name: p for p in reversed(policies)},
        revision=revision or content_revision(files),
    )
    parts: dict[str, Sequence[object]] = {
        "station": stations, "station profile": profiles, "tariff": tariffs, "access group": groups,
        "card list": card_lists, "reservation policy": policies,
    }
    check_all(ds, parts, cards, invalid_dates, diags, broken)
    return ds if owners else None


_CardPaths = tuple[tuple[m.Card, tuple[str | int, ...]], ...]
_BadDates = tuple[tuple[m.Src, tuple[str | int, ...], str], ...]


def _cards(items: list[dict[str, Any]], group: str, src: m.Src) -> tuple[_CardPaths, _BadDates]:
    """The cards of a group or card list, with the path of each idTag, and the validUntil dates that are
    not dates (reported by the semantic checks)."""
    cards = []
    invalid: list[tuple[m.Src, tuple[str | int, ...], str]] = []
    for i, card in build.cards(items, group, src):
        cards.append((card, ("spec", "cards", i, "idTag")))
        vu = items[i].get("validUntil")
        if vu is not None and card.valid_until is None:
            invalid.append((src, ("spec", "cards", i, "validUntil"), vu))
    return tuple(cards), tuple(invalid)


def _group(d: dict[str, Any], src: m.Src) -> tuple[m.AccessGroup, _CardPaths, _BadDates]:
    g = build.group(d, src)
    cards, bad = _cards(d["spec"].get("cards", []), g.name, src)
    return g, cards, bad


def _card_list(d: dict[str, Any], src: m.Src) -> tuple[m.CardList, _CardPaths, _BadDates]:
    cards, bad = _cards(d["spec"]["cards"], d["spec"]["group"], src)
    return m.CardList(d["metadata"]["name"], d["spec"]["group"], src), cards, bad


def _dedupe(diags: list[Diagnostic]) -> None:
    """One report per problem: an unquoted idTag is found both by the text scan and by the schema."""
    unquoted = {(d.file, d.line) for d in diags if d.code == "idtag-unquoted"}
    seen: set[tuple[str, int | None, int | None, str, str]] = set()
    out = []
    for d in diags:
        if d.code == "idtag-not-string" and (d.file, d.line) in unquoted:
            continue
        key = (d.file, d.line, d.column, d.code, d.message)
        if key in seen:
            continue
        seen.add(key)
        out.append(d)
    diags[:] = out
