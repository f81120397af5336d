"""Read models of deals for the API, the command line and the dashboard: a paged list, and
one deal's whole lifecycle with the objects hanging off it and every span linked to it."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, or_, select

from store.objects import Contract, Deal, Invoice, Project
from store.telemetry import LifecycleEvent, Span


@dataclass(frozen=True)
class DealSummary:
    id: str
    name: str | None
    account_name: str | None
    legal_entity: str | None
    practice: str | None
    stage: str | None
    stage_entered_at: dt.datetime | None
    amount: Decimal | None
    currency: str | None
    closed_won_at: dt.datetime | None


@dataclass(frozen=True)
class DealPage:
    deals: list[DealSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class TimelineEvent:
    object_type: str
    object_id: str
    stage: str
    occurred_at: dt.datetime
    source_system: str | None
    trace_id: str | None
    amount: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class SyncStep:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    system: str | None
    flow: str | None
    stage: str | None
    status: str
    status_message: str | None
    started_at: dt.datetime
    duration_ms: float


@dataclass
class DealDetail:
    deal: DealSummary
    events: list[TimelineEvent] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    steps: list[SyncStep] = field(default_factory=list)


class BadCursor(ValueError):
    pass


def _summary(row: Any) -> DealSummary:
    return DealSummary(
        id=row.id,
        name=row.name,
        account_name=row.account_name,
        legal_entity=row.legal_entity,
        practice=row.practice,
        stage=row.stage,
        stage_entered_at=row.stage_entered_at,
        amount=row.amount,
        currency=row.currency,
        closed_won_at=row.closed_won_at,
    )


def encode_cursor(deal_id: str) -> str:
    return base64.urlsafe_b64encode(deal_id.encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if not decoded:
        raise BadCursor(f"cursor {cursor!r} is not one this API returned")
    return decoded


def list_deals(
    conn: Connection,
    *,
    stage: str | None = None,
    legal_entity: str | None = None,
    search: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> DealPage:
    """Deals by id, `limit` at a time; `search` matches a deal, account or invoice id."""
    query = select(Deal).order_by(Deal.id).limit(limit + 1)
    if stage:
        query = query.where(Deal.stage == stage)
    if legal_entity:
        query = query.where(Deal.legal_entity == legal_entity)
    if search:
        invoice_deals = select(Invoice.deal_id).where(Invoice.id == search)
        query = query.where(
            or_(Deal.id == search, Deal.account_id == search, Deal.id.in_(invoice_deals))
        )
    if cursor:
        query = query.where(Deal.id > decode_cursor(cursor))
    rows = conn.execute(query).all()
    deals = [_summary(r) for r in rows[:limit]]
    more = len(rows) > limit
    return DealPage(deals, encode_cursor(deals[-1].id) if more and deals else None)


def _step(s: Any) -> SyncStep:
    return SyncStep(
        trace_id=s.trace_id,
        span_id=s.span_id,
        parent_span_id=s.parent_span_id,
        name=s.name,
        service=s.service,
        system=s.system,
        flow=s.flow,
        stage=s.stage,
        status=str(s.status),
        status_message=s.status_message,
        started_at=dt.datetime.fromtimestamp(s.start_unix_nano / 1e9, dt.UTC),
        duration_ms=(s.end_unix_nano - s.start_unix_nano) / 1e6,
    )


def _plain(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: getattr(row, c) for c in columns}


def deal_detail(conn: Connection, deal_id: str, max_steps: int = 2000) -> DealDetail | None:
    deal = conn.execute(select(Deal).where(Deal.id == deal_id)).first()
    if deal is None:
        return None
    detail = DealDetail(_summary(deal))
    for e in conn.execute(
        select(LifecycleEvent)
        .where(LifecycleEvent.deal_id == deal_id)
        .order_by(LifecycleEvent.occurred_at, LifecycleEvent.id)
    ):
        detail.events.append(
            TimelineEvent(
                object_type=str(e.object_type),
                object_id=e.object_id,
                stage=e.stage,
                occurred_at=e.occurred_at,
                source_system=str(e.source_system) if e.source_system else None,
                trace_id=e.trace_id,
                amount=e.amount,
                currency=e.currency,
            )
        )
    for model, target, columns in (
        (
            Contract,
            detail.contracts,
            ("id", "billing_model", "value", "currency", "stage", "executed_at"),
        ),
        (Project, detail.projects, ("id", "contract_id", "practice", "stage", "activated_at")),
        (
            Invoice,
            detail.invoices,
            (
                "id",
                "amount",
                "currency",
                "amount_paid",
                "stage",
                "has_exception",
                "issued_at",
                "posted_at",
                "paid_at",
            ),
        ),
    ):
        for row in conn.execute(select(model).where(model.deal_id == deal_id).order_by(model.id)):
            target.append(_plain(row, columns))
    for s in conn.execute(
        select(Span).where(Span.deal_id == deal_id).order_by(Span.start_unix_nano).limit(max_steps)
    ):
        detail.steps.append(_step(s))
    return detail


def trace_spans(conn: Connection, trace_id: str) -> list[SyncStep]:
    """Every span of one trace (a waterfall), in start order."""
    rows = conn.execute(
        select(Span).where(Span.trace_id == trace_id.lower()).order_by(Span.start_unix_nano)
    )
    return [_step(s) for s in rows]
