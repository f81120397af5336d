"""Every probe the settings ask for, how often each runs, and the wiring to run them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from opentelemetry.trace import Tracer
from sqlalchemy import Engine

from connectors.wiring import build_apis
from probes.base import Probe, ProbeContext
from probes.freshness import FlowFreshnessProbe, OutboxStallProbe, WebhookFreshnessProbe
from probes.health import HealthThresholds, TrytonHealthProbe, health_probes
from probes.recon_compare import Grace
from probes.reconciliation import reconciliation_probes
from probes.runner import ProbeRunner
from probes.sla_clock import matching_rule
from probes.stuck import StuckWorkProbe
from store.states import ProbeKind, System
from throughline.config import Settings, TrytonAuth

# Reconciliations that do not read the ERP, so they also run beside a Tryton ERP.
WITHOUT_ERP = {"reconcile.contracts_vs_schedules", "reconcile.billable_vs_billed"}


def build_probes(settings: Settings) -> list[Probe]:
    p = settings.probes
    thresholds = HealthThresholds(
        latency_warn_ms=p.latency_warn_ms,
        headroom_warn_ratio=p.rate_limit_headroom_warn,
        credential_warn=p.credential_expiry_warn.timedelta,
    )
    # A Tryton ERP speaks JSON-RPC, not the REST collections the health probe reads.
    erp_auth = settings.systems.erp.auth
    tryton = isinstance(erp_auth, TrytonAuth)
    systems = [
        s for s in System if settings.systems.get(s).enabled and not (tryton and s is System.ERP)
    ]
    probes: list[Probe] = [*health_probes(systems, thresholds)]
    if isinstance(erp_auth, TrytonAuth) and settings.systems.erp.enabled:
        probes.append(TrytonHealthProbe(erp_auth.database, thresholds))
    probes += [
        FlowFreshnessProbe({f: d.timedelta for f, d in p.flows_expected_every.items()}),
        WebhookFreshnessProbe({s: d.timedelta for s, d in p.webhooks_expected_every.items()}),
        OutboxStallProbe(p.outbox_stall_after.timedelta),
        StuckWorkProbe("deal", settings),
        StuckWorkProbe("invoice", settings),
    ]
    for probe in reconciliation_probes(reconciliation_grace(settings)):
        if tryton and probe.name not in WITHOUT_ERP:
            continue  # these read the ERP's REST collections
        probes.append(probe)
    return probes


def reconciliation_grace(settings: Settings) -> Grace:
    """How long a gap between systems is lag, not drift: the stage SLAs where they say."""

    def within(from_stage: str, default: dt.timedelta) -> dt.timedelta:
        rule = matching_rule(settings.slas, from_stage, None, None)
        return rule.within.timedelta if rule is not None else default

    base = Grace()
    provisioning = within("contract_executed", base.provisioning)
    return dataclasses.replace(
        base,
        provisioning=provisioning,
        scheduling=provisioning + within("project_activated", base.scheduling - provisioning),
        # A monthly cycle runs up to 31 days, whatever `kpis.billing_cycle` averages.
        billing_cycle=max(
            base.billing_cycle,
            settings.kpis.billing_cycle.timedelta + within("billable_approved", base.charge),
        ),
        posting=within("invoiced", base.posting),
    )


def interval(probe: Probe, settings: Settings) -> dt.timedelta:
    p = settings.probes
    return {
        ProbeKind.HEALTH: p.health_interval,
        ProbeKind.RECONCILIATION: p.reconciliation_interval,
        ProbeKind.FRESHNESS: p.freshness_interval,
        ProbeKind.STUCK: p.stuck_interval,
    }[probe.kind].timedelta


def find(probes: list[Probe], name: str) -> Probe:
    for probe in probes:
        if probe.name == name:
            return probe
    known = ", ".join(sorted(p.name for p in probes))
    raise KeyError(f"no probe named {name!r}; known probes: {known}")


@dataclass
class ProbeSuite:
    """The probes with what runs them; `close` releases the HTTP connections."""

    probes: list[Probe]
    runner: ProbeRunner
    http: httpx.Client

    def close(self) -> None:
        self.http.close()


def open_probe_suite(
    settings: Settings,
    engine: Engine,
    tracer: Tracer,
    *,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ProbeSuite:
    timeouts = settings.systems.crm.timeouts
    http = httpx.Client(
        timeout=httpx.Timeout(timeouts.read_seconds, connect=timeouts.connect_seconds)
    )
    apis = build_apis(settings, http, tracer)
    ctx = ProbeContext(engine, apis, now)
    runner = ProbeRunner(engine, ctx, tracer, timeout=settings.probes.timeout.timedelta)
    return ProbeSuite(build_probes(settings), runner, http)
