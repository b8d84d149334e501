"""Prometheus metrics, one registry per app so tests can build several apps in one process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PROMETHEUS_CONTENT_TYPE", "ServiceMetrics"]

# From a fast int8 inference (~1 ms) to a camera that takes seconds to deliver.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Children:
    """A labelled metric's children, found by their label values in a plain dict.

    prometheus_client's `labels()` checks, converts and locks on every call (~2 µs); a reading
    needs six of them. The children are thread-safe and live as long as the metric, so each
    is looked up once; a race between two threads only asks `labels()` twice for the same one.
    """

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._by_values: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._by_values.get(values)
        if child is None:
            child = self._by_values[values] = self._metric.labels(*values)
        return child


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "digits_http_requests",
            "HTTP requests by route template, method and status code",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "digits_http_request_duration_seconds",
            "Time from request to response by route template",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "digits_stage_duration_seconds",
            "Time spent per stage of a reading (capture, preprocess, inference, total)",
            ["stage", "source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.readings = Counter(
            "digits_readings",
            "Readings by the digit read ('none' when no digit was found)",
            ["digit", "source"],
            registry=self.registry,
        )
        self.camera_errors = Counter(
            "digits_camera_errors",
            "Camera failures by kind (open, read, timeout, empty)",
            ["kind"],
            registry=self.registry,
        )
        self.camera_up = Gauge(
            "digits_camera_up",
            "1 when the camera delivered its last frame, 0 when it is failing or absent",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "digits_model_info",
            "The loaded model (always 1; the labels say which)",
            ["name", "sha256", "runtime"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "digits_event_loop_lag_seconds",
            "How late a 0.25 s timer on the event loop fires (a blocked loop shows here)",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.stable_changes = Counter(
            "digits_stable_reading_changes",
            "Changes of the watch loop's stable reading",
            registry=self.registry,
        )
        self.stream_clients = Gauge(
            "digits_stream_clients",
            "Clients connected to /readings/stream",
            registry=self.registry,
        )
        self.stream_dropped = Counter(
            "digits_stream_events_dropped",
            "Events a /readings/stream client did not read in time (its oldest were dropped)",
            registry=self.registry,
        )
        self.mqtt_connected = Gauge(
            "digits_mqtt_connected",
            "1 while connected to the MQTT broker, 0 otherwise",
            registry=self.registry,
        )
        self.mqtt_published = Counter(
            "digits_mqtt_messages_published",
            "MQTT messages handed to the broker connection, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.mqtt_reconnects = Counter(
            "digits_mqtt_reconnects",
            "Connections to the MQTT broker after the first",
            registry=self.registry,
        )
        for kind in ("open", "read", "timeout", "empty"):
            self.camera_errors.labels(kind=kind)
        # Every request and reading updates these: their children are looked up once.
        self._requests = _Children(self.requests)
        self._request_seconds = _Children(self.request_seconds)
        self._stage_seconds = _Children(self.stage_seconds)
        self._readings = _Children(self.readings)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self._requests(endpoint, method, str(status)).inc()
        self._request_seconds(endpoint).observe(seconds)

    def observe_reading(self, source: str, digit: int | None, timings_ms: dict[str, float]) -> None:
        self._readings("none" if digit is None else str(digit), source).inc()
        for stage, ms in timings_ms.items():
            self._stage_seconds(stage, source).observe(ms / 1000.0)

    def count_model_answers(self, digits_answered: Callable[[], dict[str, int]]) -> None:
        """Export `DigitModel.digits_answered` as digits_model_answers_total{by=...}, read when
        scraped: the model counts, so a reading pays nothing more for the metric."""
        self.registry.register(_ModelAnswers(digits_answered))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ModelAnswers(Collector):
    def __init__(self, digits_answered: Callable[[], dict[str, int]]) -> None:
        self._digits_answered = digits_answered

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "digits_model_answers",
            "Digits read, by what answered: the model's first look alone (first_look) or the "
            "whole model (model)",
            labels=["by"],
        )
        for by, count in self._digits_answered().items():
            family.add_metric([by], count)
        yield family
