"""Actions and plans: what the reconcilers decide, as plain data the runtime applies and people read.

An `Action` is one OCPP call for one station: its `phase` (applied in order: features -> data ->
availability -> credentials -> reset; a failed phase stops the station's plan until the next look), its
`kind` (the OCPP action) and `payload` (what goes on the wire), the `change` it makes (old -> new), why
(`reason`), its `effects`, and `record`: what the runtime stores once the charger accepts it (a local
list version and snapshot hash, a write-only digest, a ClearCache generation).

A `Plan` is every action for one station, sorted by phase, with notes (warnings, deferrals, refusals)
and `next_review_at`, the time the planner next needs a look (a tariff window, a reboot window, a
daylight-saving change). Plans are computed first and rendered second (`render`), from `to_dict`.

Secrets: an action with ``secret=True`` carries the secret in ``payload["value"]`` for the applier only;
`to_dict`, the renderer and `content_hash` never show it (the hash uses its digest). idTags are masked
when asked (`to_dict(mask=True)`, used by every renderer); reasons and notes are written masked.

Boundary: pure data; no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum, StrEnum
from typing import Any

from controller.config.diagnostics import mask_id_tag

from .observed import secret_digest

SECRET_PLACEHOLDER = "(sensitive value)"


class Phase(IntEnum):
    FEATURES = 1
    DATA = 2
    AVAILABILITY = 3
    CREDENTIALS = 4
    RESET = 5

    @property
    def label(self) -> str:
        return self.name.lower()


class Kind(StrEnum):
    CHANGE_CONFIGURATION = "ChangeConfiguration"
    GET_CONFIGURATION = "GetConfiguration"
    SEND_LOCAL_LIST = "SendLocalList"
    CLEAR_CACHE = "ClearCache"
    CHANGE_AVAILABILITY = "ChangeAvailability"
    CANCEL_RESERVATION = "CancelReservation"
    RESET = "Reset"


class Op(StrEnum):
    """How an action counts in the plan summary: add / change / remove; `read` is not counted, `run`
    (a command such as ClearCache or Reset) counts as a change."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    READ = "read"
    RUN = "run"


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    DEFERRED = "deferred"


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """What an action changes: `field` from `old` to `new` (None = absent). Never holds a secret."""

    field: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclasses.dataclass(frozen=True, slots=True)
class Effects:
    reboot_needed: bool = False
    affects_running_session: bool = False


