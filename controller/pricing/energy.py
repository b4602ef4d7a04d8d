"""Session energy: meterStop − meterStart when plausible, otherwise the meter values; never invented.

Role: turn what a charger reported about its energy register into the Wh a session is billed for, and
the cleaned register timeline (`Reading`s) the engine splits at tariff-window boundaries.

Rules (DESIGN.md §3):
- meterStop − meterStart is used when plausible: 0 <= delta <= max power x duration x 1.1, where max
  power is the strongest plug of the EVSE (`evse_max_power_kw`). Without a known max power only the sign
  (and a zero-length session delivering nothing) is checked. The timeline is then meterStart at the
  start, the meter values between that fit both ends, and meterStop at the stop.
- Otherwise the `Energy.Active.Import.Register` samples (meterStart / meterStop join them as two more
  readings): units Wh or kWh (any case), decimal strings, signed and unreadable values skipped. Phases:
  the total (no phase) readings; only when a session has none, the sum of L1/L2/L3 at the timestamps
  that report every phase seen. Samples are sorted by timestamp. The timeline kept is the longest run of
  readings that never goes down and never rises faster than max power x 1.1 (plus the register's
  resolution, e.g. 100 Wh for "12.3" kWh); every other reading is flagged as non-monotonic or
  implausible. Energy = the register at stop − the register at start on that timeline (`energy_at`).
- An anomaly never yields a negative or invented amount: with fewer than two usable readings the
  energy is 0 Wh, and every anomaly puts the record under review.

`energy_at` is the one interpolation rule the engine uses too: between two readings the register rises
linearly (constant power, the best estimate without more samples); before the first reading it reads
as the first, after the last as the last (no extrapolation). Interpolated values are kept to 0.001 Wh.

Every instant is handled in UTC (elapsed time, not wall-clock time).

Boundary: pure; parsed samples (`controller.transactions.SampledValue`) in, `Decimal` Wh out.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

from controller.config import model as m
from controller.transactions import SampledValue

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_ACTIVE_IMPORT = "Power.Active.Import"
PLAUSIBILITY_MARGIN = Decimal("1.1")
_ENERGY_UNITS = {"WH": Decimal(1), "KWH": Decimal(1000)}
_POWER_UNITS = {"W": Decimal(1), "KW": Decimal(1000)}
_MWH = Decimal("0.001")
_US_PER_HOUR = Decimal(3_600_000_000)
_LOOKBACK = 256  # a run may skip at most this many bad readings in a row (keeps the search O(n))
_LISTED = 3  # readings named in one anomaly message


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """The energy register at an instant, in Wh."""

    at: dt.datetime
    wh: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class PowerReading:
    """Active power drawn at an instant, in W (in force until the next reading)."""

    at: dt.datetime
    w: Decimal


@dataclasses.dataclass(frozen=True, slots=True)
class EnergyResult:
    """Energy delivered in a session; `source` is "meter_stop", "meter_values" or "none"."""

    wh: Decimal
    source: str
    anomalies: tuple[str, ...]
    readings: tuple[Reading, ...]

    @property
    def under_review(self) -> bool:
        return bool(self.anomalies)


@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    at: dt.datetime
    wh: Decimal
    slack: Decimal  # the register's resolution in Wh (0 for meterStart / meterStop)


def micros(d: dt.timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def hours(d: dt.timedelta) -> Decimal:
    return Decimal(micros(d)) / _US_PER_HOUR


def evse_max_power_kw(evse: m.Evse) -> Decimal | None:
    """The strongest plug's power (declared, or voltage x amperage x phases); None when unknown."""
    powers = [p.power_kw for p in evse.plugs if p.power_kw > 0]
    return max(powers) if powers else None


def max_energy_wh(max_power_kw: Decimal | None, duration: dt.timedelta) -> Decimal | None:
    """The most energy plausible in `duration`: max power x duration x 1.1; None without a known power."""
    if max_power_kw is None or max_power_kw <= 0:
        return None
    return max_power_kw * 1000 * hours(duration) * PLAUSIBILITY_MARGIN


