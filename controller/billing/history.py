"""Tariff history by time: what each taken revision declared about prices, and the revision in force at
an instant.

When the controller takes a desired revision it records (revision, taken at, manifest) in the store;
the manifest names content-addressed documents (canonical JSON, key = SHA-256), so a tariff that did not
change is not stored again:
- one document per tariff (prices, windows, group prices, min/max, tax, currency, display texts);
- ``groups``: every access group and the groups it includes (no cards: no personal data here);
- ``stations``: per OCPP identity, the station's name, time zone and tariff, and each EVSE's tariff
  (resolved as without boot information: a tariff set only by a boot-selected profile is taken from
  the transaction instead);
- ``owner``: the terms a bill depends on (billing settings, time zone, currency, retention).

The revision in force for a session is the one taken last at or before the session's start as the
charger reported it (the earliest known when the session started before any). Why the time taken and
not the commit time: chargers and drivers saw new prices only once the controller had taken them.

Boundary: ``snapshot`` / ``resolve`` are pure; ``record_revision`` is the one async call (the store);
``record_in_force`` records the holder's revision once, for the controller (each revision it takes) and for
billing (a store that could not take it then) alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from controller.config import model as m
from controller.config.effective import effective_station
from controller.store.api import Store
from controller.store.billing_records import TariffRevision
from controller.store.codec import canonical_json
from controller.store.errors import StoreError

if TYPE_CHECKING:
    from controller.runtime.state import DesiredHolder

log = logging.getLogger("chargeops.billing.history")
_SRC = m.Src("<tariff history>", 0)


def _dec(d: Decimal | None) -> str | None:
    return None if d is None else str(d)


def _price_doc(p: m.PriceComponents) -> dict[str, Any]:
    idle = None if p.idle is None else {"perHour": str(p.idle.per_hour), "graceMinutes": p.idle.grace_minutes,
                                        "untilUnplug": p.idle.until_unplug}
    return {"sessionFee": _dec(p.session_fee), "perKwh": _dec(p.per_kwh), "perHour": _dec(p.per_hour), "idle": idle}


def tariff_document(t: m.Tariff) -> dict[str, Any]:
    """A tariff as JSON-ready data (decimals as strings); `tariff_from_document` reads it back."""
    return {
        "name": t.name, "currency": t.currency, "price": _price_doc(t.price), "displayText": t.display_text,
        "displayTextOffline": t.display_text_offline, "taxRatePercent": _dec(t.tax_rate_percent),
        "minPrice": _dec(t.min_price), "maxPrice": _dec(t.max_price),
        "windows": [{"name": w.name, "days": list(w.days), "start": w.start, "end": w.end,
                     "price": _price_doc(w.price)} for w in t.windows],
        "groupPrices": [{"group": g.group, "free": g.free, "price": _price_doc(g.price)} for g in t.group_prices],
    }


def _opt_dec(v: object) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _price_from(d: Mapping[str, Any]) -> m.PriceComponents:
    idle = d.get("idle")
    return m.PriceComponents(
        session_fee=_opt_dec(d.get("sessionFee")), per_kwh=_opt_dec(d.get("perKwh")),
        per_hour=_opt_dec(d.get("perHour")),
        idle=None if idle is None else m.IdleFee(Decimal(str(idle["perHour"])), int(idle.get("graceMinutes", 0)),
                                                 bool(idle.get("untilUnplug", False))))


def tariff_from_document(d: Mapping[str, Any]) -> m.Tariff:
    return m.Tariff(
        name=str(d["name"]), currency=str(d["currency"]), price=_price_from(d["price"]), src=_SRC,
        display_text=d.get("displayText"), display_text_offline=d.get("displayTextOffline"),
        tax_rate_percent=_opt_dec(d.get("taxRatePercent")), min_price=_opt_dec(d.get("minPrice")),
        max_price=_opt_dec(d.get("maxPrice")),
        windows=tuple(m.TariffWindow(w["name"], tuple(w["days"]), w["start"], w["end"], _price_from(w["price"]))
                      for w in d.get("windows", ())),
        group_prices=tuple(m.GroupPrice(g["group"], bool(g.get("free", False)), _price_from(g["price"]))
                           for g in d.get("groupPrices", ())),
    )


def _billing_doc(b: m.Billing) -> dict[str, Any]:
    return {"enabled": b.enabled, "platformFeePercent": str(b.platform_fee_percent),
            "pricesIncludeTax": b.prices_include_tax, "taxRatePercent": str(b.tax_rate_percent)}


@dataclasses.dataclass(frozen=True, slots=True)
class OwnerTerms:
    """What a bill depends on of the owner's settings."""

    billing: m.Billing
    timezone: str
    currency: str
    personal_data_days: int


