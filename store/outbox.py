"""The durable outbox: sync messages, their attempts, dead letters, replays, approval
checkpoints and the change-capture cursors per system."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, BigId, IdPk, Json, Money, Name, Timestamp, TraceId
from store.states import (
    ApprovalState,
    AttemptOutcome,
    DeadLetterState,
    MessageState,
    ReplayOutcome,
    System,
    enum_column,
)


class SyncMessage(Base):
    """One step of one flow for one source record. The idempotency key is derived from the
    source record and sent to the target, so a retry or replay never writes twice."""

    __tablename__ = "sync_messages"

    id: Mapped[IdPk]
    flow: Mapped[Name]
    step: Mapped[Name]
    system: Mapped[System] = mapped_column(enum_column(System, 16))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    deal_id: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[Json]
    state: Mapped[MessageState] = mapped_column(enum_column(MessageState, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[Timestamp]
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[Timestamp | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_class: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict[str, Any] | None]
    trace_id: Mapped[TraceId | None]
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "deal_id"),
        Index(None, "flow", "state"),
    )


class SyncAttempt(Base):
    __tablename__ = "sync_attempts"

    id: Mapped[IdPk]
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sync_messages.id", ondelete="CASCADE")
    )
    attempt_no: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[AttemptOutcome] = mapped_column(enum_column(AttemptOutcome, 16))
    error_class: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[Timestamp]
    duration_ms: Mapped[int] = mapped_column(Integer)
    trace_id: Mapped[TraceId | None]

    __table_args__ = (
        UniqueConstraint("message_id", "attempt_no"),
        Index(None, "started_at"),
    )


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[IdPk]
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sync_messages.id", ondelete="CASCADE")
    )
    flow: Mapped[Name]
    system: Mapped[System] = mapped_column(enum_column(System, 16))
    error_class: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    deal_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[DeadLetterState] = mapped_column(enum_column(DeadLetterState, 16))
    dead_at: Mapped[Timestamp]
    resolved_at: Mapped[Timestamp | None]

    __table_args__ = (
        UniqueConstraint("message_id"),
        Index(None, "state", "error_class"),
        Index(None, "deal_id"),
        Index(None, "dead_at"),
    )


class Replay(Base):
    """One replay of one dead letter: who asked, why, and what came of it."""

    __tablename__ = "replays"

    id: Mapped[IdPk]
    dead_letter_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("dead_letters.id", ondelete="CASCADE")
    )
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sync_messages.id", ondelete="CASCADE")
    )
    requested_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[Timestamp]
    outcome: Mapped[ReplayOutcome] = mapped_column(enum_column(ReplayOutcome, 16))
    detail: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[Timestamp | None]

    __table_args__ = (Index(None, "dead_letter_id"), Index(None, "requested_at"))


class Approval(Base):
    """A step held at an approval checkpoint (an invoice above the threshold waits before
    its AR posting): what it holds and why, and who decided, when and why. `key` names
    the object (`invoice:<id>`): one checkpoint per object, however often its step runs."""

    __tablename__ = "approvals"

    id: Mapped[IdPk]
    key: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sync_messages.id", ondelete="CASCADE")
    )
    flow: Mapped[Name]
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128))
    deal_id: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[Money]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[ApprovalState] = mapped_column(enum_column(ApprovalState, 16))
    requested_at: Mapped[Timestamp]
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[Timestamp | None]
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("key"), Index(None, "state", "requested_at"))


class SyncCursor(Base):
    """Where change capture left off, per system and stream, so a restart resumes."""

    __tablename__ = "sync_cursors"

    system: Mapped[System] = mapped_column(enum_column(System, 16), primary_key=True)
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime]