@dataclasses.dataclass(frozen=True)
class Action:
    """One message for a charger: what it sends and why. Whom it goes to is its `Plan`'s station, so one
    action serves every station a shared plan is made out to (`controller.runtime.planshare`)."""

    phase: Phase
    kind: Kind
    payload: Mapping[str, Any]
    reason: str
    change: Change | None = None
    op: Op = Op.CHANGE
    effects: Effects = Effects()
    details: tuple[Change, ...] = ()  # per-entry changes (local list entries: field = idTag)
    record: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    secret: bool = False
    drift: bool = False  # heals a setting changed at the charger

    @property
    def config_key(self) -> str | None:
        """The configuration key of a ChangeConfiguration (as it goes on the wire)."""
        return str(self.payload["key"]) if self.kind is Kind.CHANGE_CONFIGURATION else None

    def to_dict(self, *, mask: bool = False) -> dict[str, Any]:
        payload = dict(self.payload)
        if self.secret and "value" in payload:
            payload["value"] = SECRET_PLACEHOLDER
        details = [d.to_dict() for d in self.details]
        if mask:
            payload = _mask_payload(payload)
            details = [{**d, "field": mask_id_tag(d["field"])} for d in details]
        return {
            "phase": self.phase.label,
            "kind": self.kind.value,
            "op": self.op.value,
            "payload": payload,
            "change": None if self.change is None else self.change.to_dict(),
            "reason": self.reason,
            "effects": {"rebootNeeded": self.effects.reboot_needed,
                        "affectsRunningSession": self.effects.affects_running_session},
            "details": details,
            "record": dict(self.record),
            "secret": self.secret,
            "drift": self.drift,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Action:
        ch = d.get("change")
        eff = d.get("effects") or {}
        return cls(
            phase=Phase[d["phase"].upper()], kind=Kind(d["kind"]), payload=dict(d["payload"]),
            reason=d["reason"], change=None if ch is None else Change(ch["field"], ch["old"], ch["new"]),
            op=Op(d.get("op", "change")),
            effects=Effects(bool(eff.get("rebootNeeded")), bool(eff.get("affectsRunningSession"))),
            details=tuple(Change(x["field"], x["old"], x["new"]) for x in d.get("details", ())),
            record=dict(d.get("record") or {}), secret=bool(d.get("secret")), drift=bool(d.get("drift")),
        )

    def hash_form(self) -> dict[str, Any]:
        """to_dict with a secret replaced by its digest (so a changed secret changes the plan hash)."""
        out = self.to_dict()
        if self.secret and "value" in self.payload:
            out["payload"]["value"] = secret_digest(str(self.payload["value"]))
        return out


def _mask_payload(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    if "idTag" in out and isinstance(out["idTag"], str):
        out["idTag"] = mask_id_tag(out["idTag"])
    if isinstance(out.get("localAuthorizationList"), list):
        out["localAuthorizationList"] = [
            {**e, "idTag": mask_id_tag(e["idTag"])} for e in out["localAuthorizationList"]]
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class Note:
    level: Level
    text: str  # idTags masked
    subject: str | None = None  # a key, "local list", "connector 1", ...

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level.value, "text": self.text, "subject": self.subject}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Note:
        return cls(Level(d["level"]), d["text"], d.get("subject"))


def info(text: str, subject: str | None = None) -> Note:
    return Note(Level.INFO, text, subject)


def warning(text: str, subject: str | None = None) -> Note:
    return Note(Level.WARNING, text, subject)


def deferred(text: str, subject: str | None = None) -> Note:
    return Note(Level.DEFERRED, text, subject)


def earliest(*times: dt.datetime | None) -> dt.datetime | None:
    found = [t for t in times if t is not None]
    return min(found) if found else None


@dataclasses.dataclass(frozen=True, slots=True)
class Part:
    """What one planner decided: actions, notes, its next look and how many settings are in sync."""

    actions: tuple[Action, ...] = ()
    notes: tuple[Note, ...] = ()
    next_review_at: dt.datetime | None = None
    unchanged: int = 0

    def __add__(self, other: Part) -> Part:
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        mine, theirs = self.next_review_at, other.next_review_at
        review = mine if theirs is None else theirs if mine is None else min(mine, theirs)
        return Part(self.actions + other.actions, self.notes + other.notes, review, self.unchanged + other.unchanged)

    @property
    def is_empty(self) -> bool:
        return not self.actions and not self.notes and self.next_review_at is None and not self.unchanged


def combine(parts: Iterable[Part]) -> Part:
    """The parts added together (what ``sum`` with ``+`` gives, in one pass: planners combine several per
    station and look)."""
    actions: list[Action] = []
    notes: list[Note] = []
    review: dt.datetime | None = None
    unchanged = 0
    for part in parts:
        if part.actions:
            actions.extend(part.actions)
        if part.notes:
            notes.extend(part.notes)
        at = part.next_review_at
        if at is not None and (review is None or at < review):
            review = at
        unchanged += part.unchanged
    return Part(tuple(actions), tuple(notes), review, unchanged)


def sort_actions(actions: Iterable[Action]) -> tuple[Action, ...]:
    """By phase; the planners' order is kept within a phase (sorted() is stable)."""
    return tuple(sorted(actions, key=lambda a: a.phase))


@dataclasses.dataclass(frozen=True)
class Plan:
    station: str
    actions: tuple[Action, ...] = ()
    notes: tuple[Note, ...] = ()
    next_review_at: dt.datetime | None = None
    unchanged: int = 0
    name: str | None = None  # the station's name in the repository (None when removed)
    removed: bool = False  # no longer declared: made inert, never reset
    observed: bool = True  # False: never observed, nothing can be planned yet
    online: bool = True
    revision: str = ""

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def counts(self) -> dict[str, int]:
        """Summary counts: add / change / remove (reads are not counted; commands count as changes)."""
        out = {"add": 0, "change": 0, "remove": 0}
        for a in self.actions:
            if a.op is Op.READ:
                continue
            out["change" if a.op is Op.RUN else a.op.value] += 1
        return out

    def to_dict(self, *, mask: bool = False) -> dict[str, Any]:
        return {
            "station": self.station,
            "name": self.name,
            "revision": self.revision,
            "removed": self.removed,
            "observed": self.observed,
            "online": self.online,
            "actions": [{"station": self.station, **a.to_dict(mask=mask)} for a in self.actions],
            "notes": [n.to_dict() for n in self.notes],
            "nextReviewAt": None if self.next_review_at is None else self.next_review_at.isoformat(),
            "unchanged": self.unchanged,
            "counts": self.counts(),
            "contentHash": self.content_hash(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        nra = d.get("nextReviewAt")
        return cls(
            station=d["station"], actions=tuple(Action.from_dict(a) for a in d.get("actions", ())),
            notes=tuple(Note.from_dict(n) for n in d.get("notes", ())),
            next_review_at=None if nra is None else dt.datetime.fromisoformat(nra),
            unchanged=int(d.get("unchanged", 0)), name=d.get("name"), removed=bool(d.get("removed")),
            observed=bool(d.get("observed", True)), online=bool(d.get("online", True)),
            revision=d.get("revision", ""),
        )

    def content_hash(self) -> str:
        """sha256 of what the plan does (station + actions, secrets as digests); notes and times excluded.

        Two looks that would send the same messages have the same hash (rollouts and status use it to tell
        "already done" from "new work").
        """
        body = {"station": self.station.upper(),
                "actions": [{"station": self.station, **a.hash_form()} for a in self.actions]}  # (hashes as before)
        return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def summary(plans: Sequence[Plan]) -> dict[str, int]:
    out = {"add": 0, "change": 0, "remove": 0}
    for p in plans:
        for k, v in p.counts().items():
            out[k] += v
    return out
