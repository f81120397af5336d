"""Health probes against the sandbox's five systems over HTTP: ok when healthy; an outage,
refused credentials, thin rate-limit headroom and a renamed field each reported; a webhook
source of the sandbox that stops; and every probe ok on the synced firm."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.trace import NoOpTracer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from collector.api import create_app
from connectors.wiring import build_apis
from probes.base import ProbeContext
from probes.freshness import WebhookFreshnessProbe
from probes.health import Endpoint, HealthProbe, health_probes
from store import migrate
from store.engine import make_engine
from store.states import ProbeStatus, System
from tests.collector.conftest import start_server
from tests.conftest import free_port
from tests.connectors.firm import Firm, sandbox_settings, start_firm
from throughline.config import ApiKeyAuth, Settings, Systems


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    directory: Path = tmp_path_factory.mktemp("health")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    firm = start_firm(directory, engine, seed=11, horizon_days=30)
    firm.run(12)
    yield firm
    firm.stop()
    engine.dispose()


@pytest.fixture
def ctx(firm: Firm) -> ProbeContext:
    return ProbeContext(firm.engine, firm.connectors.context.apis, firm.world.clock.now)


def test_with_no_drift_every_probe_is_ok(firm: Firm) -> None:
    """The whole registry (health, freshness, stuck work, reconciliation) on the synced
    sandbox firm twelve days in (before any milestone or invoice: empty collections must
    reconcile too), through the runner that `serve` schedules."""
    from opentelemetry.trace import NoOpTracer

    from probes.registry import build_probes
    from probes.runner import ProbeRunner

    settings = sandbox_settings(firm.servers.urls)
    ctx = ProbeContext(firm.engine, firm.connectors.context.apis, firm.world.clock.now)
    runner = ProbeRunner(firm.engine, ctx, NoOpTracer(), timeout=dt.timedelta(seconds=60))
    outcomes = {probe.name: runner.run(probe).outcome for probe in build_probes(settings)}
    assert len(outcomes) == 15
    assert {
        name: o.observed for name, o in outcomes.items() if o.status is not ProbeStatus.OK
    } == {}


def test_every_system_is_healthy_with_latency_headroom_and_fields_checked(
    ctx: ProbeContext,
) -> None:
    for probe in health_probes():
        outcome = probe.run(ctx)
        assert outcome.status is ProbeStatus.OK, (probe.name, outcome.observed)
        assert outcome.value is not None and outcome.value > 0
        assert outcome.detail["rate_limit_limit"] > 0
        assert 0 <= outcome.detail["rate_limit_remaining"] <= outcome.detail["rate_limit_limit"]
        if probe.system in ("crm", "clm", "psa", "erp"):  # billing has no invoice yet
            assert outcome.detail["fields_checked"], probe.name
    # OAuth2 systems say how long the access token stays valid.
    crm = HealthProbe(System.CRM).run(ctx)
    assert crm.detail["token_expires_in_s"] > 0


def test_an_outage_fails_the_probe_with_the_status(firm: Firm, ctx: ProbeContext) -> None:
    faults = firm.world.services["erp"].faults
    before = faults.config
    faults.apply({"outage": True})
    try:
        outcome = HealthProbe(System.ERP).run(ctx)
    finally:
        faults.apply(before.model_dump())
    assert outcome.status is ProbeStatus.FAIL
    assert outcome.observed == "answered 503"
    assert HealthProbe(System.ERP).run(ctx).status is ProbeStatus.OK


def test_refused_credentials_fail_the_probe(firm: Firm) -> None:
    settings = sandbox_settings(firm.servers.urls)
    wrong = settings.systems.clm.model_copy(
        update={"auth": ApiKeyAuth(api_key=SecretStr("revoked-key"))}
    )
    settings = settings.model_copy(
        update={"systems": Systems(**{**settings.systems.model_dump(), "clm": wrong})}
    )
    with httpx.Client() as http:
        apis = build_apis(settings, http, NoOpTracer())
        outcome = HealthProbe(System.CLM).run(
            ProbeContext(firm.engine, apis, lambda: dt.datetime.now(dt.UTC))
        )
    assert outcome.status is ProbeStatus.FAIL
    assert outcome.observed == "credentials refused (401)"


def test_thin_rate_limit_headroom_warns(firm: Firm, ctx: ProbeContext) -> None:
    faults = firm.world.services["psa"].faults
    before = faults.config
    faults.apply({"rate_limit_per_second": 0.001, "rate_limit_burst": 10})
    try:
        client = ctx.apis[System.PSA].client
        for _ in range(8):  # another caller's traffic would look the same
            client.check("/api/v1/workspaces", {"limit": 1})
        outcome = HealthProbe(System.PSA).run(ctx)
    finally:
        faults.apply(before.model_dump())
        firm.world.clock.advance(dt.timedelta(seconds=2))  # the sandbox's buckets refill
    assert outcome.status is ProbeStatus.WARN
    assert (outcome.detail["rate_limit_remaining"], outcome.detail["rate_limit_limit"]) == (1, 10)
    assert "rate-limit headroom 1/10" in (outcome.observed or "")


def test_a_renamed_field_is_schema_drift(firm: Firm, ctx: ProbeContext) -> None:
    """The sandbox CRM's `schema_drift` fault renames `amount` to `totalAmount`, as an API
    upgrade would; the sync that reads `amount` would break."""
    faults = firm.world.services["crm"].faults
    faults.apply({"schema_drift": True})
    try:
        outcome = HealthProbe(System.CRM).run(ctx)
    finally:
        faults.apply({"schema_drift": False})
    assert outcome.status is ProbeStatus.WARN
    assert outcome.detail["missing_fields"] == ["amount"]
    assert outcome.observed == "schema drift: amount missing"
    [finding] = outcome.findings
    assert (finding.kind, finding.object_type, finding.system) == (
        "schema_drift",
        "opportunities",
        "crm",
    )
    assert finding.object_id
    # A nested path our flows read is checked the same way.
    nested = HealthProbe(System.CLM, Endpoint("agreements", ("terms.billing_model", "terms.x")))
    assert nested.run(ctx).detail["missing_fields"] == ["terms.x"]
    assert HealthProbe(System.CRM).run(ctx).status is ProbeStatus.OK


def test_a_webhook_source_of_the_sandbox_that_stops_is_reported(
    firm: Firm, ctx: ProbeContext
) -> None:
    """The sandbox's PSA and CRM send their CloudEvents to a running collector; the PSA is
    then unsubscribed (its webhooks stop) while the CRM goes on."""
    port = free_port()
    server, thread = start_server(
        create_app(firm.engine, CollectorRegistry(), Settings(server={"port": port})), port
    )
    collector = f"http://127.0.0.1:{port}/api/v1/events"
    admin = {"X-Admin-Key": "test-admin"}
    urls = firm.servers.urls

    def subscribe(system: str, url: str | None) -> None:
        response = httpx.put(f"{urls[system]}/admin/webhooks", json={"url": url}, headers=admin)
        assert response.status_code == 200, response.text

    def deliver(days: int) -> None:
        firm.run(days)
        for system in ("psa", "crm"):
            httpx.post(f"{urls[system]}/admin/webhooks/flush", headers=admin)

    probe = WebhookFreshnessProbe(
        {"/sandbox/psa": dt.timedelta(seconds=3), "/sandbox/crm": dt.timedelta(hours=1)}
    )
    wall = ProbeContext(firm.engine, ctx.apis, lambda: dt.datetime.now(dt.UTC))
    try:
        subscribe("psa", collector)
        subscribe("crm", collector)
        deliver(8)
        sending = probe.run(wall)
        assert sending.status is ProbeStatus.OK, sending.observed

        subscribe("psa", None)
        deliver(4)
        # Four seconds on, with the CRM still sending: the PSA's 3 s cadence has lapsed.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
        silent = probe.run(ProbeContext(firm.engine, ctx.apis, lambda: later))
    finally:
        subscribe("psa", None)
        subscribe("crm", None)
        server.should_exit = True
        thread.join(timeout=20)
    assert silent.status is ProbeStatus.FAIL
    assert [(f.kind, f.object_id) for f in silent.findings] == [("webhook_silent", "/sandbox/psa")]
    last = silent.detail["last_received"]
    assert last["/sandbox/crm"] > last["/sandbox/psa"], "the CRM went on after the PSA stopped"


def test_a_tls_certificate_about_to_expire_warns(firm: Firm, tmp_path: Path) -> None:
    """The sandbox CRM served over HTTPS with a certificate that expires in three days."""
    import trustme
    import uvicorn

    from sandbox.app import create_app as sandbox_app

    ca = trustme.CA()
    cert = ca.issue_cert(
        "127.0.0.1", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=1)
    )
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            sandbox_app(firm.world.services["crm"]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(tmp_path / "server.pem"),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    settings = sandbox_settings({**firm.servers.urls, "crm": f"https://127.0.0.1:{port}"})
    try:
        trusted = ssl.create_default_context()
        ca.configure_trust(trusted)
        with httpx.Client(verify=trusted) as http:
            apis = build_apis(settings, http, NoOpTracer())
            outcome = HealthProbe(System.CRM).run(
                ProbeContext(firm.engine, apis, lambda: dt.datetime.now(dt.UTC))
            )
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert outcome.status is ProbeStatus.WARN
    assert outcome.observed == "TLS certificate expires in 3 day(s)"
    assert 3.0 <= outcome.detail["certificate_days_left"] <= 3.1
