"""The stuck-work probes: what is past its stage SLA, with money at risk in the reporting
currency and the blocking cause (dead letter, validation error, failing system, or no
activity), and the probe series on /metrics."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, insert

from collector.api import create_app
from probes.base import ProbeContext
from probes.runner import ProbeRunner
from probes.stuck import StuckWorkProbe
from store.monitoring import ProbeResult
from store.objects import Deal, Invoice
from store.outbox import DeadLetter, SyncMessage
from store.states import DeadLetterState, MessageState, ProbeKind, ProbeStatus, System
from throughline.config import Settings

# A Wednesday, so five business days back is the Wednesday before.
NOW = dt.datetime(2026, 6, 10, 12, 0, tzinfo=dt.UTC)


def seed(engine: Engine) -> None:
    def deal(deal_id: str, won: dt.datetime, amount: str, currency: str = "USD") -> dict:
        return {
            "id": deal_id,
            "account_name": f"Account {deal_id}",
            "legal_entity": "US01",
            "currency": currency,
            "amount": Decimal(amount),
            "stage": "closed_won",
            "stage_entered_at": won,
            "closed_won_at": won,
            "created_at": won,
            "updated_at": won,
        }

    with engine.begin() as conn:
        conn.execute(
            insert(Deal),
            [
                deal("D-QUIET", NOW - dt.timedelta(days=9), "50000"),
                deal("D-INVALID", NOW - dt.timedelta(days=8), "20000", "EUR"),
                deal("D-FRESH", NOW - dt.timedelta(hours=3), "90000"),
                {**deal("D-BILLED", NOW - dt.timedelta(days=40), "10000"), "stage": "first_cash"},
            ],
        )
        message = conn.execute(
            insert(SyncMessage)
            .values(
                flow="deal_intake",
                step="request_contract",
                system=System.CLM,
                idempotency_key="k1",
                deal_id="D-INVALID",
                payload={},
                state=MessageState.DEAD,
                attempts=1,
                next_attempt_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(SyncMessage.id)
        ).scalar_one()
        conn.execute(
            insert(DeadLetter).values(
                message_id=message,
                flow="deal_intake",
                system=System.CLM,
                error_class="validation",
                error="counterparty.tax_id: required",
                deal_id="D-INVALID",
                state=DeadLetterState.OPEN,
                dead_at=NOW - dt.timedelta(days=7),
            )
        )
        conn.execute(
            insert(Invoice).values(
                id="INV-1",
                deal_id="D-BILLED",
                legal_entity="US01",
                currency="USD",
                amount=Decimal("4200.00"),
                stage="invoiced",
                stage_entered_at=NOW - dt.timedelta(hours=3),
                issued_at=NOW - dt.timedelta(hours=3),
                created_at=NOW - dt.timedelta(hours=3),
                updated_at=NOW - dt.timedelta(hours=3),
            )
        )
        conn.execute(
            insert(ProbeResult).values(
                probe="health.erp",
                kind=ProbeKind.HEALTH,
                system="erp",
                status=ProbeStatus.FAIL,
                observed="answered 503",
                started_at=NOW - dt.timedelta(minutes=1),
                duration_ms=40,
            )
        )


def test_stuck_deals_and_invoices_with_money_at_risk_and_cause(engine: Engine) -> None:
    seed(engine)
    settings = Settings()
    ctx = ProbeContext(engine, {}, lambda: NOW)

    deals = StuckWorkProbe("deal", settings).run(ctx)
    assert deals.status is ProbeStatus.WARN
    by_id = {f.object_id: f for f in deals.findings}
    assert set(by_id) == {"D-QUIET", "D-INVALID"}  # D-FRESH is within its 5 business days
    quiet = by_id["D-QUIET"]
    assert quiet.detail["cause"] == "no activity: waiting for contract_executed"
    assert quiet.detail["money_at_risk"] == 50000.0
    assert quiet.detail["due_at"] == "2026-06-08T12:00:00+00:00"  # 5 bd after Mon 1 June
    invalid = by_id["D-INVALID"]
    assert invalid.detail["cause"] == "validation error: counterparty.tax_id: required"
    assert invalid.system == "clm"
    rate = settings.kpis.fx_rates["EUR"]
    assert invalid.detail["money_at_risk"] == round(20000 * rate, 2)
    assert deals.value == round(50000 + 20000 * rate, 2)

    invoices = StuckWorkProbe("invoice", settings).run(ctx)
    [late] = invoices.findings
    assert (late.object_id, late.deal_id, late.amount) == ("INV-1", "D-BILLED", Decimal("4200"))
    assert late.detail["cause"] == "erp failing: answered 503"
    assert late.detail["overdue_hours"] == 2.0


def test_probe_results_are_prometheus_series(engine: Engine) -> None:
    seed(engine)
    from opentelemetry.trace import NoOpTracer

    ctx = ProbeContext(engine, {}, lambda: NOW)
    runner = ProbeRunner(engine, ctx, NoOpTracer(), timeout=dt.timedelta(seconds=30))
    runner.run(StuckWorkProbe("deal", Settings()))
    registry = CollectorRegistry()
    client = TestClient(create_app(engine, registry, Settings()))
    text = client.get("/metrics").text
    labels = {"probe": "stuck.deals", "kind": "stuck", "system": ""}
    assert registry.get_sample_value("throughline_probe_status", labels) == 1  # warn
    assert registry.get_sample_value("throughline_probe_findings", labels) == 2
    erp = {"probe": "health.erp", "kind": "health", "system": "erp"}
    assert registry.get_sample_value("throughline_probe_status", erp) == 2  # fail
    assert 'throughline_probe_status{kind="stuck",probe="stuck.deals",system=""} 1.0' in text
