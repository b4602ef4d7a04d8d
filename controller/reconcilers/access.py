"""Access reconciler: the owner's cards and groups -> the charger's local list, and ClearCache on revocation.

The list a station should hold comes from `config.access.local_list` (the same rules as online Authorize):
blocked cards first, then accepted cards by idTag, then expired ones. When it does not fit
`LocalAuthListMaxLength`, the first N in that order are sent and a warning says so (deterministic, and a
revoked card is the last thing dropped).

Pushing (only when offline authorization is on and the charger supports LocalAuthListManagement):
- Full when the charger's version is unknown, 0 (empty), or was not set by us (snapshot hash unknown),
  after Failed / VersionMismatch (`local_list_mismatch`), or when a Differential would be no smaller;
- Differential otherwise: the diff between the snapshot the charger accepted (`snapshot_entries`) and the
  desired list: new or changed cards as updates (with idTagInfo), removed cards as deletes (without), so
  one changed card is one entry on the wire;
- chunked by `SendLocalListMaxLength`: a Full's first chunk is Full, the rest Differentials; versions
  only increase (each chunk takes the next number above the charger's version). The last chunk's
  `record` carries the new version and snapshot hash the runtime stores once it is Accepted.

Offline authorization off: a charger whose list is not empty gets a Full empty list (so a revoked card
cannot linger offline); LocalAuthListEnabled=false is the configuration reconciler's job.

Revocation: a blocked card is pushed as Blocked (never deleted), and a ClearCache follows whenever the
list loses or blocks a card, or the set of blocked cards in scope of the station changed since the last
accepted ClearCache (`cache_cleared_hash`), so the charger's cache cannot let a revoked card in. A card
deleted from the repository is only detected through the list (stations without one rely on the cache
entry's expiry): owners revoke by blocking.

Snapshots are content-addressed: `snapshot_hash` is sha256 over the canonical entries (sorted by
upper-case idTag), the same for every station that holds the same list.

Fleet scale: thousands of stations usually share a handful of lists, so everything that depends only on
the list is computed once and shared (a pure cache, invisible in results): the desired list per desired
state and access rules, its hash and wire entries, and the Differential between two snapshots (keyed by
their content addresses). One card added to a 5,000-card group used by 10,000 stations is one diff, not
10,000.

Boundary: pure; desired state, observed station, the accepted snapshot's entries and now in; a `Part` out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from controller.config import model as m
from controller.config.access import BLOCKED, ListEntry, local_list, may_use
from controller.config.diagnostics import mask_id_tag
from controller.config.effective import EffectiveStation
from controller.config.memo import PerDesiredState

from .actions import Action, Change, Kind, Note, Op, Part, Phase, canonical_json, info, warning
from .observed import ObservedStation

MAX_PARENT_ID_TAG = 20
SUBJECT = "local list"
T = TypeVar("T")

_PER_STATE = PerDesiredState()  # results that depend only on a desired state and hashable arguments
# By content address: hash, wire entries and diffs of lists (bounded; recomputed when evicted).
_BY_CONTENT: OrderedDict[tuple[object, ...], Any] = OrderedDict()
_BY_CONTENT_MAX = 256


def _per_state(desired: m.DesiredState, key: tuple[object, ...], make: Callable[[], T]) -> T:
    table = _PER_STATE.table(desired)
    if key not in table:
        table[key] = make()
    value: T = table[key]
    return value


def _by_content(key: tuple[object, ...], make: Callable[[], T]) -> T:
    if key in _BY_CONTENT:
        _BY_CONTENT.move_to_end(key)
    else:
        _BY_CONTENT[key] = make()
        while len(_BY_CONTENT) > _BY_CONTENT_MAX:
            _BY_CONTENT.popitem(last=False)
    value: T = _BY_CONTENT[key]
    return value


def _rules(eff: EffectiveStation) -> frozenset[m.Access]:
    return frozenset(e.access for e in eff.evses)


def _entry_key(e: ListEntry) -> str:
    return e.id_tag.upper()


def canonical_entry(e: ListEntry) -> dict[str, Any]:
    return {"idTag": e.id_tag, "status": e.status,
            "expiryDate": None if e.expiry_date is None else e.expiry_date.isoformat(),
            "parentIdTag": e.parent_id_tag}


def snapshot_hash(entries: Iterable[ListEntry]) -> str:
    """Content address of a list snapshot: the same entries give the same hash on every station."""
    body = [canonical_entry(e) for e in sorted(entries, key=_entry_key)]
    return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


_EMPTY_HASH = snapshot_hash(())


def revoked_hash(keys: Iterable[str]) -> str:
    """Content address of a set of revoked (blocked) idTags, for the ClearCache generation."""
    body = sorted({k.upper() for k in keys})
    return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


def wire_entry(e: ListEntry, owner_tz: dt.tzinfo) -> dict[str, Any]:
    """A SendLocalList entry: validUntil becomes an expiryDate at the end of that day (owner's zone)."""
    tag_info: dict[str, Any] = {"status": e.status}
    if e.expiry_date is not None:
        end = dt.datetime.combine(e.expiry_date + dt.timedelta(days=1), dt.time(), tzinfo=owner_tz)
        tag_info["expiryDate"] = end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if e.parent_id_tag is not None and len(e.parent_id_tag) <= MAX_PARENT_ID_TAG:
        tag_info["parentIdTag"] = e.parent_id_tag
    return {"idTag": e.id_tag, "idTagInfo": tag_info}


def _send(version: int, update: str, entries: Sequence[dict[str, Any]], *, old_version: int | None,
          reason: str, op: Op, record_hash: str | None, details: tuple[Change, ...] = ()) -> Action:
    return Action(
        Phase.DATA, Kind.SEND_LOCAL_LIST,
        {"listVersion": version, "updateType": update, "localAuthorizationList": list(entries)},
        reason, Change(SUBJECT, None if old_version is None else f"v{old_version}", f"v{version}"), op=op,
        details=details, record={"localListVersion": version, "localListHash": record_hash})


def _chunks(entries: Sequence[dict[str, Any]], *, full: bool, base: int | None, size: int | None,
            reason: str, new_hash: str, details: Sequence[Change] = ()) -> list[Action]:
    """SendLocalList messages for `entries`: versions base+1, base+2, ...; a Full starts with a Full chunk."""
    step = size if size and size > 0 else max(len(entries), 1)
    parts = [entries[i:i + step] for i in range(0, len(entries), step)] or [[]]
    detail_parts = [tuple(details[i:i + step]) for i in range(0, len(details), step)]
    start = max(base or 0, 0)
    out = []
    for n, part in enumerate(parts):
        version = start + n + 1
        last = n == len(parts) - 1
        update = "Full" if full and n == 0 else "Differential"
        why = reason if len(parts) == 1 else f"{reason} (message {n + 1} of {len(parts)})"
        op = Op.ADD if full and n == 0 and not base else Op.CHANGE
        out.append(_send(version, update, part, old_version=base if n == 0 else version - 1,
                         reason=why, op=op, record_hash=new_hash if last else None,
                         details=detail_parts[n] if n < len(detail_parts) else ()))
    return out


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _full_reason(observed: ObservedStation, snapshot_entries: Sequence[ListEntry] | None) -> str | None:
    """Why the list must be sent whole, or None when a Differential on the known snapshot will do."""
    version = observed.local_list_version
    if version is None:
        return "the charger's list version is not known"
    if observed.local_list_mismatch:
        return "the charger answered Failed / VersionMismatch or reports a version other than ours"
    if version == 0:
        return "the charger's list is empty"
    if observed.local_list_hash is None:
        return f"the content of the charger's list v{version} is unknown (not sent by chargeops)"
    if snapshot_entries is None:
        return "the snapshot the charger accepted is not available"
    return None


def shared_hash(wanted: Sequence[ListEntry]) -> str:
    """`snapshot_hash`, computed once per list object (lists come shared from `desired_list`)."""
    cached = _by_content(("hash", id(wanted)), lambda: (wanted, snapshot_hash(wanted)))
    if cached[0] is not wanted:  # an id reused by another object: compute, and keep the new one
        cached = (wanted, snapshot_hash(wanted))
        _BY_CONTENT[("hash", id(wanted))] = cached
    digest: str = cached[1]
    return digest


def _diff(old_hash: str | None, new_hash: str, snapshot_entries: Sequence[ListEntry],
          wanted: Sequence[ListEntry]) -> tuple[list[ListEntry], list[ListEntry], set[str], dict[str, ListEntry]]:
    """(updates, deletes, revoked idTags, old entries by key) from the accepted snapshot to `wanted`; shared
    by every station going from the same list to the same list (both hashes are content addresses)."""
    def compute() -> tuple[list[ListEntry], list[ListEntry], set[str], dict[str, ListEntry]]:
        old = {_entry_key(e): e for e in snapshot_entries}
        new = {_entry_key(e): e for e in wanted}
        updates = [e for e in wanted if old.get(_entry_key(e)) != e]
        deletes = [old[k] for k in sorted(old) if k not in new]
        revokes = {_entry_key(e) for e in deletes}
        revokes |= {_entry_key(e) for e in updates
                    if e.status == BLOCKED and (o := old.get(_entry_key(e))) is not None and o.status != BLOCKED}
        return updates, deletes, revokes, old

    if old_hash is None:
        return compute()
    return _by_content(("diff", old_hash, new_hash), compute)


def _wire_all(wanted: Sequence[ListEntry], new_hash: str, owner_tz: dt.tzinfo) -> list[dict[str, Any]]:
    """Every entry on the wire (a Full list), shared by the stations that get the same list."""
    return _by_content(("wire", new_hash, str(owner_tz)), lambda: [wire_entry(e, owner_tz) for e in wanted])


def _push(observed: ObservedStation, wanted: Sequence[ListEntry],
          snapshot_entries: Sequence[ListEntry] | None, owner_tz: dt.tzinfo, reason: str) -> tuple[Part, set[str]]:
    """Local-list messages, and the idTags (upper-case) the push revokes (blocked or deleted)."""
    new_hash = shared_hash(wanted)
    version = observed.local_list_version
    if version is not None and not observed.local_list_mismatch and (
            (version == 0 and not wanted) or (version > 0 and observed.local_list_hash == new_hash)):
        return Part(unchanged=1), set()
    size = observed.send_local_list_max_length
    full_why = _full_reason(observed, snapshot_entries)
    revokes: set[str] = set()
    if full_why is None:
        assert snapshot_entries is not None
        updates, deletes, diff_revokes, old = _diff(observed.local_list_hash, new_hash, snapshot_entries, wanted)
        revokes = set(diff_revokes)
        if len(updates) + len(deletes) < max(len(wanted), 1):
            wire = [wire_entry(e, owner_tz) for e in updates] + [{"idTag": e.id_tag} for e in deletes]
            details = [Change(e.id_tag, (o.status if (o := old.get(_entry_key(e))) else None), e.status)
                       for e in updates] + [Change(e.id_tag, e.status, None) for e in deletes]
            added = sum(1 for e in updates if _entry_key(e) not in old)
            counts = [f"{added:,} added" if added else "", f"{len(updates) - added:,} updated"
                      if len(updates) > added else "", f"{len(deletes):,} deleted" if deletes else ""]
            why = f"{reason}: {', '.join(c for c in counts if c)}"
            return Part(tuple(_chunks(wire, full=False, base=version, size=size, reason=why,
                                      new_hash=new_hash, details=details))), revokes
        full_why = "a Differential would be no smaller than the whole list"
    wire = _wire_all(wanted, new_hash, owner_tz)
    why = f"{reason}: {_plural(len(wanted), 'card')}, sent whole because {full_why}"
    return Part(tuple(_chunks(wire, full=True, base=version, size=size, reason=why,
                              new_hash=new_hash))), revokes


def _revoked_in_scope(desired: m.DesiredState, eff: EffectiveStation) -> list[str]:
    rules = _rules(eff)
    return _per_state(desired, ("revoked", rules), lambda: sorted(
        k for k, c in desired.cards.items() if c.blocked and any(may_use(desired, r, k) for r in rules)))


def _clear_cache(desired: m.DesiredState, eff: EffectiveStation, observed: ObservedStation,
                 list_revokes: set[str]) -> Part:
    if not eff.operative:
        return Part()
    if (observed.value("AuthorizationCacheEnabled") or "").strip().lower() == "false":
        return Part()
    revoked = _revoked_in_scope(desired, eff)
    generation = _per_state(desired, ("revoked-hash", _rules(eff)), lambda: revoked_hash(revoked))
    set_changed = generation != observed.cache_cleared_hash and (bool(revoked) or observed.cache_cleared_hash
                                                                 is not None)
    if not list_revokes and not set_changed:
        return Part()
    if list_revokes:
        shown = ", ".join(mask_id_tag(k) for k in sorted(list_revokes)[:3])
        more = f" and {len(list_revokes) - 3:,} more" if len(list_revokes) > 3 else ""
        why = f"revoked card(s) {shown}{more} must not be let in from the authorization cache"
    else:
        why = f"the set of blocked cards changed ({_plural(len(revoked), 'blocked card')}); " \
              "the authorization cache must not let them in"
    return Part((Action(Phase.DATA, Kind.CLEAR_CACHE, {}, why, Change("authorization cache", None,
                                                                               "cleared"),
                        op=Op.RUN, record={"cacheClearedHash": generation}),))


def empty_list(observed: ObservedStation, reason: str) -> Part:
    """A Full empty list when the charger's list may hold cards; nothing when it is empty or unsupported."""
    if not observed.supports_local_list:
        return Part()
    version = observed.local_list_version
    if version is None:
        return Part(notes=(info("local list not emptied yet: its version has not been read", SUBJECT),))
    empty = _EMPTY_HASH
    if version == 0 or (observed.local_list_hash == empty and not observed.local_list_mismatch):
        return Part(unchanged=1)
    return Part(tuple(_chunks([], full=True, base=version, size=None, reason=reason, new_hash=empty)))


def desired_list(desired: m.DesiredState, eff: EffectiveStation, observed: ObservedStation, now: dt.datetime,
                 owner_tz: dt.tzinfo) -> tuple[tuple[ListEntry, ...], Note | None]:
    """The list the charger should hold (cut to its capacity, with a warning when it does not fit)."""
    today = now.astimezone(owner_tz).date()
    wanted = _per_state(desired, ("list", _rules(eff), eff.offline_authorization, today),
                        lambda: local_list(desired, eff, today))
    cap = observed.local_auth_list_max_length
    if cap is None or len(wanted) <= cap:
        return wanted, None
    note = warning(f"local list does not fit: {len(wanted):,} cards, capacity {cap:,} — the first {cap:,} in "
                   "order are sent (blocked first, then accepted by idTag, then expired)", SUBJECT)
    cut = _per_state(desired, ("cut", _rules(eff), eff.offline_authorization, today, cap), lambda: wanted[:cap])
    return cut, note


def plan(desired: m.DesiredState, eff: EffectiveStation, observed: ObservedStation, now: dt.datetime, *,
         snapshot_entries: Sequence[ListEntry] | None = None, owner_tz: dt.tzinfo = dt.UTC) -> Part:
    """The local list and ClearCache actions for one station (data phase)."""
    if not eff.offline_authorization:
        why = ("the station is not activated" if not eff.operative else "offline authorization is off")
        part = empty_list(observed, f"{why}: the local list is emptied so no card lingers on it")
        return part + _clear_cache(desired, eff, observed, set())
    if not observed.supports_local_list:
        unsupported = info("offline authorization is on, but the charger does not support local lists "
                           "(LocalAuthListManagement): it relies on online authorization and its cache", SUBJECT)
        return Part(notes=(unsupported,)) + _clear_cache(desired, eff, observed, set())
    wanted, note = desired_list(desired, eff, observed, now, owner_tz)
    notes = (note,) if note else ()
    part, revokes = _push(observed, wanted, snapshot_entries, owner_tz,
                          "offline authorization")
    return Part(notes=notes) + part + _clear_cache(desired, eff, observed, revokes)
