"""Spans and the lifecycle events derived from spans and CloudEvents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, IdPk, Json, ObjectId, SpanId, Timestamp, TraceId
from store.states import ObjectType, SpanStatus, System, enum_column


class Span(Base):
    """One finished span. Times are Unix nanoseconds, as OTLP carries them, so ingest
    converts nothing and durations stay exact."""

    __tablename__ = "spans"

    trace_id: Mapped[TraceId] = mapped_column(primary_key=True)
    span_id: Mapped[SpanId] = mapped_column(primary_key=True)
    parent_span_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(256))
    service: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    start_unix_nano: Mapped[int] = mapped_column(BigInteger)
    end_unix_nano: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[SpanStatus] = mapped_column(enum_column(SpanStatus, 8))
    status_message: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[Json]
    resource: Mapped[dict[str, Any] | None]
    events: Mapped[list[Any] | None]
    # The q2c.* attributes, lifted out of `attributes` so they can be indexed.
    deal_id: Mapped[str | None] = mapped_column(String(128))
    contract_id: Mapped[str | None] = mapped_column(String(128))
    project_id: Mapped[str | None] = mapped_column(String(128))
    invoice_id: Mapped[str | None] = mapped_column(String(128))
    system: Mapped[str | None] = mapped_column(String(16))
    flow: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))

    __table_args__ = (
        Index(None, "deal_id", "start_unix_nano"),
        Index(None, "flow", "start_unix_nano"),
        Index(None, "start_unix_nano"),
    )


class LifecycleEvent(Base):
    """One stage transition of one object. `dedup_key` makes a redelivered span or
    CloudEvent land once: `span:<trace>:<span>` or `ce:<source>:<id>`."""

    __tablename__ = "lifecycle_events"

    id: Mapped[IdPk]
    dedup_key: Mapped[str] = mapped_column(String(300))
    object_type: Mapped[ObjectType] = mapped_column(enum_column(ObjectType, 16))
    object_id: Mapped[ObjectId]
    deal_id: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[Timestamp]
    source_system: Mapped[System | None] = mapped_column(enum_column(System, 16))
    trace_id: Mapped[TraceId | None]
    span_id: Mapped[SpanId | None]
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    attributes: Mapped[dict[str, Any] | None]
    recorded_at: Mapped[Timestamp]

    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index(None, "deal_id", "occurred_at"),
        Index(None, "object_type", "object_id", "occurred_at"),
        Index(None, "stage", "occurred_at"),
    )


class WebhookSource(Base):
    """Per CloudEvent `source`, when the collector last stored an event from it and how
    many: kept in the transaction that stores the events, so the webhook freshness probe
    reads one row per source instead of scanning lifecycle_events."""

    __tablename__ = "webhook_sources"

    source: Mapped[str] = mapped_column(String(300), primary_key=True)
    last_received_at: Mapped[Timestamp]
    events: Mapped[int] = mapped_column(BigInteger)
