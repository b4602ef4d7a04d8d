"""Lenient parsing of transaction messages (StartTransaction, StopTransaction, MeterValues).

Transaction messages are never refused for their content (a CALLERROR makes the charger drop them after
its retries and the session is lost), so parsing here never raises: whatever is usable is taken, and
whatever is odd becomes an anomaly flag that puts the record under review. Numbers may come as
strings, timestamps in several ISO-8601 shapes, fields may be missing or extra.

Re-sent messages may carry a new message id, so duplicates are recognised by content: the dedup key of
a start is (station, connector, idTag upper-case, meterStart, timestamp); of a stop, (transaction id).

Boundary: pure; payload dicts in, typed records out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

FUTURE_TOLERANCE = dt.timedelta(minutes=10)


def parse_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            return None
        if d == d.to_integral_value():
            return int(d)
    return None


def parse_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def parse_time(value: Any) -> dt.datetime | None:
    """ISO-8601 timestamp -> aware UTC datetime; a naive timestamp is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


@dataclasses.dataclass(frozen=True, slots=True)
class StartTx:
    connector_id: int
    id_tag: str
    meter_start: int | None
    timestamp: dt.datetime | None
    reservation_id: int | None
    anomalies: tuple[str, ...]

    def dedup_key(self, station: str) -> str:
        ts = self.timestamp.isoformat() if self.timestamp else "?"
        return f"{station}|{self.connector_id}|{self.id_tag.upper()}|{self.meter_start}|{ts}"


@dataclasses.dataclass(frozen=True, slots=True)
class SampledValue:
    timestamp: dt.datetime | None
    value: Decimal | None
    raw_value: str
    measurand: str
    unit: str
    phase: str | None
    context: str | None
    location: str | None
    signed: bool  # format SignedData: kept verbatim, not interpreted


@dataclasses.dataclass(frozen=True, slots=True)
class StopTx:
    transaction_id: int | None
    id_tag: str | None
    meter_stop: int | None
    timestamp: dt.datetime | None
    reason: str | None
    samples: tuple[SampledValue, ...]
    anomalies: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class MeterValuesMsg:
    connector_id: int | None
    transaction_id: int | None
    samples: tuple[SampledValue, ...]
    anomalies: tuple[str, ...]


def _check_time(t: dt.datetime | None, now: dt.datetime, field: str, out: list[str]) -> None:
    if t is None:
        out.append(f"{field} missing or unreadable")
    elif t > now + FUTURE_TOLERANCE:
        out.append(f"{field} is in the future (charger clock?)")


def parse_start(payload: Mapping[str, Any], now: dt.datetime) -> StartTx:
    anomalies: list[str] = []
    connector = parse_int(payload.get("connectorId"))
    if connector is None or connector < 0:
        anomalies.append("connectorId missing or invalid")
        connector = 0
    id_tag = _text(payload.get("idTag")) or ""
    if not id_tag:
        anomalies.append("idTag missing")
    meter = parse_int(payload.get("meterStart"))
    if meter is None:
        anomalies.append("meterStart missing or not a whole number of Wh")
    elif meter < 0:
        anomalies.append("meterStart is negative")
    ts = parse_time(payload.get("timestamp"))
    _check_time(ts, now, "timestamp", anomalies)
    res = parse_int(payload.get("reservationId")) if payload.get("reservationId") is not None else None
    extra = set(payload) - {"connectorId", "idTag", "meterStart", "timestamp", "reservationId"}
    if extra:
        anomalies.append("extra fields: " + ", ".join(sorted(extra)))
    return StartTx(connector, id_tag, meter, ts, res, tuple(anomalies))


def parse_samples(items: Any, anomalies: list[str]) -> list[SampledValue]:
    out: list[SampledValue] = []
    if not isinstance(items, list):
        if items is not None:
            anomalies.append("meterValue is not a list")
        return out
    for mv in items:
        if not isinstance(mv, Mapping):
            anomalies.append("meterValue entry is not an object")
            continue
        ts = parse_time(mv.get("timestamp"))
        svs = mv.get("sampledValue")
        if not isinstance(svs, list):
            anomalies.append("sampledValue missing")
            continue
        for sv in svs:
            if not isinstance(sv, Mapping):
                continue
            raw = _text(sv.get("value")) or ""
            signed = sv.get("format") == "SignedData"
            value = None if signed else parse_decimal(raw)
            if value is None and not signed:
                anomalies.append(f"unreadable sampled value {raw[:20]!r}")
            out.append(SampledValue(
                timestamp=ts, value=value, raw_value=raw,
                measurand=_text(sv.get("measurand")) or "Energy.Active.Import.Register",
                unit=_text(sv.get("unit")) or "Wh", phase=_text(sv.get("phase")),
                context=_text(sv.get("context")), location=_text(sv.get("location")), signed=signed,
            ))
    return out


def parse_stop(payload: Mapping[str, Any], now: dt.datetime) -> StopTx:
    anomalies: list[str] = []
    tx = parse_int(payload.get("transactionId"))
    if tx is None:
        anomalies.append("transactionId missing or invalid")
    meter = parse_int(payload.get("meterStop"))
    if meter is None:
        anomalies.append("meterStop missing or not a whole number of Wh")
    ts = parse_time(payload.get("timestamp"))
    _check_time(ts, now, "timestamp", anomalies)
    samples = parse_samples(payload.get("transactionData"), anomalies)
    extra = set(payload) - {"transactionId", "idTag", "meterStop", "timestamp", "reason", "transactionData"}
    if extra:
        anomalies.append("extra fields: " + ", ".join(sorted(extra)))
    return StopTx(tx, _text(payload.get("idTag")), meter, ts, _text(payload.get("reason")), tuple(samples),
                  tuple(anomalies))


def parse_meter_values(payload: Mapping[str, Any]) -> MeterValuesMsg:
    anomalies: list[str] = []
    samples = parse_samples(payload.get("meterValue"), anomalies)
    tx = payload.get("transactionId")
    return MeterValuesMsg(parse_int(payload.get("connectorId")), parse_int(tx) if tx is not None else None,
                          tuple(samples), tuple(anomalies))
