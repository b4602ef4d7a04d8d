"""The Prometheus registry: golden text in the exposition format 0.0.4, a line-by-line format check, and
``GET /metrics`` on a real server."""

from __future__ import annotations

import asyncio
import http.client
import logging
import math
import re
import threading

import pytest

from controller.runtime.http import HttpServer
from controller.runtime.metrics import CONTENT_TYPE, Counter, Gauge, Histogram, Registry, format_value, metrics_route

# A sample line: name, optional {label="value",...} with escaped values, a value Prometheus parses.
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(rf"[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{{{_LABEL}(?:,{_LABEL})*\}})? "
                    r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?)|\+Inf|-Inf|NaN)")
COMMENT = re.compile(r"# (?:HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                     r"(?:counter|gauge|histogram|summary|untyped))")


def fleet_registry() -> Registry:
    registry = Registry()
    messages = registry.counter("chargeops_ocpp_messages_total", "OCPP messages received.", ["action"])
    messages.labels(action="StatusNotification").inc(3)
    messages.labels("BootNotification").inc()
    registry.gauge("chargeops_stations_connected", "Stations with an open websocket.").set(2)
    health = registry.gauge("chargeops_stations", "Stations by health.", ["health"])
    health.set_collector(lambda: {"Offline": 1, ("Healthy",): 4})
    registry.gauge("chargeops_store_bytes", "Size of the store.").set_function(lambda: 1536.0)
    applied = registry.histogram("chargeops_plan_apply_seconds", "Time to apply a plan.", ["phase"],
                                 buckets=[0.1, 1, 10])
    for value in (0.05, 0.5, 0.5, 20):
        applied.labels(phase="data").observe(value)
    registry.counter("chargeops_http_errors_total", 'Errors by "path".\nSecond line \\ here.',
                     ["path"]).labels(path='/a"b\\c\nd').inc()
    return registry


GOLDEN = """\
# HELP chargeops_http_errors_total Errors by "path".\\nSecond line \\\\ here.
# TYPE chargeops_http_errors_total counter
chargeops_http_errors_total{path="/a\\"b\\\\c\\nd"} 1
# HELP chargeops_ocpp_messages_total OCPP messages received.
# TYPE chargeops_ocpp_messages_total counter
chargeops_ocpp_messages_total{action="BootNotification"} 1
chargeops_ocpp_messages_total{action="StatusNotification"} 3
# HELP chargeops_plan_apply_seconds Time to apply a plan.
# TYPE chargeops_plan_apply_seconds histogram
chargeops_plan_apply_seconds_bucket{phase="data",le="0.1"} 1
chargeops_plan_apply_seconds_bucket{phase="data",le="1"} 3
chargeops_plan_apply_seconds_bucket{phase="data",le="10"} 3
chargeops_plan_apply_seconds_bucket{phase="data",le="+Inf"} 4
chargeops_plan_apply_seconds_sum{phase="data"} 21.05
chargeops_plan_apply_seconds_count{phase="data"} 4
# HELP chargeops_stations Stations by health.
# TYPE chargeops_stations gauge
chargeops_stations{health="Healthy"} 4
chargeops_stations{health="Offline"} 1
# HELP chargeops_stations_connected Stations with an open websocket.
# TYPE chargeops_stations_connected gauge
chargeops_stations_connected 2
# HELP chargeops_store_bytes Size of the store.
# TYPE chargeops_store_bytes gauge
chargeops_store_bytes 1536
"""


def test_the_registry_renders_the_golden_text() -> None:
    assert fleet_registry().render() == GOLDEN


def test_every_rendered_line_is_a_valid_comment_or_sample() -> None:
    registry = fleet_registry()
    odd = registry.gauge("odd_values", "Edge values.", ["kind"])
    for kind, value in (("inf", math.inf), ("ninf", -math.inf), ("nan", math.nan), ("tiny", 1e-9),
                        ("big", 1e20), ("neg", -2.5)):
        odd.labels(kind=kind).set(value)
    text = registry.render()
    assert text.endswith("\n")
    for line in text.splitlines():
        assert COMMENT.fullmatch(line) or SAMPLE.fullmatch(line), line


