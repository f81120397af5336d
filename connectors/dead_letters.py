"""Finding dead letters: by flow, system, error class, deal and time, for the command line,
the API and the dashboard."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from store.outbox import DeadLetter, SyncAttempt, SyncMessage
from store.states import DeadLetterState


@dataclass(frozen=True)
class DeadLetterFilter:
    flow: str | None = None
    system: str | None = None
    error_class: str | None = None
    deal_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    state: DeadLetterState | None = DeadLetterState.OPEN


def find_dead_letters(conn: Connection, where: DeadLetterFilter, limit: int = 1000) -> list[Any]:
    query = (
        select(DeadLetter, SyncMessage.step, SyncMessage.idempotency_key, SyncMessage.attempts)
        .join(SyncMessage, SyncMessage.id == DeadLetter.message_id)
        .order_by(DeadLetter.dead_at, DeadLetter.id)
        .limit(limit)
    )
    for column, value in (
        (DeadLetter.flow, where.flow),
        (DeadLetter.system, where.system),
        (DeadLetter.error_class, where.error_class),
        (DeadLetter.deal_id, where.deal_id),
        (DeadLetter.state, where.state),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(DeadLetter.dead_at >= where.since)
    if where.until is not None:
        query = query.where(DeadLetter.dead_at < where.until)
    with Session(conn) as session:
        return list(session.execute(query).all())


def dead_letter_detail(conn: Connection, letter_id: int) -> dict[str, Any] | None:
    session = Session(conn)
    row = session.execute(
        select(DeadLetter, SyncMessage)
        .join(SyncMessage, SyncMessage.id == DeadLetter.message_id)
        .where(DeadLetter.id == letter_id)
    ).first()
    if row is None:
        return None
    letter, message = row
    attempts = session.scalars(
        select(SyncAttempt)
        .where(SyncAttempt.message_id == message.id)
        .order_by(SyncAttempt.attempt_no)
    ).all()
    return {"dead_letter": letter, "message": message, "attempts": list(attempts)}
