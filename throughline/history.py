"""Backfill: the sandbox firm's actors and our connectors together on the simulated clock,
day after day, so every span and lifecycle event in the store is one that live operation
would have produced: the store holds only what our connectors and collector wrote."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry
from pydantic import AnyHttpUrl
from sqlalchemy import Engine

from collector.exporter import write_spans
from collector.metrics import CollectorMetrics
from collector.span_writer import SpanWriter
from connectors.wiring import Connectors, build_connectors
from sandbox.runner import BackfillReport, SandboxOptions, backfill
from sandbox.servers import SandboxServers
from sandbox.world import World
from store.engine import make_engine
from store.states import System
from throughline.config import RateLimit, Settings, Systems, TrytonAuth
from throughline.runtime import tracer_provider

# History runs as fast as the machine allows: the systems' rate limits are lifted and a
# hung request gives up after half a second of real time instead of the profile's 20 s (a
# second of the accelerated clock is a day); latency, errors, timeouts and data faults of
# the profile stay on.
BACKFILL_RATE = 500.0
BACKFILL_HANG_SECONDS = 0.5


@dataclass(frozen=True)
class HistoryReport:
    sandbox: BackfillReport
    messages: int


def settings_for_sandbox(settings: Settings, urls: dict[str, str], rate: float | None) -> Settings:
    """`settings` with the systems pointed at `urls` (and their rate limits at `rate`); a
    real ERP (Tryton) configured in `settings` stays where it is."""
    systems = {}
    for system in System:
        if isinstance(settings.systems.get(system).auth, TrytonAuth):
            systems[system.value] = settings.systems.get(system)
            continue
        update: dict[str, object] = {"base_url": AnyHttpUrl(urls[system.value])}
        if rate is not None:
            update["rate_limit"] = RateLimit(requests_per_second=rate, burst=int(rate))
        systems[system.value] = settings.systems.get(system).model_copy(update=update)
    return settings.model_copy(update={"systems": Systems(**systems)})


def backfill_with_syncs(
    settings: Settings,
    engine: Engine,
    options: SandboxOptions,
    days: int,
    today: dt.date,
    on_day: Callable[[dt.date], None] | None = None,
) -> HistoryReport:
    fast = {
        "rate_limit_per_second": BACKFILL_RATE,
        "rate_limit_burst": int(BACKFILL_RATE),
        "timeout_seconds": BACKFILL_HANG_SECONDS,
    }
    options = replace(
        options,
        system_faults={s: {**options.system_faults.get(s, {}), **fast} for s in options.ports},
    )
    write_engine = make_engine(engine.url, immediate=True)
    metrics = CollectorMetrics(CollectorRegistry())
    writer = SpanWriter(write_engine, metrics)
    writer.start()
    provider = tracer_provider(settings, "throughline-worker", writer, metrics)
    running: dict[str, object] = {}
    ran = 0

    def open_world(world: World) -> None:
        servers = SandboxServers(world.services, dict.fromkeys(options.ports, 0), options.host)
        servers.start()
        running["servers"] = servers
        running["connectors"] = build_connectors(
            settings_for_sandbox(settings, servers.urls, BACKFILL_RATE * 0.9),
            write_engine,
            provider.get_tracer("connectors"),
            clock=world.clock.now,
            worker_name="backfill",
            span_sink=write_spans,
        )

    def after_day(day: dt.date) -> None:
        nonlocal ran
        connectors = running["connectors"]
        assert isinstance(connectors, Connectors)
        ran += connectors.cycle()
        if on_day is not None:
            on_day(day)

    try:
        report = backfill(options, days, today, after_day, open_world)
    finally:
        provider.shutdown()
        writer.stop()
        connectors = running.get("connectors")
        if isinstance(connectors, Connectors):
            connectors.close()
        servers = running.get("servers")
        if isinstance(servers, SandboxServers):
            servers.stop()
    return HistoryReport(report, ran)