def test_values_are_written_as_prometheus_reads_them() -> None:
    assert [format_value(v) for v in (3.0, 0.25, -0.0, math.inf, -math.inf, math.nan, 1e20, 1e-9)] == [
        "3", "0.25", "0", "+Inf", "-Inf", "NaN", "1e+20", "1e-09"]


def test_gauges_go_both_ways_and_a_callback_is_read_at_every_scrape() -> None:
    registry = Registry()
    queue = registry.gauge("queue_depth", "Stations waiting.")
    queue.inc(5)
    queue.dec(2)
    assert queue.value == 3
    calls: list[int] = []
    tasks = registry.gauge("tasks", "Running tasks.", ["kind"])
    tasks.labels(kind="worker").set_function(lambda: float(len(calls)))
    calls.append(1)
    assert "tasks{kind=\"worker\"} 1\n" in registry.render()
    calls.append(2)
    assert "tasks{kind=\"worker\"} 2\n" in registry.render()


def test_a_failing_callback_leaves_its_samples_out_and_the_rest_is_served(caplog: pytest.LogCaptureFixture) -> None:
    registry = Registry()
    registry.gauge("broken", "Raises.").set_function(lambda: 1 / 0)
    registry.counter("fine_total", "Works.").inc()
    with caplog.at_level(logging.ERROR):
        text = registry.render()
    assert "\nbroken " not in text and "fine_total 1\n" in text and "# TYPE broken gauge" in text
    assert any("broken" in record.getMessage() for record in caplog.records)


def test_a_histogram_times_a_block_and_counts_nan_only_in_inf() -> None:
    hist = Histogram("apply_seconds", "Apply time.", buckets=[1.0])
    with hist.time():
        pass
    hist.observe(math.nan)
    buckets = [s for s in hist.samples() if s[0] == "_bucket"]
    assert [(s[1], s[2]) for s in buckets] == [((("le", "1"),), 1.0), ((("le", "+Inf"),), 2.0)]


def test_updates_from_several_threads_are_not_lost() -> None:
    counter = Counter("writes_total", "Writes.")

    def work() -> None:
        for _ in range(10_000):
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value == 40_000


def test_removed_label_values_are_no_longer_rendered() -> None:
    registry = Registry()
    online = registry.gauge("station_online", "1 when connected.", ["station"])
    online.labels("st-1").set(1)
    online.labels("st-2").set(1)
    online.remove("st-1")
    assert 'station="st-1"' not in registry.render()


@pytest.mark.parametrize("build", [
    lambda: Counter("bad name", "x"),
    lambda: Counter("ok_total", "x", ["__reserved"]),
    lambda: Counter("ok_total", "x", ["a", "a"]),
    lambda: Histogram("h", "x", ["le"]),
    lambda: Histogram("h", "x", buckets=[2, 1]),
    lambda: Histogram("h", "x", buckets=[]),
    lambda: Counter("c_total", "x").inc(-1),
    lambda: Counter("c_total", "x", ["a"]).inc(),
    lambda: Counter("c_total", "x", ["a"]).labels(b="1"),
    lambda: Counter("c_total", "x").labels(a="1"),
    lambda: Gauge("g", "x").set_collector(dict),
])
def test_invalid_names_labels_buckets_and_uses_are_refused(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):
        build()


def test_a_name_can_be_registered_once_including_a_histograms_series() -> None:
    registry = Registry()
    registry.histogram("latency", "x")
    with pytest.raises(ValueError):
        registry.counter("latency", "again")
    with pytest.raises(ValueError):
        registry.gauge("latency_count", "clashes with the histogram's count")


def test_the_metrics_route_serves_the_registry_over_http() -> None:
    registry = fleet_registry()

    async def scenario() -> tuple[int, str | None, str, int]:
        server = HttpServer([metrics_route(registry)])
        await server.start()
        try:
            def scrape() -> tuple[int, str | None, str, int]:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=3)
                try:
                    conn.request("GET", "/metrics")
                    response = conn.getresponse()
                    body = response.read().decode()
                    conn.request("HEAD", "/metrics")
                    head = conn.getresponse()
                    head.read()
                    return response.status, response.getheader("Content-Type"), body, head.status
                finally:
                    conn.close()

            return await asyncio.to_thread(scrape)
        finally:
            await server.stop()

    status, content_type, body, head_status = asyncio.run(scenario())
    assert (status, content_type, body, head_status) == (200, CONTENT_TYPE, GOLDEN, 200)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
