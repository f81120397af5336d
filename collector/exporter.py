"""The in-process path: our own connectors', probes' and workers' spans go from the
OpenTelemetry SDK straight into the store, and optionally on to an external collector.

The SDK's BatchSpanProcessor keeps database commits off the span-ending path (its worker
thread calls `SqlSpanExporter.export`), but when its queue is full it drops spans and
counts nothing; `CountingBatchSpanProcessor` counts every drop into a metric.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import Connection

from collector.metrics import CollectorMetrics
from collector.span_record import SpanRow, make_row
from collector.span_writer import IngestJob, QueueFull, SpanWriter, write_rows

logger = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def row_from_span(span: ReadableSpan) -> SpanRow | None:
    context = span.context
    if context is None or span.start_time is None or span.end_time is None:
        return None
    resource = {k: _plain(v) for k, v in span.resource.attributes.items()}
    return make_row(
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_span_id=format(span.parent.span_id, "016x") if span.parent else None,
        name=span.name,
        service=str(resource.get("service.name", "throughline")),
        kind=span.kind.name.lower(),
        start_unix_nano=span.start_time,
        end_unix_nano=span.end_time,
        status=span.status.status_code.name.lower(),
        status_message=span.status.description,
        attributes={k: _plain(v) for k, v in (span.attributes or {}).items()},
        resource_json=None,
        events=[
            {
                "name": e.name,
                "time_unix_nano": e.timestamp,
                "attributes": {k: _plain(v) for k, v in (e.attributes or {}).items()},
            }
            for e in span.events
        ],
    )


def write_spans(conn: Connection, spans: Sequence[object]) -> None:
    """Store ended spans, and the lifecycle events they imply, in the caller's transaction:
    for a connector whose commit makes a stage final (a message done, a capture cursor
    moved), so the stage is stored with it instead of later by the batch processor, which
    a crash or a full queue would lose. The processor still exports the same spans
    (forwarding them too); the store skips what it already holds.

    In a savepoint: spans the store refuses are left to the exporter (and logged) rather
    than failing the caller's commit, so a span that cannot be stored never stalls a
    capture cursor or an outbox message."""
    rows = [
        row
        for span in spans
        if isinstance(span, ReadableSpan) and (row := row_from_span(span)) is not None
    ]
    if not rows:
        return
    try:
        with conn.begin_nested():
            write_rows(conn, rows, dt.datetime.now(dt.UTC))
    except Exception:
        logger.exception(
            "storing %d spans with their commit failed; they reach the store through the exporter",
            len(rows),
        )


class SqlSpanExporter(SpanExporter):
    """Writes finished spans to the store through the collector's writer; reports failure
    as a result value, never by raising into the SDK."""

    def __init__(self, writer: SpanWriter, metrics: CollectorMetrics, timeout: float = 30.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._writer = writer
        self._metrics = metrics
        self._timeout = timeout

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [r for s in spans if (r := row_from_span(s)) is not None]
        self._metrics.spans_received.labels("sdk").inc(len(rows))
        if not rows:
            return SpanExportResult.SUCCESS
        try:
            self._writer.submit(IngestJob(rows=rows)).result(self._timeout)
        except QueueFull:
            self._metrics.sdk_spans_dropped.inc(len(rows))
            logger.warning("store write queue full: %d in-process spans dropped", len(rows))
            return SpanExportResult.FAILURE
        except Exception:
            self._metrics.sdk_spans_dropped.inc(len(rows))
            logger.exception("writing %d in-process spans failed", len(rows))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """The writer belongs to the caller, who stops it."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class CountingBatchSpanProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that counts the spans it drops on a full queue."""

    def __init__(
        self, exporter: SpanExporter, metrics: CollectorMetrics, max_queue_size: int, **kwargs: Any
    ) -> None:
        super().__init__(exporter, max_queue_size=max_queue_size, **kwargs)
        self._max_queue = max_queue_size
        self._metrics = metrics

    def _queued(self) -> int:
        # The SDK keeps its queue private; without it we cannot tell, so count nothing.
        queue = getattr(getattr(self, "_batch_processor", None), "_queue", None)
        return len(queue) if queue is not None else 0

    def on_end(self, span: ReadableSpan) -> None:
        sampled = span.context is not None and span.context.trace_flags.sampled
        if sampled and self._queued() >= self._max_queue:
            self._metrics.sdk_spans_dropped.inc()
        super().on_end(span)


def build_tracer_provider(
    service_name: str,
    writer: SpanWriter,
    metrics: CollectorMetrics,
    *,
    max_queue_size: int = 65_536,
    forward_endpoint: str | None = None,
    schedule_delay_millis: int = 500,
) -> TracerProvider:
    """A tracer provider whose spans land in the store (and on `forward_endpoint`, an
    OTLP/HTTP traces URL such as http://otel-collector:4318/v1/traces, when given)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(
        CountingBatchSpanProcessor(
            SqlSpanExporter(writer, metrics),
            metrics,
            max_queue_size=max_queue_size,
            max_export_batch_size=min(2048, max_queue_size),
            schedule_delay_millis=schedule_delay_millis,
        )
    )
    if forward_endpoint:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=forward_endpoint)))
    return provider
