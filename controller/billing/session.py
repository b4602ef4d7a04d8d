"""A stored transaction priced: gather the facts from the store, then ask the cost engine.

Used for billing records (at stop, and again at unplug) and for the drivers' running and final cost
(California Pricing). The facts:
- start / stop: the charger's reported times (the times we received them when unreadable, flagged);
- the tariff: the revision in force at the charger's start time (``history``): the EVSE's tariff there,
  else the one the transaction recorded at StartTransaction, else today's declaration;
- the driver: the card of the idTag (pseudonymous driver id), its own group (parentIdTag given at
  authorization, else the card's) and every group that includes it in the revision in force;
- energy: ``session_energy`` from meterStart / meterStop and the transaction's stored meter values, with
  the EVSE's power for the plausibility check; power readings from the same samples;
- the connector's status timeline (``connector_status_history``), on the charger's clock (the receive
  time when a status has no readable timestamp), for charging vs idle time and the plug-out.

Plug-out rule (idle fee until unplug): the first ``Available`` of the connector at or after the stop;
the stop itself when the connector was already ``Available`` at the stop (the EV left first).

Boundary: store reads and pure pricing; nothing is written here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal

from controller.config import model as m
from controller.config.effective import effective_station
from controller.hw.ocppj import parse_datetime
from controller.pricing import EnergyResult, PriceBreakdown, SessionFacts, StatusChange, price_session, session_energy
from controller.pricing.activity import activity
from controller.pricing.energy import evse_max_power_kw, power_readings
from controller.store.api import Store
from controller.store.billing_records import StatusChangeRecord
from controller.store.records import MeterSample, TransactionRecord, TransactionStatus
from controller.store.redact import mask_id_tag
from controller.transactions import SampledValue, parse_decimal

from .history import InForce, in_force_at

CHARGING = "Charging"
IDLE = "Idle"
_STATUS_LOOKBACK = dt.timedelta(days=1)
ORPHAN_NOTE = "StopTransaction for a transaction not started here: not priced"


@dataclasses.dataclass(frozen=True, slots=True)
class PricedSession:
    transaction: TransactionRecord
    start: dt.datetime
    stop: dt.datetime
    in_force: InForce | None
    tariff_name: str | None
    tariff: m.Tariff | None
    tariff_hash: str | None
    tariff_source: str  # "history" | "declared now" | "none"
    billing: m.Billing
    currency: str
    driver_id: str | None
    card: str | None  # masked
    group: str | None  # the driver's own group
    groups: tuple[str, ...]
    energy: EnergyResult
    plug_out: dt.datetime | None
    state: str  # CHARGING | IDLE at `stop`
    breakdown: PriceBreakdown | None  # None: not priced (no tariff, orphan stop)
    anomalies: tuple[str, ...]  # of the session as a whole (the breakdown's, or gathered ones when unpriced)

    @property
    def billing_enabled(self) -> bool:
        return self.billing.enabled

    @property
    def latest_wh(self) -> Decimal | None:
        """The register at `stop` on the cleaned timeline (RunningCost's meterValue)."""
        return self.energy.readings[-1].wh if self.energy.readings else None


def sampled(s: MeterSample) -> SampledValue:
    """A stored sample as the cost engine reads it."""
    signed = (s.format or "") == "SignedData"
    return SampledValue(timestamp=parse_datetime(s.timestamp), value=None if signed else parse_decimal(s.value),
                        raw_value=s.value, measurand=s.measurand or "Energy.Active.Import.Register",
                        unit=s.unit or "Wh", phase=s.phase, context=s.context, location=s.location, signed=signed)


def status_timeline(rows: Sequence[StatusChangeRecord]) -> tuple[StatusChange, ...]:
    changes = [StatusChange(parse_datetime(r.timestamp) or r.received_at, r.status) for r in rows]
    return tuple(sorted(changes, key=lambda c: c.at))  # stable: the later received wins at one instant


def plug_out_time(statuses: Sequence[StatusChange], start: dt.datetime, stop: dt.datetime) -> dt.datetime | None:
    """See the module doc; None while the cable is (as far as we know) still in."""
    before = [c for c in statuses if start <= c.at <= stop]
    if before and before[-1].status.strip().lower() == "available":
        return stop
    after = [c for c in statuses if c.at >= stop and c.status.strip().lower() == "available"]
    return after[0].at if after else None


def _zone(name: str | None) -> dt.tzinfo | None:
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _tariff_name(tx: TransactionRecord, in_force: InForce | None, desired: m.DesiredState | None) -> str | None:
    prices = in_force.station(tx.station) if in_force is not None else None
    if prices is not None:
        name = prices.tariff_for(tx.connector_id)
        if name:
            return name
    if tx.tariff_version:
        return tx.tariff_version.split("@", 1)[0]
    st = desired.station_for_identity(tx.station) if desired is not None else None
    if desired is None or st is None:
        return None
    eff = effective_station(desired, st, None)
    evse = next((e for e in eff.evses if e.id == tx.connector_id), None)
    return (evse.tariff if evse is not None else None) or eff.tariff


async def _none() -> list[StatusChangeRecord]:
    return []


async def price_transaction(store: Store, desired: m.DesiredState | None, tx: TransactionRecord, *,
                            until: dt.datetime | None = None, now: dt.datetime | None = None) -> PricedSession:
    """Price a stopped transaction, or a running one up to `until` (running cost)."""
    anomalies = list(tx.anomalies)
    orphan = tx.status is TransactionStatus.ORPHAN
    received_stop = tx.stopped_at or now or tx.created_at
    if until is not None:
        stop = until
    else:
        parsed_stop = parse_datetime(tx.stop_timestamp)
        if parsed_stop is None:
            anomalies.append("stop time unreadable: the time the stop was received is used")
        stop = parsed_stop or received_stop
    start = parse_datetime(tx.start_timestamp)
    if orphan:
        start = stop
        anomalies.append(ORPHAN_NOTE)
    elif start is None:
        anomalies.append("start time unreadable: the time the start was received is used")
        start = tx.created_at

    since = min(start, tx.created_at) - _STATUS_LOOKBACK
    # the three reads at once (a StopTransaction's answer waits for its record): prices, meter values, statuses
    in_force, meter_values, status_rows = await asyncio.gather(
        in_force_at(store, start), store.list_meter_values(transaction_id=tx.id),
        store.status_history(tx.station, tx.connector_id, since) if tx.connector_id is not None else _none())
    name = _tariff_name(tx, in_force, desired)
    tariff, digest, source = None, None, "none"
    if name and in_force is not None and name in in_force.tariffs:
        tariff, digest, source = in_force.tariffs[name], in_force.tariff_hashes.get(name), "history"
    elif name and desired is not None and name in desired.tariffs:
        tariff, source = desired.tariffs[name], "declared now"
    if in_force is not None and in_force.owner is not None:
        billing, owner_tz, owner_currency = in_force.owner.billing, in_force.owner.timezone, in_force.owner.currency
    elif desired is not None:
        billing, owner_tz, owner_currency = desired.owner.billing, desired.owner.timezone, desired.owner.currency
    else:
        billing, owner_tz, owner_currency = m.Billing(), "UTC", "EUR"
    station = desired.station_for_identity(tx.station) if desired is not None else None
    prices = in_force.station(tx.station) if in_force is not None else None
    tz = (_zone(prices.timezone if prices else None) or _zone(station.timezone if station else None)
          or _zone(owner_tz) or dt.UTC)

    id_tag = tx.id_tag or tx.stop_id_tag
    card = desired.card(id_tag) if desired is not None and id_tag else None
    group = tx.parent_id_tag or (card.group if card is not None else None)
    if in_force is not None:
        groups = in_force.groups_of(group)
    elif desired is not None and id_tag:
        groups = tuple(sorted(set(desired.card_groups.get(id_tag.upper(), ())) | ({group} if group else set())))
    else:
        groups = (group,) if group else ()

    samples = [sampled(s) for s in meter_values]
    evse = next((e for e in station.evses if e.id == tx.connector_id), None) if station is not None else None
    energy = session_energy(start=start, stop=stop, meter_start=None if orphan else tx.meter_start,
                            meter_stop=None if until is not None else tx.meter_stop, samples=samples,
                            max_power_kw=evse_max_power_kw(evse) if evse is not None else None)
    power, power_notes = power_readings(samples)
    statuses = status_timeline(status_rows) if tx.connector_id is not None else ()
    plug_out = None if until is not None else plug_out_time(statuses, start, stop)
    act = activity(start, stop, statuses, power)
    state = IDLE if act.charging_end < act.stop else CHARGING

    gathered = (*anomalies, *(() if until is not None else energy.anomalies), *power_notes)
    breakdown = None
    if tariff is not None and not orphan:
        facts = SessionFacts(start=start, stop=stop, groups=groups, readings=energy.readings, statuses=statuses,
                             power=power, plug_out=plug_out, anomalies=gathered)
        breakdown = price_session(tariff, billing, facts, tz)
    return PricedSession(
        transaction=tx, start=start, stop=stop, in_force=in_force, tariff_name=name, tariff=tariff,
        tariff_hash=digest, tariff_source=source, billing=billing,
        currency=tariff.currency if tariff is not None else owner_currency,
        driver_id=card.driver if card is not None else None,
        card=mask_id_tag(id_tag) if id_tag else None, group=group, groups=groups, energy=energy,
        plug_out=plug_out, state=state, breakdown=breakdown,
        anomalies=breakdown.anomalies if breakdown is not None else tuple(dict.fromkeys(gathered)))
