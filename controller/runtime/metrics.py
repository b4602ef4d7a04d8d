"""Prometheus metrics: a tiny registry rendered in the text exposition format 0.0.4.

Role: the controller's counters, gauges and histograms (connections, messages, plans applied, store
size, …) and their text form for a Prometheus scrape, served by `metrics_route` on the controller's
HTTP server. Boundary: numbers and how they are written; what is measured is decided by the modules
that own the numbers. There is no global default registry: a `Registry` is created by whoever wires
the controller and injected, so each test gets a fresh one.

- `Counter` (``inc``), `Gauge` (``set`` / ``inc`` / ``dec``, ``set_function`` for a value read at
  scrape time, ``set_collector`` for a labelled family computed at scrape time) and `Histogram`
  (``observe``, ``time()``; cumulative ``_bucket`` with ``le``, ``_sum``, ``_count``).
- A family with label names is used through ``.labels(...)``; one without, directly.
- Output: ``# HELP`` and ``# TYPE`` per family, families sorted by name, samples by label values; label
  values escaped (backslash, double quote, newline); values as Prometheus parses them (``+Inf``,
  ``-Inf``, ``NaN``; integral values without a fraction). A scrape-time callback that fails is logged
  and its samples are left out; the rest of the scrape is served.
- Updates are thread-safe (the store's writer thread reports from outside the event loop).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import ClassVar, Generic, TypeVar

from controller.runtime.http import Request, Response, Route

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelValues = tuple[str, ...]
Sample = tuple[str, tuple[tuple[str, str], ...], float]  # name suffix, labels, value


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


# ------------------------------------------------------------------------------------------- children


class CounterChild:
    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        return self._value


class GaugeChild:
    __slots__ = ("_function", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self._function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value -= amount

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the value from ``function`` at every scrape instead of the stored one."""
        self._function = function

    @property
    def value(self) -> float:
        return float(self._function()) if self._function is not None else self._value


class HistogramChild:
    __slots__ = ("_bounds", "_counts", "_lock", "_sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._lock = threading.Lock()
        self._bounds = bounds  # ends with +Inf
        self._counts = [0] * len(bounds)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self._bounds, value) if value == value else -1  # NaN: counted, in +Inf only
        with self._lock:
            self._sum += value
            self._counts[index] += 1

    @contextlib.contextmanager
    def time(self) -> Iterator[None]:
        """Observe the duration of the ``with`` block, in seconds."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(time.perf_counter() - started)

    def snapshot(self) -> tuple[list[tuple[float, int]], float, int]:
        """Cumulative (upper bound, count) pairs, the sum and the count."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for bound, count in zip(self._bounds, counts):
            running += count
            cumulative.append((bound, running))
        return cumulative, total, running


# ------------------------------------------------------------------------------------------- families

ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


class _Family(Generic[ChildT]):
    kind: ClassVar[str]
    reserved_labels: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid metric name")
        for label in labelnames:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__") or label in self.reserved_labels:
                raise ValueError(f"metric {name}: {label!r} is not a valid label name")
        if len(set(labelnames)) != len(labelnames):
            raise ValueError(f"metric {name}: label names repeat")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._children: dict[LabelValues, ChildT] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> ChildT:
        raise NotImplementedError

    def sample_names(self) -> tuple[str, ...]:
        return (self.name,)

    def labels(self, *values: object, **named: object) -> ChildT:
        """The child for one combination of label values (created on first use), by position or name."""
        if not self.labelnames:
            raise ValueError(f"metric {self.name} has no labels")
        if values and named:
            raise ValueError("give label values by position or by name, not both")
        if named:
            if set(named) != set(self.labelnames):
                raise ValueError(f"metric {self.name} takes labels {', '.join(self.labelnames)}")
            values = tuple(named[label] for label in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(f"metric {self.name} takes labels {', '.join(self.labelnames)}")
        key = tuple(str(value) for value in values)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self._new_child()
            return child

    def remove(self, *values: object) -> None:
        """Forget one combination of label values (e.g. a station removed from the repository)."""
        with self._lock:
            self._children.pop(tuple(str(value) for value in values), None)

    def child(self) -> ChildT:
        """The one child of a family without labels (to keep where it is updated often)."""
        return self._only()

    def _only(self) -> ChildT:
        if self.labelnames:
            raise ValueError(f"metric {self.name} has labels: use .labels(...)")
        return self._children[()]

    def _items(self) -> list[tuple[LabelValues, ChildT]]:
        with self._lock:
            return sorted(self._children.items())

    def _labels(self, key: LabelValues) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.labelnames, key))

    def samples(self) -> list[Sample]:
        raise NotImplementedError


