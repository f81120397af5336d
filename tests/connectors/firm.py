"""The sandbox firm with our real connectors carrying its records, on the simulated clock,
with every span going through the collector's exporter into a store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import AnyHttpUrl
from sqlalchemy import Engine

from collector.exporter import build_tracer_provider, write_spans
from collector.metrics import CollectorMetrics
from collector.span_writer import SpanWriter
from connectors.outbox import BackoffPolicy
from connectors.wiring import Connectors, build_connectors
from sandbox.clock import ManualClock
from sandbox.faults import profile
from sandbox.scenario import ScenarioSettings, generate_firm
from sandbox.servers import SandboxServers
from sandbox.services import SYSTEMS, build_services
from sandbox.world import World, day_start
from store.states import System
from throughline.config import RateLimit, Settings, Systems, SystemSettings

START = dt.date(2026, 1, 5)
EXECUTED_STAGES = {
    "contract_executed",
    "customer_provisioned",
    "project_activated",
    "billing_scheduled",
}
"""The deal stages our steps reach for every contract executed in CLM"""


def sandbox_settings(
    urls: dict[str, str], erp: SystemSettings | None = None, base: Settings | None = None
) -> Settings:
    """`base` (default: the defaults) pointing at the sandbox; `erp` replaces its ERP (e.g.
    a Tryton server)."""
    base = base or Settings()
    systems = {
        s.value: base.systems.get(s).model_copy(
            update={
                "base_url": AnyHttpUrl(urls[s.value]),
                "rate_limit": RateLimit(requests_per_second=2000, burst=2000),
            }
        )
        for s in System
    }
    if erp is not None:
        systems["erp"] = erp
    return base.model_copy(update={"systems": Systems(**systems)})


@dataclass
class Firm:
    world: World
    servers: SandboxServers
    connectors: Connectors
    writer: SpanWriter
    flush: Callable[[], None]
    engine: Engine

    def run(self, days: int, before_sync: Callable[[dt.date], None] | None = None) -> None:
        def sync(day: dt.date) -> None:
            if before_sync is not None:
                before_sync(day)
            self.connectors.cycle()

        self.world.run_days(days, after_each=sync)
        self.flush()

    def stop(self) -> None:
        self.flush()
        self.connectors.close()
        self.writer.stop()
        self.servers.stop()
        for service in self.world.services.values():
            service.store.close()


def start_firm(
    directory: Path,
    engine: Engine,
    seed: int,
    horizon_days: int,
    faults: str = "none",
    erp: SystemSettings | None = None,
    scenario: ScenarioSettings | None = None,
    fault_overrides: dict[str, object] | None = None,
    export_spans: bool = True,
    settings: Settings | None = None,
) -> Firm:
    """The firm with our connectors wired as the runtime wires them. Without
    `export_spans` the tracer exports nothing, as if the process died right after each
    commit: only what the connectors store with their commits reaches the store."""
    clock = ManualClock(day_start(START) - dt.timedelta(hours=1))
    services = build_services(
        directory,
        seed=seed,
        faults={
            s: profile(faults).model_copy(update=fault_overrides or {})  # type: ignore[arg-type]
            for s in SYSTEMS
        },
        sim_clock=clock,
        wall_clock=clock,
        admin_key="test-admin",
    )
    world = World(
        generate_firm(seed, START, horizon_days, scenario),
        services,
        clock,
        directory / "world.json",
    )
    world.setup()
    servers = SandboxServers(services, dict.fromkeys(SYSTEMS, 0))
    servers.start()
    metrics = CollectorMetrics(CollectorRegistry())
    writer = SpanWriter(engine, metrics)
    writer.start()
    provider = (
        build_tracer_provider("throughline-connectors", writer, metrics)
        if export_spans
        else TracerProvider()
    )
    connectors = build_connectors(
        sandbox_settings(servers.urls, erp, settings),
        engine,
        provider.get_tracer("connectors"),
        clock=clock.now,
        sleep=lambda _s: None,
        policy=BackoffPolicy(max_attempts=5, base=dt.timedelta(minutes=5)),
        span_sink=write_spans,
    )

    def flush() -> None:
        provider.force_flush()

    return Firm(world, servers, connectors, writer, flush, engine)
