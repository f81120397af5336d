"""Spans on an injected clock: in a backfill the world runs on a simulated clock, and the
spans our syncs leave must carry the simulated times, or the lifecycle would be wrong."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import Connection

Clock = Callable[[], dt.datetime]


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def nanos(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


@contextmanager
def clocked_span(
    tracer: Tracer,
    name: str,
    clock: Clock,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span that starts at `clock()` and lasts as long as the work really took."""
    start = nanos(clock())
    began = time.perf_counter_ns()
    with tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=dict(attributes or {}),
        start_time=start,
        end_on_exit=False,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        finally:
            span.end(end_time=start + (time.perf_counter_ns() - began))


def observe(tracer: Tracer, name: str, at: dt.datetime, attributes: Mapping[str, Any]) -> Span:
    """Record that a system showed a lifecycle stage at `at` (an OK span of no duration)."""
    moment = nanos(at)
    span = tracer.start_span(
        name, kind=SpanKind.INTERNAL, attributes=dict(attributes), start_time=moment
    )
    span.set_status(Status(StatusCode.OK))
    span.end(end_time=moment)
    return span


SpanSink = Callable[[Connection, Sequence[Span]], None]
"""Stores ended spans (and the lifecycle stages they reach) in the caller's transaction.
The capture and the outbox give it the spans whose stage their commit makes final, so a
crash or a full exporter queue after the commit cannot lose the stage. The runtime wires
`collector.exporter.write_spans`; the spans are exported as usual as well."""
