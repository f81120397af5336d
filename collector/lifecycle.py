"""Lifecycle rules: what a stage observation (an OK span with `q2c.stage`, or a CloudEvent)
is about, and how it moves an object's state. Pure functions on row dicts; storing them is
`collector.lifecycle_store`'s job.

The rules are written down in docs/lifecycle.md. In short: every event is kept once
(`dedup_key`), the history keeps everything, and an object's current stage only moves
forward, so a late, out-of-order delivery never moves it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from collector.span_record import BILLABLE_ID, PAYMENT_ID, SpanRecord, parse_decimal
from store.states import DealStage, InvoiceStage, ObjectType

DEAL_RANK = {stage.value: n for n, stage in enumerate(DealStage)}
# Invoice and billable-item ranks; exceptions sit where they interrupt the happy path.
ITEM_RANK = {
    "billable_approved": 0.0,
    "validated": 1.0,
    "rejected": 1.5,
    "invoiced": 2.0,
    "posting_failed": 2.5,
    "posted": 3.0,
    "disputed": 3.5,
    "paid": 4.0,
    "credited": 5.0,
}
EXCEPTIONS = frozenset(
    s.value
    for s in (
        InvoiceStage.REJECTED,
        InvoiceStage.POSTING_FAILED,
        InvoiceStage.DISPUTED,
        InvoiceStage.CREDITED,
    )
)
ITEM_STAGES = frozenset({"billable_approved", "validated", "rejected"})
INVOICE_STAGES = frozenset({"invoiced", "posted", "paid", "posting_failed", "disputed", "credited"})
FIRST_OF = {"invoiced": "first_invoiced", "posted": "first_posted", "paid": "first_cash"}
KNOWN_STAGES = frozenset(DEAL_RANK) | frozenset(ITEM_RANK)

# Dimension attributes carried on spans (`q2c.<name>`) or in CloudEvent data (`<name>`).
DEAL_DIMENSIONS = {
    "legal_entity": "legal_entity",
    "region": "region",
    "practice": "practice",
    "account.id": "account_id",
    "account.name": "account_name",
    "deal.name": "name",
    "owner": "owner",
}

# The span attributes observation_from_span reads, and where they go in `details`.
_DIMENSION_KEYS = tuple((f"q2c.{name}", column) for name, column in DEAL_DIMENSIONS.items())
_EXTRA_KEYS = tuple(
    (f"q2c.{extra}", extra)
    for extra in ("billing_model", "quantity", "rate", "kind", "consultant", "po_number")
)


@dataclass(frozen=True)
class Observation:
    """One stage reached by one business object, as a span or a CloudEvent reported it."""

    dedup_key: str
    stage: str
    occurred_at: dt.datetime
    deal_id: str | None
    ids: Mapping[str, str]  # object type -> id (contract, project, invoice, billable_item, payment)
    amount: Decimal | None = None
    currency: str | None = None
    source_system: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # dimensions, quantity, rate...


def observation_from_span(record: SpanRecord) -> Observation | None:
    """An OK span with a known `q2c.stage` is an observation; anything else is not."""
    if record.status != "ok" or record.stage not in KNOWN_STAGES:
        return None
    attributes: dict[str, Any] = orjson.loads(record.attributes)
    ids = {
        key: str(value)
        for key, value in (
            ("contract", record.contract_id),
            ("project", record.project_id),
            ("invoice", record.invoice_id),
            ("billable_item", attributes.get(BILLABLE_ID)),
            ("payment", attributes.get(PAYMENT_ID)),
        )
        if value
    }
    details = {
        column: value
        for key, column in _DIMENSION_KEYS
        if (value := attributes.get(key)) is not None
    }
    for key, extra in _EXTRA_KEYS:
        if (value := attributes.get(key)) is not None:
            details[extra] = value
    return Observation(
        dedup_key=f"span:{record.trace_id}:{record.span_id}",
        stage=record.stage,
        occurred_at=dt.datetime.fromtimestamp(record.end_unix_nano / 1e9, dt.UTC),
        deal_id=record.deal_id,
        ids=ids,
        amount=parse_decimal(record.amount),
        currency=record.currency,
        source_system=record.system,
        trace_id=record.trace_id,
        span_id=record.span_id,
        details=details,
    )


def targets(observation: Observation) -> list[tuple[ObjectType, str]]:
    """The objects an observation is about, in the order they are applied."""
    stage, ids, deal = observation.stage, observation.ids, observation.deal_id
    out: list[tuple[ObjectType, str]] = []
    if "billable_item" in ids and (stage in ITEM_STAGES or stage == "invoiced"):
        out.append((ObjectType.BILLABLE_ITEM, ids["billable_item"]))
    elif stage in ITEM_STAGES or stage in INVOICE_STAGES:
        if "invoice" in ids:
            out.append((ObjectType.INVOICE, ids["invoice"]))
        if stage == "paid" and "payment" in ids:
            out.append((ObjectType.PAYMENT, ids["payment"]))
    elif stage == "contract_executed" and "contract" in ids:
        out.append((ObjectType.CONTRACT, ids["contract"]))
    elif stage == "project_activated" and "project" in ids:
        out.append((ObjectType.PROJECT, ids["project"]))
    if stage in DEAL_RANK and deal:
        out.append((ObjectType.DEAL, deal))
    return out


Row = dict[str, Any]


def advance(row: Row, rank: Mapping[str, float], obs: Observation) -> None:
    """Move `row` to the observed stage if that is forward, or an exception at or after
    the current stage's start."""
    advance_to(row, rank, obs.stage, obs.occurred_at)


