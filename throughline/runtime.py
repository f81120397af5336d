"""Runtime wiring: open the store, run the HTTP server and the background jobs, stop cleanly."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from signal import SIGINT, SIGTERM

import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from collector import otlp
from collector.api import create_app
from collector.exporter import build_tracer_provider, write_spans
from collector.metrics import CollectorMetrics
from collector.span_writer import SpanWriter
from connectors.tracing import wall_clock
from kpis.snapshots import KpiRefresher
from store import migrate
from store.engine import make_engine
from store.retention import PruneReport, RetentionPolicy, prune
from throughline.config import Settings
from throughline.scheduler import ScheduledJob, Scheduler

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


@contextlib.contextmanager
def stored_tracing(settings: Settings, engine: Engine, service: str) -> Iterator[TracerProvider]:
    """A tracer provider whose spans are written to the store (through the span writer)
    until the block ends, when they are flushed."""
    metrics = CollectorMetrics(CollectorRegistry())
    writer = SpanWriter(engine, metrics)
    writer.start()
    provider = tracer_provider(settings, service, writer, metrics)
    try:
        yield provider
    finally:
        provider.shutdown()
        writer.stop()


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
    ran = 0
    with stored_tracing(settings, write_engine, "throughline-worker") as provider:
        connectors = build_connectors(
            settings,
            write_engine,
            provider.get_tracer("connectors"),
            worker_name=name,
            lease=lease,
            clock=clock or wall_clock,
            span_sink=write_spans,
        )
        try:
            while not stop.is_set():
                ran += connectors.cycle()
                provider.force_flush()
                if once:
                    break
                stop.wait(interval.total_seconds())
        finally:
            connectors.close()
    write_engine.dispose()
    return ran


@dataclass
class Background:
    """The scheduler and what its jobs hold open; `stop` releases all of it."""

    scheduler: Scheduler
    resources: contextlib.ExitStack

    def stop(self) -> None:
        self.scheduler.stop()
        self.resources.close()


def start_background(
    settings: Settings,
    engine: Engine,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sync_every: dt.timedelta | None = None,
    name: str = "serve",
) -> Background:
    """Start the scheduler with every periodic job: retention, KPI refresh, the probes and,
    when `scheduler.sync_interval` (or `sync_every`) is set, the syncs."""
    from connectors.wiring import build_connectors
    from probes.registry import interval, open_probe_suite

    conf = settings.scheduler
    resources = contextlib.ExitStack()
    try:
        write_engine = make_engine(engine.url, immediate=True)
        resources.callback(write_engine.dispose)
        provider = resources.enter_context(
            stored_tracing(settings, write_engine, f"throughline-{name}")
        )
        jitter = conf.jitter.timedelta
        job_timeout = conf.job_timeout.timedelta
        refresher = KpiRefresher(engine, settings, write_engine=write_engine)
        jobs = [
            ScheduledJob(
                "retention",
                settings.retention.interval.timedelta,
                lambda: run_retention(write_engine, settings),
                job_timeout,
                jitter,
            ),
            ScheduledJob(
                "kpis.refresh",
                settings.kpis.refresh_interval.timedelta,
                lambda: refresher.refresh(now()),
                job_timeout,
                jitter,
            ),
        ]
        suite = open_probe_suite(settings, write_engine, provider.get_tracer("probes"), now=now)
        resources.callback(suite.close)
        probe_timeout = settings.probes.timeout.timedelta + dt.timedelta(seconds=30)
        for probe in suite.probes:
            jobs.append(
                ScheduledJob(
                    f"probe.{probe.name}",
                    interval(probe, settings),
                    lambda probe=probe: suite.runner.run(probe),  # type: ignore[misc]
                    probe_timeout,
                    jitter,
                )
            )
        every = sync_every if sync_every is not None else conf.sync_interval.timedelta
        if every > dt.timedelta(0):
            connectors = build_connectors(
                settings,
                write_engine,
                provider.get_tracer("connectors"),
                worker_name=name,
                clock=now,
                span_sink=write_spans,
            )
            resources.callback(connectors.close)

            def sync() -> None:
                connectors.cycle()
                provider.force_flush()

            jobs.append(ScheduledJob("sync", every, sync, job_timeout, dt.timedelta(0)))
        scheduler = Scheduler(write_engine, jobs, misfire_grace=conf.misfire_grace.timedelta)
        scheduler.start()
        return Background(scheduler, resources)
    except BaseException:
        resources.close()
        raise


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that SIGINT or SIGTERM sets while inside; the previous handlers come back
    on leaving. Handled, not left to KeyboardInterrupt: a process that a script starts in
    the background inherits SIGINT ignored, and `kill -INT` must stop it all the same."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (SIGINT, SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    settings: Settings,
    engine: Engine,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sync_every: dt.timedelta | None = None,
) -> None:
    """Serve the collector API until SIGINT/SIGTERM, with the scheduler's jobs (retention,
    KPI refresh, probes, and syncs when configured) in the background."""
    if migrate.current_revision(engine) != migrate.head_revision():
        raise RuntimeError("the store's schema is not at head: run `throughline migrate` first")
    app = create_app(engine, CollectorRegistry(), settings)
    if otlp.compiled_decode is None:
        logger.warning(
            "the compiled OTLP decoder (collector/_otlp_fast.c) was not built where this was "
            "installed: spans are decoded in Python, about four times slower; reinstall "
            "with a C compiler and the Python headers"
        )
    background = (
        start_background(settings, engine, now=now, sync_every=sync_every)
        if settings.scheduler.enabled
        else None
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=server.run, name="collector-server")
    # What exists by now (modules, the app, the ORM's metadata: some 180,000 objects) lives
    # as long as the process: keep it out of the garbage collector's full passes, which a
    # busy ingest triggers every few seconds (measured: 1.5 us per span stored -> 0.6).
    gc.freeze()
    try:
        # uvicorn, in a thread, leaves the signals to us: SIGINT / SIGTERM ask it to finish
        # its requests and stop (in the main thread it would re-raise them into its loop).
        with stop_on_signals() as stop:
            thread.start()
            try:
                while thread.is_alive() and not stop.wait(0.2):
                    pass
            finally:
                server.should_exit = True
                thread.join(timeout=30)
    finally:
        if background is not None:
            background.stop()
        engine.dispose()
    if not server.started:
        raise RuntimeError(
            f"the collector could not start on {settings.server.host}:{settings.server.port} "
            "(is the port in use?)"
        )
