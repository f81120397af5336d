"""Runtime wiring: open the store, run the HTTP server and the background jobs, stop cleanly."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from signal import SIGINT, SIGTERM

import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from collector.api import create_app
from collector.exporter import build_tracer_provider
from collector.metrics import CollectorMetrics
from collector.span_writer import SpanWriter
from connectors.tracing import wall_clock
from kpis.snapshots import KpiRefresher
from store import migrate
from store.engine import make_engine
from store.retention import PruneReport, RetentionPolicy, prune
from throughline.config import Settings

logger = logging.getLogger(__name__)


def open_store(settings: Settings) -> Engine:
    return make_engine(settings.database.url)


def retention_policy(settings: Settings) -> RetentionPolicy:
    r = settings.retention
    return RetentionPolicy(
        spans=r.spans.timedelta,
        sync_attempts=r.sync_attempts.timedelta,
        probe_results=r.probe_results.timedelta,
    )


def run_retention(engine: Engine, settings: Settings) -> PruneReport:
    return prune(engine, retention_policy(settings), now=dt.datetime.now(dt.UTC))


class PeriodicJob(threading.Thread):
    """Runs `job` every `interval` until stopped; a failing run is logged, never fatal."""

    def __init__(self, name: str, interval: dt.timedelta, job: Callable[[], object]) -> None:
        super().__init__(name=name, daemon=True)
        self._interval = interval.total_seconds()
        self._job = job
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._job()
            except Exception:
                logger.exception(
                    "background job %s failed; next run in %ss", self.name, self._interval
                )
            self._stopping.wait(self._interval)

    def stop(self) -> None:
        self._stopping.set()


def tracer_provider(
    settings: Settings, service_name: str, writer: SpanWriter, metrics: CollectorMetrics
) -> TracerProvider:
    """The tracer provider for in-process components (connectors, probes, workers): their
    spans go to the store and, if configured, on to an external OTLP collector."""
    forward = settings.server.otlp_forward_endpoint
    return build_tracer_provider(
        service_name,
        writer,
        metrics,
        max_queue_size=settings.server.sdk_queue_max_spans,
        forward_endpoint=str(forward) if forward else None,
    )


def run_worker(
    settings: Settings,
    engine: Engine,
    stop: threading.Event,
    *,
    name: str,
    interval: dt.timedelta,
    once: bool = False,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    clock: Callable[[], dt.datetime] | None = None,
) -> int:
    """Poll the systems and run the outbox until `stop` is set; spans go to the store.
    Returns the number of messages run."""
    from connectors.wiring import build_connectors

    write_engine = make_engine(engine.url, immediate=True)
    metrics = CollectorMetrics(CollectorRegistry())
    writer = SpanWriter(write_engine, metrics)
    writer.start()
    provider = tracer_provider(settings, "throughline-worker", writer, metrics)
    connectors = build_connectors(
        settings,
        write_engine,
        provider.get_tracer("connectors"),
        worker_name=name,
        lease=lease,
        clock=clock or wall_clock,
    )
    ran = 0
    try:
        while not stop.is_set():
            ran += connectors.cycle()
            provider.force_flush()
            if once:
                break
            stop.wait(interval.total_seconds())
    finally:
        provider.shutdown()
        connectors.close()
        writer.stop()
    return ran


def serve(settings: Settings, engine: Engine) -> None:
    """Serve the collector API until SIGINT/SIGTERM, with retention in the background."""
    if migrate.current_revision(engine) != migrate.head_revision():
        raise RuntimeError("the store's schema is not at head: run `throughline migrate` first")
    app = create_app(engine, CollectorRegistry(), settings)
    retention = PeriodicJob(
        "retention", settings.retention.interval.timedelta, lambda: run_retention(engine, settings)
    )
    retention.start()
    refresher = KpiRefresher(engine, settings)
    kpi_job = PeriodicJob(
        "kpis",
        settings.kpis.refresh_interval.timedelta,
        lambda: refresher.refresh(dt.datetime.now(dt.UTC)),
    )
    kpi_job.start()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    )
    # uvicorn, in a thread, leaves the signals to us: SIGINT / SIGTERM ask it to finish its
    # requests and stop (in the main thread it would re-raise them into its event loop).
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (SIGINT, SIGTERM)}
    thread = threading.Thread(target=server.run, name="collector-server")
    thread.start()
    try:
        while thread.is_alive() and not stop.wait(0.2):
            pass
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for job in (retention, kpi_job):
            job.stop()
            job.join(timeout=10)
        engine.dispose()
    if not server.started:
        raise RuntimeError(
            f"the collector could not start on {settings.server.host}:{settings.server.port} "
            "(is the port in use?)"
        )
