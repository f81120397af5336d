"""The collector's own counters, on a registry the caller owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.spans_received = Counter(
            "throughline_spans_received",
            "Spans received, by source (otlp_protobuf, otlp_json, sdk)",
            ["source"],
            registry=registry,
        )
        self.spans_stored = Counter(
            "throughline_spans_stored", "Spans written to the store", registry=registry
        )
        self.spans_rejected = Counter(
            "throughline_spans_rejected",
            "Spans or requests refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.sdk_spans_dropped = Counter(
            "throughline_sdk_spans_dropped",
            "In-process spans dropped because the batch processor's queue was full",
            registry=registry,
        )
        self.events_received = Counter(
            "throughline_cloudevents_received",
            "CloudEvents received, by outcome (accepted, rejected)",
            ["outcome"],
            registry=registry,
        )
        self.lifecycle_events = Counter(
            "throughline_lifecycle_events_derived",
            "New lifecycle events stored (duplicates excluded)",
            registry=registry,
        )
        self.write_seconds = Histogram(
            "throughline_store_write_seconds",
            "Time to write one batch (spans and lifecycle events) to the store",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.write_failures = Counter(
            "throughline_store_write_failures",
            "Batches the store refused (the senders got 503 and retry)",
            registry=registry,
        )
        self._registry = registry

    @property
    def registry(self) -> CollectorRegistry:
        return self._registry