class Counter(_Family[CounterChild]):
    """Goes only up. Name it ``…_total`` by convention."""

    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    @property
    def value(self) -> float:
        return self._only().value

    def samples(self) -> list[Sample]:
        return [("", self._labels(key), child.value) for key, child in self._items()]


class Gauge(_Family[GaugeChild]):
    kind = "gauge"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help, labelnames)
        self._collector: Callable[[], Mapping[LabelValues | str, float]] | None = None

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)

    def set_function(self, function: Callable[[], float]) -> None:
        self._only().set_function(function)

    def set_collector(self, collector: Callable[[], Mapping[LabelValues | str, float]]) -> None:
        """Compute the whole labelled family at scrape time: ``collector`` maps label values (a tuple in
        label-name order, or a string for a single label) to values; children set otherwise are ignored."""
        if not self.labelnames:
            raise ValueError(f"metric {self.name} has no labels: use set_function")
        self._collector = collector

    @property
    def value(self) -> float:
        return self._only().value

    def samples(self) -> list[Sample]:
        if self._collector is None:
            return [("", self._labels(key), child.value) for key, child in self._items()]
        collected: list[Sample] = []
        for key, value in self._collector().items():
            values = (key,) if isinstance(key, str) else tuple(str(part) for part in key)
            if len(values) != len(self.labelnames):
                raise ValueError(f"metric {self.name}: collector gave {values!r} for {self.labelnames!r}")
            collected.append(("", self._labels(values), float(value)))
        return sorted(collected)


class Histogram(_Family[HistogramChild]):
    kind = "histogram"
    reserved_labels = frozenset({"le"})

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = [float(bound) for bound in buckets if not math.isinf(bound)]
        if not bounds or any(a >= b for a, b in itertools.pairwise(bounds)) or any(map(math.isnan, bounds)):
            raise ValueError(f"metric {name}: buckets must be increasing and not empty")
        self._bounds = (*bounds, math.inf)
        super().__init__(name, help, labelnames)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self._bounds)

    def sample_names(self) -> tuple[str, ...]:
        return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")

    def observe(self, value: float) -> None:
        self._only().observe(value)

    def time(self) -> contextlib.AbstractContextManager[None]:
        return self._only().time()

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        for key, child in self._items():
            labels = self._labels(key)
            buckets, total, count = child.snapshot()
            out += [("_bucket", (*labels, ("le", format_value(bound))), float(n)) for bound, n in buckets]
            out += [("_sum", labels, total), ("_count", labels, float(count))]
        return out


# ------------------------------------------------------------------------------------------- registry

Metric = Counter | Gauge | Histogram
MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


class Registry:
    """The metric families of one controller, rendered together."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, Metric] = {}
        self._names: set[str] = set()

    def register(self, metric: MetricT) -> MetricT:
        with self._lock:
            names = {metric.name, *metric.sample_names()}
            if names & self._names:
                raise ValueError(f"metric {metric.name} is already registered (or clashes with one)")
            self._names |= names
            self._families[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, help, labelnames))

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labelnames))

    def histogram(self, name: str, help: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        return self.register(Histogram(name, help, labelnames, buckets))

    def render(self) -> str:
        with self._lock:
            families = sorted(self._families.values(), key=lambda family: family.name)
        lines: list[str] = []
        for family in families:
            lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            try:
                samples = family.samples()
            except Exception:
                log.exception("metric %s could not be collected; left out of this scrape", family.name)
                continue
            for suffix, labels, value in samples:
                label_text = ",".join(f'{name}="{_escape_label(text)}"' for name, text in labels)
                braces = f"{{{label_text}}}" if label_text else ""
                lines.append(f"{family.name}{suffix}{braces} {format_value(value)}")
        return "\n".join(lines) + "\n" if lines else ""


def metrics_route(registry: Registry, path: str = "/metrics") -> Route:
    """``GET /metrics`` (HEAD too) answering the registry in the text format 0.0.4."""

    async def metrics(_request: Request) -> Response:
        return Response(200, {"Content-Type": CONTENT_TYPE}, registry.render().encode())

    return Route("GET", path, metrics)
