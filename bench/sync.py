"""Sync benchmark: deals synced per second end to end against the sandbox firm, and the
request rate our connectors achieve against the sandbox ERP's configured limit.

    .venv/bin/python bench/sync.py                 # 90 days of history, ERP limited to 10/s
    .venv/bin/python bench/sync.py --days 120 --erp-rps 20

Phase 1 carries the firm's history (contracts, customers, projects, schedules, charges)
day by day on the simulated clock and times the connectors. Phase 2 releases a backlog of
invoices that all need the ERP: the client-side limiter must keep the ERP near its limit
(target: >= 0.9 of it) while drawing fewer than 1% 429s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import AnyHttpUrl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.wiring import build_connectors
from sandbox.clock import ManualClock, SystemClock
from sandbox.faults import profile
from sandbox.scenario import generate_firm
from sandbox.servers import SandboxServers
from sandbox.services import SYSTEMS, build_services
from sandbox.world import World, day_start
from store import migrate
from store.engine import make_engine
from store.states import System
from throughline.config import RateLimit, Settings, Systems

START = dt.date(2026, 1, 5)


def settings_for(urls: dict[str, str], erp_rps: float) -> Settings:
    base = Settings()
    systems = {}
    for system in System:
        limit = (
            RateLimit(requests_per_second=erp_rps, burst=1)
            if system is System.ERP
            else RateLimit(requests_per_second=5000, burst=5000)
        )
        systems[system.value] = base.systems.get(system).model_copy(
            update={"base_url": AnyHttpUrl(urls[system.value]), "rate_limit": limit}
        )
    return base.model_copy(update={"systems": Systems(**systems)})


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--erp-rps", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        sim = ManualClock(day_start(START) - dt.timedelta(hours=1))
        faults = {s: profile("none") for s in SYSTEMS}
        faults["erp"] = faults["erp"].model_copy(
            update={
                "rate_limit_per_second": args.erp_rps,
                "rate_limit_burst": max(1, int(args.erp_rps)),
            }
        )
        services = build_services(
            directory / "sandbox",
            seed=args.seed,
            faults=faults,
            sim_clock=sim,
            wall_clock=SystemClock(),
        )
        world = World(
            generate_firm(args.seed, START, args.days), services, sim, directory / "world.json"
        )
        world.setup()
        servers = SandboxServers(services, dict.fromkeys(SYSTEMS, 0))
        servers.start()
        engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
        migrate.upgrade(engine)
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        connectors = build_connectors(
            settings_for(servers.urls, args.erp_rps),
            engine,
            provider.get_tracer("bench"),
            clock=sim.now,
        )
        posting = [s for s in connectors.capture.streams if s.name == "billing.invoices"]
        connectors.capture.streams = [s for s in connectors.capture.streams if s not in posting]
        synced = 0.0

        def sync(_day: dt.date) -> None:
            nonlocal synced
            started = time.perf_counter()
            connectors.cycle()
            synced += time.perf_counter() - started

        try:
            print(f"phase 1: {args.days} days of the firm, synced day by day ...", flush=True)
            world.run_days(args.days, after_each=sync)
            won = sum(1 for o in services["crm"].store.all("opportunities") if o["isWon"])
            provisioned = len(services["billing"].store.all("billing_schedules"))
            requests = len(spans.get_finished_spans())
            print(
                f"  {won} won deals, {provisioned} provisioned end to end, {requests} requests "
                f"in {synced:.1f} s of sync: {provisioned / synced:.1f} deals/s, "
                f"{requests / synced:.0f} requests/s"
            )

            spans.clear()
            connectors.capture.streams = posting
            invoices = len(services["billing"].store.all("invoices"))
            print(f"phase 2: a backlog of {invoices} invoices to post to the ERP ...", flush=True)
            started = time.perf_counter()
            connectors.cycle()
            elapsed = time.perf_counter() - started
            erp = [
                s
                for s in spans.get_finished_spans()
                if (s.attributes or {}).get("q2c.system") == "erp"
                and (s.attributes or {}).get("http.request.method")
            ]
            statuses = Counter((s.attributes or {}).get("http.response.status_code") for s in erp)
            # Spans carry simulated times; the rate is over the real time of the phase, which
            # also holds the billing lookups and the poll (so it slightly understates it).
            rate = len(erp) / elapsed
            posted = len(services["erp"].store.all("ar_postings"))
            print(
                f"  {posted} postings; {len(erp)} ERP requests in {elapsed:.1f} s = "
                f"{rate:.2f}/s against a limit of {args.erp_rps:.2f}/s"
            )
            share_429 = statuses.get(429, 0) / max(1, len(erp))
            print(
                f"  ratio achieved / limit: {rate / args.erp_rps:.2f} (target >= 0.9); "
                f"429s: {statuses.get(429, 0)} = {share_429:.1%} (target < 1%)"
            )
        finally:
            connectors.close()
            servers.stop()


if __name__ == "__main__":
    main()
