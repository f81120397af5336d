"""Replays of dead letters: asking for one puts the original message back in the outbox (due
now) and records who asked, when and why; the worker that runs it records the outcome.

Exactly once holds because the message keeps its idempotency key: if the first try did
reach the target (a lost response), the replay finds the record there and does not create
a second one; the outcome then says `already_done`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from store.access import AuditEntry
from store.outbox import DeadLetter, Replay, SyncMessage
from store.states import DeadLetterState, MessageState, ReplayOutcome


@dataclass(frozen=True)
class ReplayRequest:
    replay_id: int
    dead_letter_id: int
    message_id: int


@dataclass(frozen=True)
class ReplayStatus:
    replay_id: int
    dead_letter_id: int
    outcome: ReplayOutcome
    detail: str | None
    requested_by: str
    requested_at: dt.datetime
    finished_at: dt.datetime | None


def request_replay(
    engine: Engine,
    dead_letter_ids: Sequence[int],
    actor: str,
    reason: str | None,
    now: dt.datetime,
) -> list[ReplayRequest]:
    """Queue open dead letters for replay; ones already replaying or replayed are skipped.
    Each replay is recorded and audited with `actor`."""
    requests: list[ReplayRequest] = []
    with engine.begin() as conn:
        letters = conn.execute(
            select(DeadLetter.id, DeadLetter.message_id)
            .where(DeadLetter.id.in_(list(dead_letter_ids)))
            .where(DeadLetter.state == DeadLetterState.OPEN)
            .order_by(DeadLetter.id)
        ).all()
        for letter_id, message_id in letters:
            replay_id = conn.execute(
                insert(Replay)
                .values(
                    dead_letter_id=letter_id,
                    message_id=message_id,
                    requested_by=actor,
                    reason=reason,
                    requested_at=now,
                    outcome=ReplayOutcome.PENDING,
                )
                .returning(Replay.id)
            ).scalar_one()
            conn.execute(
                update(DeadLetter)
                .where(DeadLetter.id == letter_id)
                .values(state=DeadLetterState.REPLAYING)
            )
            conn.execute(
                update(SyncMessage)
                .where(SyncMessage.id == message_id)
                .values(
                    state=MessageState.PENDING,
                    next_attempt_at=now,
                    locked_by=None,
                    locked_until=None,
                    updated_at=now,
                )
            )
            conn.execute(
                insert(AuditEntry).values(
                    at=now,
                    actor=actor,
                    action="dlq.replay",
                    object_type="dead_letter",
                    object_id=str(letter_id),
                    detail={"replay_id": replay_id, "message_id": message_id},
                    note=reason,
                )
            )
            requests.append(ReplayRequest(replay_id, letter_id, message_id))
    return requests


def replay_statuses(engine: Engine, replay_ids: Sequence[int]) -> list[ReplayStatus]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Replay).where(Replay.id.in_(list(replay_ids))).order_by(Replay.id)
        ).all()
    return [
        ReplayStatus(
            replay_id=r.id,
            dead_letter_id=r.dead_letter_id,
            outcome=ReplayOutcome(r.outcome),
            detail=r.detail,
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            finished_at=r.finished_at,
        )
        for r in rows
    ]
