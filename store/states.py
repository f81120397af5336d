"""The enumerations stored in the schema: systems, lifecycle stages and the states of things."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Enum


class System(enum.StrEnum):
    CRM = "crm"
    CLM = "clm"
    PSA = "psa"
    BILLING = "billing"
    ERP = "erp"


class ObjectType(enum.StrEnum):
    DEAL = "deal"
    CONTRACT = "contract"
    PROJECT = "project"
    INVOICE = "invoice"
    BILLABLE_ITEM = "billable_item"
    PAYMENT = "payment"


class DealStage(enum.StrEnum):
    """Canonical deal lifecycle, in order (DESIGN.md 1), then `cancelled`: the contract was
    cancelled (and flow 2 closed what it had provisioned); a deal never leaves it."""

    CLOSED_WON = "closed_won"
    CONTRACT_EXECUTED = "contract_executed"
    CUSTOMER_PROVISIONED = "customer_provisioned"
    PROJECT_ACTIVATED = "project_activated"
    BILLING_SCHEDULED = "billing_scheduled"
    FIRST_INVOICED = "first_invoiced"
    FIRST_POSTED = "first_posted"
    FIRST_CASH = "first_cash"
    CANCELLED = "cancelled"


DEAL_PATH: tuple[str, ...] = tuple(s.value for s in DealStage if s is not DealStage.CANCELLED)
"""The deal stages a deal goes through in order: `cancelled` is where it leaves that path."""


class InvoiceStage(enum.StrEnum):
    """Invoice lifecycle in order, then the exception stages."""

    BILLABLE_APPROVED = "billable_approved"
    VALIDATED = "validated"
    INVOICED = "invoiced"
    POSTED = "posted"
    PAID = "paid"
    REJECTED = "rejected"
    POSTING_FAILED = "posting_failed"
    DISPUTED = "disputed"
    CREDITED = "credited"


INVOICE_EXCEPTIONS = frozenset(
    {
        InvoiceStage.REJECTED,
        InvoiceStage.POSTING_FAILED,
        InvoiceStage.DISPUTED,
        InvoiceStage.CREDITED,
    }
)
ALL_STAGES: tuple[str, ...] = tuple(s.value for s in DealStage) + tuple(
    s.value for s in InvoiceStage
)


class SpanStatus(enum.StrEnum):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


class MessageState(enum.StrEnum):
    """Outbox message: pending -> running -> succeeded, or back to pending, or dead; or
    held until a person approves it (an approval checkpoint), then pending again."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    HELD = "held"


class ApprovalState(enum.StrEnum):
    """An approval checkpoint: open until a person approves or rejects what it holds."""

    OPEN = "open"
    APPROVED = "approved"
    REJECTED = "rejected"


class AttemptOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRYABLE = "retryable"
    FATAL = "fatal"
    HELD = "held"
    """the step stopped at an approval checkpoint: not an attempt, none is stored"""


class DeadLetterState(enum.StrEnum):
    OPEN = "open"
    REPLAYING = "replaying"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


class ReplayOutcome(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    ALREADY_DONE = "already_done"
    FAILED = "failed"


class ProbeStatus(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class JobRunStatus(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class ProbeKind(enum.StrEnum):
    HEALTH = "health"
    RECONCILIATION = "reconciliation"
    FRESHNESS = "freshness"
    STUCK = "stuck"


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(enum.StrEnum):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class Role(enum.StrEnum):
    EXECUTIVE = "executive"
    FINANCE = "finance"
    ONCALL = "oncall"
    ADMIN = "admin"


def enum_column(enum_cls: type[enum.StrEnum], length: int = 24) -> Enum:
    """A portable enum column: VARCHAR holding the member's value, same on both databases."""
    values: Any = lambda e: [m.value for m in e]  # noqa: E731 - SQLAlchemy wants a callable
    return Enum(
        enum_cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=values,
        validate_strings=True,
    )
