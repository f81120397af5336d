"""In-process spans (our own connectors and workers) reach the store, and drops are counted."""

from __future__ import annotations

import sqlalchemy as sa
from opentelemetry.trace import Status, StatusCode
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from collector.exporter import build_tracer_provider
from collector.metrics import CollectorMetrics
from collector.span_writer import SpanWriter
from store.telemetry import LifecycleEvent, Span


def test_sdk_spans_are_written_in_batches_with_lifecycle_events(engine: Engine) -> None:
    metrics = CollectorMetrics(CollectorRegistry())
    writer = SpanWriter(engine, metrics)
    writer.start()
    provider = build_tracer_provider("throughline-worker", writer, metrics)
    tracer = provider.get_tracer("connectors")
    for n in range(300):
        with tracer.start_as_current_span("create project") as span:
            span.set_attributes(
                {
                    "q2c.deal.id": f"OPP-{n}",
                    "q2c.project.id": f"PRJ-{n}",
                    "q2c.stage": "project_activated",
                    "q2c.system": "psa",
                }
            )
            span.set_status(Status(StatusCode.OK))
    provider.shutdown()  # flushes the batch processor
    writer.stop()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Span)).scalar() == 300
        services = conn.execute(sa.select(Span.service).distinct()).scalars().all()
        events = conn.execute(sa.select(sa.func.count()).select_from(LifecycleEvent)).scalar()
    assert services == ["throughline-worker"]
    assert events == 600  # each span: the project's activation and the deal's
    assert metrics.registry.get_sample_value("throughline_sdk_spans_dropped_total") == 0


def test_spans_dropped_on_a_full_queue_are_counted(engine: Engine) -> None:
    metrics = CollectorMetrics(CollectorRegistry())
    writer = SpanWriter(engine, metrics)  # not started: nothing drains while spans end
    provider = build_tracer_provider(
        "w", writer, metrics, max_queue_size=10, schedule_delay_millis=60_000
    )
    tracer = provider.get_tracer("t")
    # The processor exports batches of up to 10 as soon as 10 wait; the export blocks on the
    # stopped writer, so the queue fills and the rest of the spans are dropped.
    for _ in range(200):
        with tracer.start_as_current_span("s"):
            pass
    dropped = metrics.registry.get_sample_value("throughline_sdk_spans_dropped_total")
    assert dropped is not None and dropped >= 150
    writer.start()
    provider.shutdown()
    writer.stop()
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(Span)).scalar()
    # Every span is stored or counted as dropped; the count can be one high when the worker
    # takes a batch between the processor's full-queue check and its append.
    assert stored is not None and 200 <= stored + dropped <= 201


def test_in_process_spans_are_also_forwarded_to_an_external_otlp_collector(
    engine: Engine, tmp_path: object
) -> None:
    """The external collector here is a second Throughline collector: a real OTLP/HTTP peer."""
    from collector.api import create_app
    from store import migrate
    from store.engine import make_engine
    from tests.collector.conftest import start_server
    from tests.conftest import free_port
    from throughline.config import Settings
    from throughline.runtime import tracer_provider

    remote_engine = make_engine(f"sqlite:///{tmp_path}/remote.db")
    migrate.upgrade(remote_engine)
    port = free_port()
    remote, thread = start_server(create_app(remote_engine, CollectorRegistry()), port)
    try:
        metrics = CollectorMetrics(CollectorRegistry())
        writer = SpanWriter(engine, metrics)
        writer.start()
        settings = Settings(server={"otlp_forward_endpoint": f"http://127.0.0.1:{port}/v1/traces"})
        provider = tracer_provider(settings, "throughline-worker", writer, metrics)
        with provider.get_tracer("t").start_as_current_span("post invoice"):
            pass
        provider.shutdown()
        writer.stop()
    finally:
        remote.should_exit = True
        thread.join(timeout=20)
    for store in (engine, remote_engine):
        with store.connect() as conn:
            assert conn.execute(sa.select(Span.name, Span.service)).all() == [
                ("post invoice", "throughline-worker")
            ]
