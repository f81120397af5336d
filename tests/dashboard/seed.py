"""A small firm for the dashboard tests, written through the public write paths: the
collector's lifecycle applier for deals and their objects, plain inserts for spans and the
outbox, `add_user` for accounts and the KPI module's `refresh` for snapshots.

now = 2026-06-30 12:00 UTC (a Tuesday). Past SLA at that moment:
- D2 (GBP 50,000 contract): contract executed 19 days ago, no project (24 h SLA), and an
  open dead letter `ValidationError` from the PSA project create;
- D3 (EUR 20,000 deal, no contract): closed won 30 days ago, no contract (5 business days);
- invoice I4 of D4 (USD 30,000): invoiced 2 days ago, not posted (1 h), dead letter
  `ErpTimeout` from the AR posting.
D1 went all the way to cash; D5 closed an hour ago (inside its SLA).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert

from collector.lifecycle import Observation
from collector.lifecycle_store import LifecycleApplier
from store.outbox import DeadLetter, SyncAttempt, SyncMessage
from store.states import Role
from store.telemetry import Span
from throughline.commands.users import add_user

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"
USERS = {"exec": Role.EXECUTIVE, "fin": Role.FINANCE, "ops": Role.ONCALL, "root": Role.ADMIN}

DEALS: dict[str, dict[str, Any]] = {
    "D1": {"legal_entity": "us", "region": "amer", "practice": "data", "currency": "USD"},
    "D2": {"legal_entity": "uk", "region": "emea", "practice": "cloud", "currency": "GBP"},
    "D3": {"legal_entity": "de", "region": "emea", "practice": "data", "currency": "EUR"},
    "D4": {"legal_entity": "us", "region": "amer", "practice": "cloud", "currency": "USD"},
    "D5": {"legal_entity": "us", "region": "amer", "practice": "data", "currency": "USD"},
}
AMOUNTS = {"D1": 100000, "D2": 50000, "D3": 20000, "D4": 80000, "D5": 15000}


def ago(days: float = 0, hours: float = 0) -> dt.datetime:
    return NOW - dt.timedelta(days=days, hours=hours)


class _Log:
    def __init__(self) -> None:
        self.observations: list[Observation] = []

    def add(
        self,
        deal: str,
        stage: str,
        when: dt.datetime,
        system: str,
        amount: float | None = None,
        trace: str | None = None,
        **ids: str,
    ) -> None:
        details: dict[str, Any] = {}
        if stage == "closed_won":
            details = {
                **{k: v for k, v in DEALS[deal].items() if k != "currency"},
                "account_id": f"ACC-{deal}",
                "account_name": f"Account {deal}",
                "owner": f"owner-{deal.lower()}",
            }
        self.observations.append(
            Observation(
                dedup_key=f"seed:{len(self.observations)}",
                stage=stage,
                occurred_at=when,
                deal_id=deal,
                ids=ids,
                amount=Decimal(str(amount)) if amount is not None else None,
                currency=DEALS[deal]["currency"] if amount is not None else None,
                source_system=system,
                trace_id=trace,
                details=details,
            )
        )


def lifecycle() -> list[Observation]:
    log = _Log()
    # D1: won to cash.
    log.add("D1", "closed_won", ago(10), "crm", AMOUNTS["D1"])
    log.add("D1", "contract_executed", ago(9), "clm", AMOUNTS["D1"], contract="C1")
    log.add("D1", "customer_provisioned", ago(9, -2), "erp")
    log.add("D1", "project_activated", ago(8), "psa", project="P1", contract="C1")
    log.add("D1", "billing_scheduled", ago(8, -1), "billing")
    log.add("D1", "invoiced", ago(5), "billing", 20000, invoice="I1", trace="a" * 32)
    log.add("D1", "posted", ago(5, -0.1), "erp", invoice="I1")
    log.add("D1", "paid", ago(1), "erp", invoice="I1")
    # D2: stuck after contract execution.
    log.add("D2", "closed_won", ago(20), "crm", AMOUNTS["D2"])
    log.add("D2", "contract_executed", ago(19), "clm", AMOUNTS["D2"], contract="C2")
    # D3: stuck at closed won.
    log.add("D3", "closed_won", ago(30), "crm", AMOUNTS["D3"])
    # D4: invoice I4 waiting to be posted.
    log.add("D4", "closed_won", ago(40), "crm", AMOUNTS["D4"])
    log.add("D4", "contract_executed", ago(39), "clm", AMOUNTS["D4"], contract="C4")
    log.add("D4", "customer_provisioned", ago(39, -1), "erp")
    log.add("D4", "project_activated", ago(38, -20), "psa", project="P4", contract="C4")
    log.add("D4", "billing_scheduled", ago(38, -21), "billing")
    log.add("D4", "invoiced", ago(2), "billing", 30000, invoice="I4")
    # D5: just won.
    log.add("D5", "closed_won", ago(0, 1), "crm", AMOUNTS["D5"])
    return log.observations


def _span(
    trace: str,
    span: str,
    parent: str | None,
    name: str,
    system: str,
    start_ms: int,
    ms: int,
    *,
    deal: str,
    status: str = "ok",
    message: str | None = None,
    flow: str = "invoice_to_ar",
) -> dict[str, Any]:
    start = int(ago(5).timestamp() * 1e9) + start_ms * 1_000_000
    return {
        "trace_id": trace,
        "span_id": span,
        "parent_span_id": parent,
        "name": name,
        "service": "throughline-connectors",
        "kind": "client",
        "start_unix_nano": start,
        "end_unix_nano": start + ms * 1_000_000,
        "status": status,
        "status_message": message,
        "attributes": {"q2c.deal.id": deal},
        "deal_id": deal,
        "system": system,
        "flow": flow,
    }


def spans() -> list[dict[str, Any]]:
    ok, bad = "a" * 32, "b" * 32
    return [
        _span(ok, "1" * 16, None, "sync invoice_to_ar", "billing", 0, 120, deal="D1"),
        _span(ok, "2" * 16, "1" * 16, "GET /invoices/I1", "billing", 5, 40, deal="D1"),
        _span(ok, "3" * 16, "1" * 16, "POST /ar/postings", "erp", 50, 60, deal="D1"),
        _span(
            bad,
            "4" * 16,
            None,
            "sync project_create",
            "psa",
            0,
            300,
            deal="D2",
            flow="contract_to_project",
            status="error",
            message="422 missing rate card",
        ),
    ]


def outbox() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    messages, attempts, letters = [], [], []
    cases = [
        (1, "contract_to_project", "psa", "psa-project:D2", "D2", "ValidationError"),
        (2, "contract_to_project", "psa", "psa-project:D2b", "D2", "ValidationError"),
        (3, "invoice_to_ar", "erp", "ar-posting:I4", "D4", "ErpTimeout"),
        (4, "invoice_to_ar", "erp", "ar-posting:I1", "D1", None),
    ]
    for n, flow, system, key, deal, error in cases:
        when = ago(2, -n)
        messages.append(
            {
                "id": n,
                "flow": flow,
                "step": flow,
                "system": system,
                "idempotency_key": key,
                "deal_id": deal,
                "payload": {},
                "state": "dead" if error else "succeeded",
                "attempts": 3 if error else 1,
                "next_attempt_at": when,
                "last_error_class": error,
                "created_at": when,
                "updated_at": when,
            }
        )
        for k in range(1, (3 if error else 1) + 1):
            attempts.append(
                {
                    "message_id": n,
                    "attempt_no": k,
                    "outcome": ("fatal" if k == 3 else "retryable") if error else "succeeded",
                    "error_class": error,
                    "started_at": when + dt.timedelta(minutes=k),
                    "duration_ms": 80,
                }
            )
        if error:
            letters.append(
                {
                    "id": n,
                    "message_id": n,
                    "flow": flow,
                    "system": system,
                    "error_class": error,
                    "error": f"{error} from {system}",
                    "deal_id": deal,
                    "state": "open",
                    "dead_at": when + dt.timedelta(minutes=5),
                }
            )
    return messages, attempts, letters


def seed(engine: Engine, *, snapshots: bool = True) -> None:
    from kpis.snapshots import refresh
    from throughline.config import Settings

    with engine.begin() as conn:
        LifecycleApplier(conn, NOW).apply(lifecycle())
        conn.execute(insert(Span), spans())
        messages, attempts, letters = outbox()
        conn.execute(insert(SyncMessage), messages)
        conn.execute(insert(SyncAttempt), attempts)
        conn.execute(insert(DeadLetter), letters)
    for name, role in USERS.items():
        add_user(engine, name, role, PASSWORD, NOW, rounds=4)
    if snapshots:
        refresh(engine, Settings(), NOW - dt.timedelta(days=30))
        refresh(engine, Settings(), NOW)