def utc(t: dt.datetime) -> dt.datetime:
    """`t` in UTC: subtracting two instants that share a ZoneInfo gives wall-clock, not elapsed, time."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"timezone-aware instant needed, got {t!r}")
    return t.astimezone(dt.UTC)


def energy_at(readings: Sequence[Reading], at: dt.datetime) -> Decimal:
    """The register at `at` on a clean timeline (times rising, Wh never falling); see the module doc."""
    at = utc(at)
    if not readings:
        return Decimal(0)
    if at <= readings[0].at:
        return readings[0].wh
    if at >= readings[-1].at:
        return readings[-1].wh
    k = bisect.bisect_right(readings, at, key=lambda r: r.at)
    a, b = readings[k - 1], readings[k]
    if at == a.at:
        return a.wh
    frac = Decimal(micros(at - a.at)) / Decimal(micros(b.at - a.at))
    value = (a.wh + (b.wh - a.wh) * frac).quantize(_MWH, ROUND_HALF_EVEN)
    return min(max(value, a.wh), b.wh)


def energy_between(readings: Sequence[Reading], start: dt.datetime, end: dt.datetime) -> Decimal:
    """Wh delivered in [start, end) on a clean timeline; never negative."""
    if end <= start:
        return Decimal(0)
    return max(Decimal(0), energy_at(readings, end) - energy_at(readings, start))


def _phase(raw: str | None) -> str | None:
    """None for a total reading, "L1" / "L2" / "L3" for a phase, "" for anything else (N, L1-L2)."""
    if raw is None or not raw.strip():
        return None
    p = raw.strip().upper()
    if p in ("L1", "L2", "L3", "L1-N", "L2-N", "L3-N"):
        return p[:2]
    return ""


def _quantum(value: Decimal) -> Decimal:
    exp = value.as_tuple().exponent
    return Decimal(1).scaleb(exp) if isinstance(exp, int) else Decimal(0)


def _series(samples: Iterable[SampledValue], measurand: str, units: dict[str, Decimal], label: str,
            anomalies: list[str]) -> list[tuple[dt.datetime, Decimal, Decimal]]:
    """(time, value, resolution) of one measurand, in Wh or W, sorted; totals, else per-phase sums."""
    totals: dict[dt.datetime, set[tuple[Decimal, Decimal]]] = {}
    phases: dict[dt.datetime, dict[str, set[tuple[Decimal, Decimal]]]] = {}
    odd_units: set[str] = set()
    untimed = 0
    for s in samples:
        if s.measurand.strip().lower() != measurand.lower() or s.signed or s.value is None:
            continue
        factor = units.get(s.unit.strip().upper())
        if factor is None:
            odd_units.add(s.unit)
            continue
        if s.timestamp is None:
            untimed += 1
            continue
        item = (s.value * factor, _quantum(s.value) * factor)
        phase, ts = _phase(s.phase), utc(s.timestamp)
        if phase is None:
            totals.setdefault(ts, set()).add(item)
        elif phase:
            phases.setdefault(ts, {}).setdefault(phase, set()).add(item)
    if odd_units:
        anomalies.append(f"{label} samples in unit {', '.join(sorted(odd_units))} ignored")
    if untimed:
        anomalies.append(f"{untimed} {label} sample(s) without a timestamp ignored")
    if totals:
        return sorted((t, v, q) for t, items in totals.items() for v, q in items)
    seen: set[str] = set().union(*phases.values()) if phases else set()
    out: list[tuple[dt.datetime, Decimal, Decimal]] = []
    partial = 0
    for t, per in sorted(phases.items()):
        if set(per) != seen or any(len(items) != 1 for items in per.values()):
            partial += 1
            continue
        items = [next(iter(v)) for v in per.values()]
        out.append((t, sum((v for v, _ in items), Decimal(0)), max(q for _, q in items)))
    if partial:
        anomalies.append(f"{partial} {label} reading(s) with missing or conflicting phases ignored")
    return out


def _fits(a: _Point, b: _Point, max_power_kw: Decimal | None) -> bool:
    """b can follow a: later, not lower, and not faster than the EVSE can deliver."""
    if b.at <= a.at or b.wh < a.wh:
        return False
    cap = max_energy_wh(max_power_kw, b.at - a.at)
    return cap is None or b.wh - a.wh <= cap + max(a.slack, b.slack)


def _longest_run(points: Sequence[_Point], max_power_kw: Decimal | None) -> list[int]:
    """Indices of the longest run in which each reading can follow the one before.

    Longest path over "can follow" (dynamic programming, predecessors searched nearest first and no further
    than `_LOOKBACK` back, stopping as soon as no earlier reading can lengthen the run: linear on a clean
    timeline). Ties: the run that ends first, then the nearest predecessor.
    """
    n = len(points)
    length = [1] * n
    prev = [-1] * n
    best_upto = [0] * n  # the longest run ending at or before i
    for j in range(n):
        for i in range(j - 1, max(-1, j - 1 - _LOOKBACK), -1):
            if best_upto[i] + 1 <= length[j]:
                break
            if length[i] + 1 > length[j] and _fits(points[i], points[j], max_power_kw):
                length[j], prev[j] = length[i] + 1, i
        best_upto[j] = max(best_upto[j - 1] if j else 0, length[j])
    if n == 0:
        return []
    j = max(range(n), key=lambda k: length[k])
    run = []
    while j >= 0:
        run.append(j)
        j = prev[j]
    return run[::-1]


def _others(points: Sequence[_Point], chosen: Iterable[int]) -> list[_Point]:
    taken = set(chosen)
    return [p for i, p in enumerate(points) if i not in taken]


def _flag_dropped(dropped: Sequence[_Point], kept: Sequence[_Point], anomalies: list[str]) -> None:
    kept_at = [p.at for p in kept]
    same = {(p.at, p.wh) for p in kept}
    falling: list[_Point] = []
    too_fast: list[_Point] = []
    for p in dropped:
        if (p.at, p.wh) in same:
            continue  # a repeat of a reading that is kept
        k = bisect.bisect_right(kept_at, p.at)
        before = kept[k - 1] if k > 0 else None
        after = kept[k] if k < len(kept) else None
        if (before is not None and p.wh < before.wh) or (after is not None and p.wh > after.wh):
            falling.append(p)
        else:
            too_fast.append(p)
    for found, what in ((falling, "non-monotonic"), (too_fast, "implausible (faster than the EVSE's power)")):
        if found:
            named = ", ".join(f"{p.wh} Wh at {p.at.isoformat()}" for p in found[:_LISTED])
            more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
            anomalies.append(f"{len(found)} {what} meter reading(s) ignored: {named}{more}")


def _implausible(delta: Decimal, duration: dt.timedelta, max_power_kw: Decimal | None) -> str | None:
    if delta < 0:
        return "negative"
    if duration <= dt.timedelta(0):
        return None if delta == 0 else "no time to deliver it"
    cap = max_energy_wh(max_power_kw, duration)
    if cap is not None and delta > cap:
        return f"more than {cap.quantize(Decimal(1))} Wh, {max_power_kw} kW + 10 % for {duration}"
    return None


def clean_readings(readings: Iterable[Reading], max_power_kw: Decimal | None = None,
                   ) -> tuple[tuple[Reading, ...], tuple[str, ...]]:
    """A timeline the engine can use (times rising, Wh never falling) and what was dropped from it."""
    points = sorted((_Point(utc(r.at), r.wh, Decimal(0)) for r in readings), key=lambda p: (p.at, p.wh))
    keep = _longest_run(points, max_power_kw)
    kept = [points[i] for i in keep]
    anomalies: list[str] = []
    _flag_dropped(_others(points, keep), kept, anomalies)
    return tuple(Reading(p.at, p.wh) for p in kept), tuple(anomalies)


def session_energy(*, start: dt.datetime, stop: dt.datetime, meter_start: int | Decimal | None,
                   meter_stop: int | Decimal | None, samples: Iterable[SampledValue] = (),
                   max_power_kw: Decimal | None = None) -> EnergyResult:
    """The energy of one session (see the module doc); `samples` are its MeterValues and transactionData."""
    anomalies: list[str] = []
    start, stop = utc(start), utc(stop)
    duration = stop - start
    if duration < dt.timedelta(0):
        anomalies.append("stop is before start (charger clock?)")
    points = [_Point(t, v, q) for t, v, q in _series(samples, ENERGY_REGISTER, _ENERGY_UNITS,
                                                        "energy register", anomalies)]
    first = _Point(start, Decimal(meter_start), Decimal(0)) if meter_start is not None else None
    last = _Point(stop, Decimal(meter_stop), Decimal(0)) if meter_stop is not None else None
    if first is not None and last is not None:
        delta = last.wh - first.wh
        why = _implausible(delta, duration, max_power_kw)
        if why is None:
            if duration <= dt.timedelta(0):
                return EnergyResult(delta, "meter_stop", tuple(anomalies), (Reading(start, first.wh),))
            inner = [p for p in points if start < p.at < stop]
            fitting = [i for i, p in enumerate(inner) if _fits(first, p, max_power_kw) and _fits(p, last, max_power_kw)]
            chosen = [fitting[k] for k in _longest_run([inner[i] for i in fitting], max_power_kw)]
            kept = [first, *(inner[i] for i in chosen), last]
            _flag_dropped(_others(inner, chosen), kept, anomalies)
            return EnergyResult(delta, "meter_stop", tuple(anomalies), tuple(Reading(p.at, p.wh) for p in kept))
        anomalies.append(f"meterStop − meterStart = {delta} Wh is implausible ({why}); "
                         "energy taken from the meter values")
    else:
        anomalies.append("meterStart or meterStop missing; energy taken from the meter values")
    anchors = [p for p in (first, last) if p is not None]
    candidates = sorted([*points, *anchors], key=lambda p: (p.at, p.wh, p.slack))
    chosen = _longest_run(candidates, max_power_kw)
    kept = [candidates[i] for i in chosen]
    _flag_dropped([p for p in _others(candidates, chosen) if p not in anchors], kept, anomalies)
    readings = tuple(Reading(p.at, p.wh) for p in kept)
    if len(readings) < 2:
        anomalies.append("no usable energy readings: energy counted as 0 Wh")
        return EnergyResult(Decimal(0), "none", tuple(anomalies), readings)
    return EnergyResult(energy_between(readings, start, stop), "meter_values", tuple(anomalies), readings)


def power_readings(samples: Iterable[SampledValue]) -> tuple[tuple[PowerReading, ...], tuple[str, ...]]:
    """`Power.Active.Import` samples in W (W or kW; total, else the sum of phases), sorted by time."""
    anomalies: list[str] = []
    by_time: dict[dt.datetime, Decimal] = {}
    for t, w, _ in _series(samples, POWER_ACTIVE_IMPORT, _POWER_UNITS, "power", anomalies):
        by_time[t] = max(by_time.get(t, w), w)
    return tuple(PowerReading(t, w) for t, w in sorted(by_time.items())), tuple(anomalies)
