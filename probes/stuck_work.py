"""Stuck work: deals and invoices sitting in a stage past its SLA (DESIGN.md 1), with the
money at risk (contract value of a deal, amount of an invoice, in the reporting currency),
the system the next step waits on, and the cause when the outbox knows one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select

from probes.sla_clock import deadline, matching_rule
from store.objects import Contract, Deal, Invoice
from store.outbox import DeadLetter, SyncMessage
from store.states import DEAL_PATH, DeadLetterState, MessageState
from store.telemetry import LifecycleEvent
from throughline.config import Settings, StageSla

DEAL_ORDER = DEAL_PATH  # a cancelled deal waits for nothing
INVOICE_ORDER: tuple[str, ...] = ("billable_approved", "validated", "invoiced", "posted", "paid")
# An invoice whose posting failed still waits to be posted; its clock runs from issue.
INVOICE_WAITING_AS = {"posting_failed": "invoiced", "rejected": "validated"}

WAITING_ON_SYSTEM = {
    "contract_executed": "clm",
    "customer_provisioned": "erp",
    "project_activated": "psa",
    "billing_scheduled": "billing",
    "first_invoiced": "billing",
    "first_posted": "erp",
    "first_cash": "erp",
    "validated": "billing",
    "invoiced": "billing",
    "posted": "erp",
    "paid": "erp",
}

COLUMNS = [
    "object_type",
    "object_id",
    "deal_id",
    "account_name",
    "legal_entity",
    "region",
    "practice",
    "owner",
    "stage",
    "waiting_for",
    "system",
    "cause",
    "clock_started_at",
    "due_at",
    "age_days",
    "overdue_hours",
    "amount",
    "currency",
    "money_at_risk",
]


def _covered(order: Sequence[str], rule: StageSla) -> tuple[str, ...]:
    if rule.from_stage not in order or rule.to_stage not in order:
        return ()
    low, high = order.index(rule.from_stage), order.index(rule.to_stage)
    return tuple(order[low:high]) if low < high else ()


def _rate(settings: Settings, currency: str | None) -> float | None:
    return settings.kpis.fx_rates.get(currency) if currency else None


def _in_reporting(settings: Settings, amount: Any, currency: str | None) -> float | None:
    rate = _rate(settings, currency)
    if amount is None or rate is None:
        return None
    return float(amount) * rate


def _causes(conn: Connection, deal_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """deal -> (system, cause) from its latest open dead letter, else its message held for
    approval, else its retrying message."""
    if not deal_ids:
        return {}
    out: dict[str, tuple[str, str]] = {}
    ids = list(deal_ids)
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        for row in conn.execute(
            select(SyncMessage.deal_id, SyncMessage.system, SyncMessage.last_error_class)
            .where(SyncMessage.deal_id.in_(chunk))
            .where(SyncMessage.state == MessageState.PENDING)
            .where(SyncMessage.attempts > 0)
            .order_by(SyncMessage.updated_at)
        ):
            if row.deal_id is not None:
                out[row.deal_id] = (str(row.system), f"retrying: {row.last_error_class or 'error'}")
        for row in conn.execute(  # held at an approval checkpoint: a person has to decide
            select(SyncMessage.deal_id, SyncMessage.system, SyncMessage.last_error)
            .where(SyncMessage.deal_id.in_(chunk))
            .where(SyncMessage.state == MessageState.HELD)
            .order_by(SyncMessage.updated_at)
        ):
            if row.deal_id is not None:
                out[row.deal_id] = (
                    str(row.system),
                    (row.last_error or "waiting for approval")[:200],
                )
        for dead in conn.execute(
            select(DeadLetter.deal_id, DeadLetter.system, DeadLetter.error_class, DeadLetter.error)
            .where(DeadLetter.deal_id.in_(chunk))
            .where(DeadLetter.state.in_([DeadLetterState.OPEN, DeadLetterState.REPLAYING]))
            .order_by(DeadLetter.dead_at)
        ):
            cause = f"dead letter: {dead.error_class}"
            if dead.error_class == "validation" and dead.error:
                cause = f"validation error: {dead.error[:200]}"
            if dead.deal_id is not None:
                out[dead.deal_id] = (str(dead.system), cause)
    return out


def _deal_clocks(
    conn: Connection, stages: Sequence[str], from_stages: Sequence[str]
) -> dict[tuple[str, str], dt.datetime]:
    """(deal, stage) -> when the deal first reached that stage, for deals now in `stages`."""
    candidates = select(Deal.id).where(Deal.stage.in_(list(stages)))
    rows = conn.execute(
        select(LifecycleEvent.deal_id, LifecycleEvent.stage, func.min(LifecycleEvent.occurred_at))
        .where(LifecycleEvent.object_type == "deal")
        .where(LifecycleEvent.stage.in_(list(from_stages)))
        .where(LifecycleEvent.deal_id.in_(candidates))
        .group_by(LifecycleEvent.deal_id, LifecycleEvent.stage)
    )
    out: dict[tuple[str, str], dt.datetime] = {}
    for deal_id, stage, first in rows:
        if isinstance(first, str):  # SQLite returns an aggregate of timestamps as text
            first = dt.datetime.fromisoformat(first)
        if first.tzinfo is None:
            first = first.replace(tzinfo=dt.UTC)
        if deal_id is not None:
            out[(deal_id, stage)] = first
    return out


def _stuck_deals(conn: Connection, settings: Settings, now: dt.datetime) -> list[dict[str, Any]]:
    rules = [r for r in settings.slas if _covered(DEAL_ORDER, r)]
    covering: dict[str, list[str]] = {}
    for rule in rules:
        for stage in _covered(DEAL_ORDER, rule):
            covering.setdefault(stage, [])
            if rule.from_stage not in covering[stage]:
                covering[stage].append(rule.from_stage)
    if not covering:
        return []
    stages = sorted(covering)
    clocks = _deal_clocks(conn, stages, sorted({r.from_stage for r in rules}))
    contracts: dict[str, float] = {}
    for deal_id, contract_value, currency in conn.execute(
        select(Contract.deal_id, Contract.value, Contract.currency).where(
            Contract.deal_id.in_(select(Deal.id).where(Deal.stage.in_(stages)))
        )
    ):
        converted = _in_reporting(settings, contract_value, currency)
        if converted is not None:
            contracts[deal_id] = contracts.get(deal_id, 0.0) + converted
    cycle = settings.kpis.billing_cycle.timedelta
    out: list[dict[str, Any]] = []
    for deal in conn.execute(select(Deal).where(Deal.stage.in_(stages))):
        deal_amount = float(deal.amount) if deal.amount is not None else None
        for from_stage in covering[deal.stage or ""]:
            applies = matching_rule(settings.slas, from_stage, deal.legal_entity, deal_amount)
            if applies is None:
                continue
            if deal.stage == from_stage:
                started = deal.stage_entered_at
            elif from_stage == "closed_won":
                started = deal.closed_won_at
            else:
                started = clocks.get((deal.id, from_stage), deal.stage_entered_at)
            if started is None:
                continue
            due = deadline(applies, started, cycle)
            if now <= due:
                continue
            at_risk = contracts.get(deal.id, _in_reporting(settings, deal.amount, deal.currency))
            out.append(
                {
                    "object_type": "deal",
                    "object_id": deal.id,
                    "deal_id": deal.id,
                    "account_name": deal.account_name,
                    "legal_entity": deal.legal_entity,
                    "region": deal.region,
                    "practice": deal.practice,
                    "owner": deal.owner,
                    "stage": deal.stage,
                    "waiting_for": applies.to_stage,
                    "system": WAITING_ON_SYSTEM.get(DEAL_ORDER[DEAL_ORDER.index(deal.stage) + 1])
                    if deal.stage != DEAL_ORDER[-1]
                    else None,
                    "clock_started_at": started,
                    "due_at": due,
                    "amount": deal_amount,
                    "currency": deal.currency,
                    "money_at_risk": at_risk,
                }
            )
            break
    return out


def _stuck_invoices(conn: Connection, settings: Settings, now: dt.datetime) -> list[dict[str, Any]]:
    rules = [r for r in settings.slas if _covered(INVOICE_ORDER, r)]
    covering: dict[str, str] = {}
    for rule in rules:
        for stage in _covered(INVOICE_ORDER, rule):
            covering.setdefault(stage, rule.from_stage)
    stages = sorted(
        set(covering) | {s for s, like in INVOICE_WAITING_AS.items() if like in covering}
    )
    if not stages:
        return []
    cycle = settings.kpis.billing_cycle.timedelta
    out: list[dict[str, Any]] = []
    query = (
        select(
            Invoice,
            Deal.account_name,
            Deal.region,
            Deal.practice,
            Deal.owner,
            Deal.legal_entity.label("deal_entity"),
        )
        .join(Deal, Deal.id == Invoice.deal_id)
        .where(Invoice.stage.in_(stages))
    )
    for row in conn.execute(query):
        stage = INVOICE_WAITING_AS.get(row.stage, row.stage)
        from_stage = covering[stage]
        entity = row.legal_entity or row.deal_entity
        amount = float(row.amount) if row.amount is not None else None
        applies = matching_rule(settings.slas, from_stage, entity, amount)
        if applies is None:
            continue
        if from_stage == "invoiced" and row.issued_at is not None:
            started = row.issued_at
        else:
            started = row.stage_entered_at
        if started is None:
            continue
        due = deadline(applies, started, cycle)
        if now <= due:
            continue
        next_stage = INVOICE_ORDER[INVOICE_ORDER.index(stage) + 1]
        out.append(
            {
                "object_type": "invoice",
                "object_id": row.id,
                "deal_id": row.deal_id,
                "account_name": row.account_name,
                "legal_entity": entity,
                "region": row.region,
                "practice": row.practice,
                "owner": row.owner,
                "stage": row.stage,
                "waiting_for": applies.to_stage,
                "system": WAITING_ON_SYSTEM.get(next_stage),
                "clock_started_at": started,
                "due_at": due,
                "amount": amount,
                "currency": row.currency,
                "money_at_risk": _in_reporting(settings, row.amount, row.currency),
            }
        )
    return out


def stuck_work(conn: Connection, settings: Settings, now: dt.datetime) -> pd.DataFrame:
    """Every deal and invoice past its stage SLA at `now`, most money at risk first."""
    rows = _stuck_deals(conn, settings, now) + _stuck_invoices(conn, settings, now)
    causes = _causes(conn, sorted({r["deal_id"] for r in rows}))
    for row in rows:
        system, cause = causes.get(row["deal_id"], (None, None))
        if cause is not None:
            row["system"], row["cause"] = system, cause
        else:
            row["cause"] = f"no activity: waiting for {row['waiting_for']}"
        row["age_days"] = round((now - row["clock_started_at"]).total_seconds() / 86400, 2)
        row["overdue_hours"] = round((now - row["due_at"]).total_seconds() / 3600, 2)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        return frame
    return frame.sort_values(
        ["money_at_risk", "overdue_hours"], ascending=[False, False], na_position="last"
    ).reset_index(drop=True)