@dataclasses.dataclass(frozen=True, slots=True)
class StationPrices:
    name: str
    timezone: str | None
    tariff: str | None
    evse_tariffs: Mapping[int, str | None]

    def tariff_for(self, connector_id: int | None) -> str | None:
        if connector_id is not None and connector_id in self.evse_tariffs:
            return self.evse_tariffs[connector_id]
        named = sorted({t for t in self.evse_tariffs.values() if t})
        return self.tariff or (named[0] if named else None)


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    manifest: str
    documents: Mapping[str, str]


def _address(doc: object, documents: dict[str, str]) -> str:
    text = canonical_json(doc)
    digest = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    documents[digest] = text
    return digest


def snapshot(desired: m.DesiredState) -> Snapshot:
    """The manifest and documents of a revision (pure; see the module doc)."""
    documents: dict[str, str] = {}
    tariffs = {name: _address(tariff_document(t), documents) for name, t in sorted(desired.tariffs.items())}
    groups = {name: sorted(g.includes) for name, g in sorted(desired.groups.items())}
    stations: dict[str, Any] = {}
    for st in desired.stations.values():
        eff = effective_station(desired, st, None)
        stations[st.identity.upper()] = {"name": st.name, "timezone": st.timezone, "tariff": eff.tariff,
                                         "evses": {str(e.id): e.tariff for e in eff.evses}}
    o = desired.owner
    owner = {"billing": _billing_doc(o.billing), "timezone": o.timezone, "currency": o.currency,
             "personalDataDays": o.data_retention.personal_data_days}
    manifest = {"tariffs": tariffs, "groups": _address(groups, documents),
                "stations": _address(stations, documents), "owner": _address(owner, documents)}
    return Snapshot(canonical_json(manifest), documents)


async def record_revision(store: Store, desired: m.DesiredState | None, at: dt.datetime) -> bool | None:
    """Record the revision just taken: True if recorded, False if it was in force already (a restart),
    None if the store could not take it (logged, not raised: taking a revision never fails for this)."""
    if desired is None:
        return False
    snap = snapshot(desired)
    try:
        return await store.record_tariff_revision(desired.revision, at, snap.manifest, snap.documents)
    except StoreError as exc:
        log.warning("tariff history: revision %s not recorded (%s); sessions fall back to the revision"
                    " recorded before it", desired.revision, exc)
        return None


async def record_in_force(store: Store, holder: DesiredHolder, at: dt.datetime) -> None:
    """The holder's revision in the history, unless the holder says it is there already
    (`DesiredHolder.history_recorded`, set here once the store took it or held it)."""
    desired = holder.desired
    if desired is None or desired.revision == holder.history_recorded:
        return
    if await record_revision(store, desired, at) is not None:
        holder.history_recorded = desired.revision


@dataclasses.dataclass(frozen=True, slots=True)
class InForce:
    """A recorded revision, resolved: the tariffs, groups, station assignments and owner terms it declared."""

    revision: str
    taken_at: dt.datetime
    tariffs: Mapping[str, m.Tariff]
    tariff_hashes: Mapping[str, str]
    groups: Mapping[str, tuple[str, ...]]  # group -> the groups it includes
    stations: Mapping[str, StationPrices]  # upper-case identity ->
    owner: OwnerTerms | None

    def station(self, identity: str) -> StationPrices | None:
        return self.stations.get(identity.upper())

    def groups_of(self, group: str | None) -> tuple[str, ...]:
        """The group and every group that includes it, directly or through others (sorted)."""
        if not group:
            return ()
        parents: dict[str, set[str]] = {}
        for g, includes in self.groups.items():
            for inc in includes:
                parents.setdefault(inc, set()).add(g)
        seen, todo = {group}, [group]
        while todo:
            for p in parents.get(todo.pop(), ()):
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return tuple(sorted(seen))


