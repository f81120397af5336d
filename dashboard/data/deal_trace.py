"""One deal's whole lifecycle for the deal page: the store's deal detail (events, objects,
spans), the SLA marks of its stages and its invoices, and its outbox history (every sync
message, attempt, dead letter and replay)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Connection, select

from probes.sla_clock import deadline, matching_rule
from probes.stuck_work import DEAL_ORDER, INVOICE_ORDER
from store.deal_queries import DealDetail, DealPage, deal_detail, list_deals
from store.objects import Deal
from store.outbox import DeadLetter, Replay, SyncAttempt, SyncMessage
from throughline.config import Settings


@dataclass
class DealTrace:
    detail: DealDetail
    owner: str | None
    region: str | None
    sla_marks: pd.DataFrame
    messages: pd.DataFrame
    attempts: pd.DataFrame
    dead_letters: pd.DataFrame
    replays: pd.DataFrame
    first_reached: dict[str, dt.datetime] = field(default_factory=dict)


SLA_COLUMNS = ["object", "from", "to", "started_at", "due_at", "reached_at", "mark"]


def _mark(reached: dt.datetime | None, due: dt.datetime, now: dt.datetime) -> str:
    if reached is not None:
        return "met" if reached <= due else "late"
    return "breached" if now > due else "running"


def sla_marks(
    detail: DealDetail, settings: Settings, now: dt.datetime
) -> tuple[pd.DataFrame, dict[str, dt.datetime]]:
    """One row per SLA the deal or one of its invoices has started: met, late, breached
    (past due, not reached) or running."""
    first: dict[str, dt.datetime] = {}
    for e in detail.events:
        if e.object_type == "deal" and (e.stage not in first or e.occurred_at < first[e.stage]):
            first[e.stage] = e.occurred_at
    deal = detail.deal
    amount = float(deal.amount) if deal.amount is not None else None
    cycle = settings.kpis.billing_cycle.timedelta
    rows = []
    for rule in settings.slas:
        if rule.from_stage not in DEAL_ORDER or rule.to_stage not in DEAL_ORDER:
            continue
        if matching_rule(settings.slas, rule.from_stage, deal.legal_entity, amount) is not rule:
            continue
        started = first.get(rule.from_stage)
        if started is None:
            continue
        due = deadline(rule, started, cycle)
        reached = min(
            (first[s] for s in DEAL_ORDER[DEAL_ORDER.index(rule.to_stage) :] if s in first),
            default=None,
        )
        rows.append(
            (
                "deal " + deal.id,
                rule.from_stage,
                rule.to_stage,
                started,
                due,
                reached,
                _mark(reached, due, now),
            )
        )
    for invoice in detail.invoices:
        stamps = {"invoiced": invoice["issued_at"], "posted": invoice["posted_at"]}
        stamps["paid"] = invoice["paid_at"]
        value = float(invoice["amount"]) if invoice["amount"] is not None else None
        for rule in settings.slas:
            if rule.from_stage not in INVOICE_ORDER or rule.to_stage not in INVOICE_ORDER:
                continue
            if matching_rule(settings.slas, rule.from_stage, deal.legal_entity, value) is not rule:
                continue
            started = stamps.get(rule.from_stage)
            if started is None:
                continue
            due = deadline(rule, started, cycle)
            reached = stamps.get(rule.to_stage)
            rows.append(
                (
                    "invoice " + invoice["id"],
                    rule.from_stage,
                    rule.to_stage,
                    started,
                    due,
                    reached,
                    _mark(reached, due, now),
                )
            )
    return pd.DataFrame(rows, columns=SLA_COLUMNS), first


def _frame(conn: Connection, query: object, columns: list[str]) -> pd.DataFrame:
    rows = conn.execute(query).all()  # type: ignore[call-overload]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=columns)
    for column in frame.columns:
        if frame[column].dtype == object and len(frame) and hasattr(frame[column].iloc[0], "value"):
            frame[column] = frame[column].astype(str)
    return frame


def deal_trace(
    conn: Connection, deal_id: str, settings: Settings, now: dt.datetime
) -> DealTrace | None:
    detail = deal_detail(conn, deal_id)
    if detail is None:
        return None
    extra = conn.execute(select(Deal.owner, Deal.region).where(Deal.id == deal_id)).one()
    marks, first = sla_marks(detail, settings, now)
    messages = _frame(
        conn,
        select(
            SyncMessage.id,
            SyncMessage.flow,
            SyncMessage.step,
            SyncMessage.system,
            SyncMessage.state,
            SyncMessage.attempts,
            SyncMessage.last_error_class,
            SyncMessage.trace_id,
            SyncMessage.created_at,
            SyncMessage.updated_at,
        )
        .where(SyncMessage.deal_id == deal_id)
        .order_by(SyncMessage.created_at, SyncMessage.id),
        [
            "message",
            "flow",
            "step",
            "system",
            "state",
            "attempts",
            "last_error_class",
            "trace_id",
            "created_at",
            "updated_at",
        ],
    )
    ids = [int(i) for i in messages["message"]]
    attempts = _frame(
        conn,
        select(
            SyncAttempt.message_id,
            SyncAttempt.attempt_no,
            SyncAttempt.outcome,
            SyncAttempt.error_class,
            SyncAttempt.http_status,
            SyncAttempt.started_at,
            SyncAttempt.duration_ms,
            SyncAttempt.trace_id,
        )
        .where(SyncAttempt.message_id.in_(ids))
        .order_by(SyncAttempt.started_at, SyncAttempt.id),
        [
            "message",
            "attempt",
            "outcome",
            "error_class",
            "http_status",
            "started_at",
            "duration_ms",
            "trace_id",
        ],
    )
    dead = _frame(
        conn,
        select(
            DeadLetter.id,
            DeadLetter.message_id,
            DeadLetter.flow,
            DeadLetter.system,
            DeadLetter.error_class,
            DeadLetter.state,
            DeadLetter.dead_at,
        )
        .where(DeadLetter.deal_id == deal_id)
        .order_by(DeadLetter.dead_at),
        ["dead_letter", "message", "flow", "system", "error_class", "state", "dead_at"],
    )
    replays = _frame(
        conn,
        select(
            Replay.id,
            Replay.dead_letter_id,
            Replay.requested_by,
            Replay.requested_at,
            Replay.outcome,
            Replay.detail,
            Replay.finished_at,
        )
        .where(Replay.message_id.in_(ids))
        .order_by(Replay.requested_at),
        ["replay", "dead_letter", "requested_by", "requested_at", "outcome", "detail", "finished"],
    )
    return DealTrace(
        detail=detail,
        owner=extra.owner,
        region=extra.region,
        sla_marks=marks,
        messages=messages,
        attempts=attempts,
        dead_letters=dead,
        replays=replays,
        first_reached=first,
    )


def search_deals(conn: Connection, text: str, limit: int = 20) -> DealPage:
    """Deals whose id, account id or one of whose invoice ids is exactly `text`."""
    return list_deals(conn, search=text.strip(), limit=limit)