def advance_to(row: Row, rank: Mapping[str, float], stage: str, occurred_at: dt.datetime) -> None:
    new_rank = rank.get(stage)
    if new_rank is None:
        return
    current, entered = row.get("stage"), row.get("stage_entered_at")
    old_rank = rank.get(current) if current else None
    forward = old_rank is None or new_rank > old_rank
    exception_now = stage in EXCEPTIONS and (entered is None or occurred_at >= entered)
    if forward or exception_now:
        row["stage"] = stage
        row["stage_entered_at"] = occurred_at


def earliest(row: Row, column: str, moment: dt.datetime) -> None:
    if row.get(column) is None or moment < row[column]:
        row[column] = moment


def money(row: Row, obs: Observation, amount_column: str) -> None:
    if obs.amount is not None:
        row[amount_column] = obs.amount
    if obs.currency:
        row["currency"] = obs.currency


def apply_deal(row: Row, obs: Observation) -> None:
    advance(row, DEAL_RANK, obs)
    if obs.stage == "closed_won":
        earliest(row, "closed_won_at", obs.occurred_at)
        money(row, obs, "amount")
    for column in DEAL_DIMENSIONS.values():
        if obs.details.get(column) is not None:
            row[column] = str(obs.details[column])


def apply_first(row: Row, stage: str, occurred_at: dt.datetime) -> None:
    """The deal reaches a derived stage (first_invoiced, first_posted, first_cash): what
    `apply_deal` does for it, as it carries no money and no dimensions."""
    advance_to(row, DEAL_RANK, stage, occurred_at)


def apply_contract(row: Row, obs: Observation) -> None:
    advance(row, {"contract_executed": 0}, obs)
    earliest(row, "executed_at", obs.occurred_at)
    money(row, obs, "value")
    for key in ("billing_model", "po_number"):
        if key in obs.details:
            row[key] = str(obs.details[key])


def apply_project(row: Row, obs: Observation, contract_known: bool) -> None:
    advance(row, {"project_activated": 0}, obs)
    earliest(row, "activated_at", obs.occurred_at)
    if contract_known:
        row["contract_id"] = obs.ids["contract"]
    if "practice" in obs.details:
        row["practice"] = str(obs.details["practice"])


def apply_invoice(row: Row, obs: Observation) -> bool:
    """Move an invoice; True when it reached invoiced / posted / paid (for the deal's
    first_* stages)."""
    if obs.stage in EXCEPTIONS:
        row["has_exception"] = True
    if obs.stage == "paid":
        row["amount_paid"] = (row.get("amount_paid") or Decimal("0")) + (obs.amount or 0)
        amount = row.get("amount")
        if obs.amount is not None and (amount is None or row["amount_paid"] < amount):
            return False  # a partial payment
        earliest(row, "paid_at", obs.occurred_at)
    elif obs.stage == "invoiced":
        earliest(row, "issued_at", obs.occurred_at)
        money(row, obs, "amount")
        if "legal_entity" in obs.details:
            row["legal_entity"] = str(obs.details["legal_entity"])
    elif obs.stage == "posted":
        earliest(row, "posted_at", obs.occurred_at)
    advance(row, ITEM_RANK, obs)
    return obs.stage in FIRST_OF


def apply_billable(row: Row, obs: Observation) -> None:
    advance(row, ITEM_RANK, obs)
    if obs.stage == "billable_approved":
        earliest(row, "approved_at", obs.occurred_at)
    elif obs.stage == "invoiced":
        earliest(row, "invoiced_at", obs.occurred_at)


def new_billable(obs: Observation) -> Row:
    amount = obs.amount or Decimal("0")
    return {
        "kind": str(obs.details.get("kind", "time")),
        "quantity": parse_decimal(obs.details.get("quantity")) or Decimal("1"),
        "rate": parse_decimal(obs.details.get("rate")) or amount,
        "amount": amount,
        "currency": obs.currency or "USD",
        "consultant": obs.details.get("consultant"),
    }