def resolve(rev: TariffRevision) -> InForce:
    """Read a recorded revision back (pure). Documents missing from the store are left out."""
    manifest = json.loads(rev.manifest)

    def doc(digest: object) -> Any:
        text = rev.documents.get(str(digest)) if digest else None
        return None if text is None else json.loads(text)

    tariffs: dict[str, m.Tariff] = {}
    hashes: dict[str, str] = {}
    for name, digest in manifest.get("tariffs", {}).items():
        body = doc(digest)
        if body is not None:
            tariffs[name] = tariff_from_document(body)
            hashes[name] = str(digest)
    groups = {g: tuple(incs) for g, incs in (doc(manifest.get("groups")) or {}).items()}
    stations = {
        ident: StationPrices(s["name"], s.get("timezone"), s.get("tariff"),
                             {int(k): v for k, v in s.get("evses", {}).items()})
        for ident, s in (doc(manifest.get("stations")) or {}).items()
    }
    o = doc(manifest.get("owner"))
    owner = None
    if o is not None:
        b = o["billing"]
        owner = OwnerTerms(
            m.Billing(enabled=bool(b["enabled"]), platform_fee_percent=Decimal(b["platformFeePercent"]),
                      prices_include_tax=bool(b["pricesIncludeTax"]), tax_rate_percent=Decimal(b["taxRatePercent"])),
            o["timezone"], o["currency"], int(o["personalDataDays"]))
    return InForce(rev.revision, rev.taken_at, tariffs, hashes, groups, stations, owner)


# (owner, manifest) -> resolved prices: a manifest names every document by content hash, so it resolves alike
# in any database, and revisions that did not change a price (most: a profile, a card, a station's setting)
# share one resolution. A revision of 10,000 stations takes ~0.2 s to read and resolve, and every session stop
# asks: it is resolved once (concurrent askers wait for the one load, `_LOADING`), off the event loop, and the
# controller resolves each revision it takes at once (`prepare_in_force`), so the first stops after a revision
# or a restart do not pay for it before their answer.
_RESOLVED: OrderedDict[tuple[str, str], InForce] = OrderedDict()
_RESOLVED_MAX = 8
_LOADING: dict[tuple[str, str], asyncio.Future[InForce | None]] = {}


async def in_force_at(store: Store, at: dt.datetime) -> InForce | None:
    found = await store.tariff_revision_ref_at(at)
    if found is None:
        return None
    key = (store.owner, found.manifest)
    resolved = _RESOLVED.get(key)
    if resolved is not None:
        _RESOLVED.move_to_end(key)
    else:
        loading = _LOADING.get(key)
        if loading is None or loading.get_loop() is not asyncio.get_running_loop():  # (tests run loops in turn)
            loading = _LOADING[key] = asyncio.ensure_future(_load(store, found.ref, key))
        resolved = await asyncio.shield(loading)  # one asker cancelled does not cancel the load for the others
        if resolved is None:
            return None
    if (resolved.revision, resolved.taken_at) != (found.revision, found.taken_at):
        return dataclasses.replace(resolved, revision=found.revision, taken_at=found.taken_at)
    return resolved


async def _load(store: Store, ref: int, key: tuple[str, str]) -> InForce | None:
    try:
        rev = await store.tariff_revision_by_ref(ref)
        if rev is None:
            return None
        resolved = await asyncio.to_thread(resolve, rev)  # ~0.1 s of parsing at 10,000 stations: not on the loop
        _RESOLVED[key] = resolved
        while len(_RESOLVED) > _RESOLVED_MAX:
            _RESOLVED.popitem(last=False)
        return resolved
    finally:
        if _LOADING.get(key) is asyncio.current_task():
            del _LOADING[key]


async def prepare_in_force(store: Store, at: dt.datetime) -> None:
    """Resolve the revision in force at `at` into the cache now (the controller, after taking a revision), so
    that no session's answer waits for it. A store that cannot answer is logged: pricing asks again."""
    try:
        await in_force_at(store, at)
    except StoreError as exc:
        log.warning("tariff history: the revision in force not prepared for pricing (%s)", exc)
