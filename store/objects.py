"""The objects of the event log: deals and what hangs off them, each with its current
stage and money. Lifecycle events are the history; these rows are the present."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, Currency, Money, ObjectId, Timestamp


class Deal(Base):
    """A won opportunity, the root object. `id` is the CRM opportunity id."""

    __tablename__ = "deals"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(128))
    account_name: Mapped[str | None] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(256))
    legal_entity: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    practice: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(128))
    currency: Mapped[Currency | None]
    amount: Mapped[Money | None]
    stage: Mapped[str | None] = mapped_column(String(32))
    stage_entered_at: Mapped[Timestamp | None]
    closed_won_at: Mapped[Timestamp | None]
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (
        Index(None, "stage", "stage_entered_at"),
        Index(None, "account_id"),
        Index(None, "closed_won_at"),
    )


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    deal_id: Mapped[ObjectId] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    billing_model: Mapped[str | None] = mapped_column(String(32))
    currency: Mapped[Currency | None]
    value: Mapped[Money | None]
    cap: Mapped[Money | None]
    po_number: Mapped[str | None] = mapped_column(String(64))
    rate_card: Mapped[dict[str, Any] | None]
    stage: Mapped[str | None] = mapped_column(String(32))
    stage_entered_at: Mapped[Timestamp | None]
    executed_at: Mapped[Timestamp | None]
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (Index(None, "deal_id"), Index(None, "stage", "stage_entered_at"))


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    deal_id: Mapped[ObjectId] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contracts.id", ondelete="SET NULL"))
    name: Mapped[str | None] = mapped_column(String(256))
    practice: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(32))
    stage_entered_at: Mapped[Timestamp | None]
    activated_at: Mapped[Timestamp | None]
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (Index(None, "deal_id"), Index(None, "stage", "stage_entered_at"))


class Invoice(Base):
    __tablename__ = "invoices"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    deal_id: Mapped[ObjectId] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    contract_id: Mapped[str | None] = mapped_column(ForeignKey("contracts.id", ondelete="SET NULL"))
    legal_entity: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[Currency | None]
    amount: Mapped[Money | None]
    amount_paid: Mapped[Money] = mapped_column(default=Decimal("0"))
    stage: Mapped[str | None] = mapped_column(String(32))
    stage_entered_at: Mapped[Timestamp | None]
    has_exception: Mapped[bool] = mapped_column(default=False)
    issued_at: Mapped[Timestamp | None]
    due_at: Mapped[Timestamp | None]
    posted_at: Mapped[Timestamp | None]
    paid_at: Mapped[Timestamp | None]
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (
        Index(None, "deal_id"),
        Index(None, "stage", "stage_entered_at"),
        Index(None, "issued_at"),
    )


class BillableItem(Base):
    """Approved time or a completed milestone: what unbilled WIP and leakage are made of."""

    __tablename__ = "billable_items"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    deal_id: Mapped[ObjectId] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    invoice_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    rate: Mapped[Money]
    amount: Mapped[Money]
    invoiced_amount: Mapped[Money | None]
    currency: Mapped[Currency]
    consultant: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str | None] = mapped_column(String(32))
    approved_at: Mapped[Timestamp | None]
    invoiced_at: Mapped[Timestamp | None]
    created_at: Mapped[Timestamp]

    __table_args__ = (
        Index(None, "deal_id"),
        Index(None, "invoice_id"),
        Index(None, "approved_at"),
    )


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    invoice_id: Mapped[ObjectId] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    deal_id: Mapped[ObjectId] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    amount: Mapped[Money]
    currency: Mapped[Currency]
    received_at: Mapped[Timestamp]
    created_at: Mapped[Timestamp]

    __table_args__ = (Index(None, "invoice_id"), Index(None, "received_at"))


class Consultant(Base):
    """A PSA user who books time; utilization divides approved hours by this capacity."""

    __tablename__ = "consultants"

    id: Mapped[ObjectId] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str | None] = mapped_column(String(64))
    practice: Mapped[str | None] = mapped_column(String(64))
    legal_entity: Mapped[str | None] = mapped_column(String(64))
    weekly_capacity_hours: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (Index(None, "practice", "legal_entity"),)


__all__ = ["BillableItem", "Consultant", "Contract", "Deal", "Invoice", "Payment"]
