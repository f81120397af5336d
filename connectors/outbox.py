"""The durable outbox: every sync step is a message keyed by its idempotency key. Workers
claim due messages (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several share the load; one
atomic UPDATE ... RETURNING on SQLite), run them, and record each attempt. Retryable
failures come back with exponential backoff; after the configured attempts, or at once for
a fatal error, the message becomes a dead letter naming the deal it blocks.

A message whose worker died mid-run (its lease expired) is claimed again; the idempotency
key makes the second run find what the first one created.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.trace import Span
from sqlalchemy import Connection, Engine, and_, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.tracing import SpanSink
from store.outbox import Approval, DeadLetter, Replay, SyncAttempt, SyncMessage
from store.states import (
    ApprovalState,
    AttemptOutcome,
    DeadLetterState,
    MessageState,
    ReplayOutcome,
    System,
)


@dataclass(frozen=True)
class Step:
    """A unit of sync work to do once: `idempotency_key` is derived from the source record."""

    flow: str
    step: str
    system: System
    idempotency_key: str
    payload: dict[str, Any]
    deal_id: str | None = None


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    flow: str
    step: str
    system: System
    idempotency_key: str
    payload: dict[str, Any]
    deal_id: str | None
    attempt: int  # 1 for the first try


@dataclass(frozen=True)
class BackoffPolicy:
    max_attempts: int = 8
    base: dt.timedelta = dt.timedelta(seconds=30)
    cap: dt.timedelta = dt.timedelta(hours=1)

    def delay(self, attempt: int, hint_seconds: float | None, rng: random.Random) -> dt.timedelta:
        """Exponential with full jitter, never shorter than the system's Retry-After."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempt - 1))
        seconds = rng.uniform(ceiling / 2, ceiling)
        if hint_seconds:
            seconds = max(seconds, hint_seconds)
        return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Outcome:
    """What running a message came to."""

    kind: AttemptOutcome
    duration_ms: int
    result: dict[str, Any] | None = None
    error_class: str | None = None
    error: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    trace_id: str | None = None
    already_done: bool = False  # the target already held the record (a lost response)
    follow_ups: Sequence[Step] = field(default_factory=tuple)
    span: Span | None = field(default=None, compare=False, repr=False)
    """the ended span of the run (stored with the outcome through a span sink)"""
    observed: Sequence[Span] = field(default=(), compare=False, repr=False)
    """observation spans of the exception stage a failed run reached (stored with it)"""
    approval_id: int | None = None
    """the approval a held run waits for (connectors.approvals)"""


APPROVAL_REJECTED = "approval_rejected"
"""error class of the dead letter a rejected approval leaves"""


def rejection_text(approval_id: int, actor: str | None, note: str | None) -> str:
    return f"approval {approval_id} rejected by {actor or 'someone'}" + (
        f": {note}" if note else ""
    )


def _insert_ignore(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(SyncMessage).on_conflict_do_nothing(index_elements=["idempotency_key"])


def enqueue(conn: Connection, steps: Sequence[Step], now: dt.datetime) -> int:
    """Add steps not queued before (by idempotency key); return how many were new."""
    return len(enqueue_new(conn, steps, now))


def enqueue_new(conn: Connection, steps: Sequence[Step], now: dt.datetime) -> set[str]:
    """Add steps not queued before; return the keys of the ones that were new."""
    if not steps:
        return set()
    rows = [
        {
            "flow": s.flow,
            "step": s.step,
            "system": s.system,
            "idempotency_key": s.idempotency_key,
            "deal_id": s.deal_id,
            "payload": s.payload,
            "state": MessageState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for s in steps
    ]
    before = (
        conn.execute(
            select(SyncMessage.idempotency_key).where(
                SyncMessage.idempotency_key.in_([s.idempotency_key for s in steps])
            )
        )
        .scalars()
        .all()
    )
    conn.execute(_insert_ignore(conn), rows)
    return {s.idempotency_key for s in steps} - set(before)


def claim(
    engine: Engine,
    worker: str,
    now: dt.datetime,
    *,
    limit: int = 20,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    systems: Collection[System] | None = None,
) -> list[ClaimedMessage]:
    """Take up to `limit` due messages for `worker` (pending and due, or running with an
    expired lease), optionally only for `systems`."""
    due = or_(
        and_(SyncMessage.state == MessageState.PENDING, SyncMessage.next_attempt_at <= now),
        and_(SyncMessage.state == MessageState.RUNNING, SyncMessage.locked_until < now),
    )
    candidates = select(SyncMessage.id).where(due)
    if systems is not None:
        if not systems:
            return []
        candidates = candidates.where(SyncMessage.system.in_(list(systems)))
    candidates = (
        candidates.order_by(SyncMessage.next_attempt_at, SyncMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(SyncMessage)
        .where(SyncMessage.id.in_(candidates.scalar_subquery()))
        .values(
            state=MessageState.RUNNING,
            locked_by=worker,
            locked_until=now + lease,
            attempts=SyncMessage.attempts + 1,
            updated_at=now,
        )
        .returning(
            SyncMessage.id,
            SyncMessage.flow,
            SyncMessage.step,
            SyncMessage.system,
            SyncMessage.idempotency_key,
            SyncMessage.payload,
            SyncMessage.deal_id,
            SyncMessage.attempts,
        )
    )
    with engine.begin() as conn:
        rows = conn.execute(statement).all()
    claimed = [
        ClaimedMessage(
            id=r.id,
            flow=r.flow,
            step=r.step,
            system=System(r.system),
            idempotency_key=r.idempotency_key,
            payload=r.payload,
            deal_id=r.deal_id,
            attempt=r.attempts,
        )
        for r in rows
    ]
    return sorted(claimed, key=lambda m: m.id)


def record(
    engine: Engine,
    message: ClaimedMessage,
    outcome: Outcome,
    now: dt.datetime,
    *,
    worker: str,
    policy: BackoffPolicy = BackoffPolicy(),
    rng: random.Random | None = None,
    sink: SpanSink | None = None,
) -> MessageState:
    """Store the attempt and move the message on: done, back to pending, or dead. Follow-up
    steps are queued in the same transaction, so a step and its successors never part; so
    is the run's span, given a `sink`, so the stage a done message reached is never lost
    to an exporter that had not sent it yet."""
    rng = rng or random.Random()
    started = now - dt.timedelta(milliseconds=outcome.duration_ms)
    with engine.begin() as conn:
        owner = conn.execute(
            select(SyncMessage.locked_by, SyncMessage.state).where(SyncMessage.id == message.id)
        ).one()
        if owner.locked_by != worker or owner.state != MessageState.RUNNING:
            # Our lease ran out and another worker took the message over: its run counts.
            return MessageState(owner.state)
        if outcome.kind is AttemptOutcome.HELD:
            state, outcome = _hold(conn, message, outcome, now)
            if sink is not None and outcome.span is not None:
                sink(conn, [outcome.span])
            return state
        conn.execute(
            insert(SyncAttempt).values(
                message_id=message.id,
                attempt_no=message.attempt,
                outcome=outcome.kind,
                error_class=outcome.error_class,
                error=outcome.error,
                http_status=outcome.http_status,
                started_at=started,
                duration_ms=outcome.duration_ms,
                trace_id=outcome.trace_id,
            )
        )
        base = {
            "locked_by": None,
            "locked_until": None,
            "updated_at": now,
            "trace_id": outcome.trace_id,
        }
        if outcome.kind is AttemptOutcome.SUCCEEDED:
            state = MessageState.SUCCEEDED
            values = {
                **base,
                "state": state,
                "result": outcome.result,
                "last_error": None,
                "last_error_class": None,
            }
            enqueue(conn, outcome.follow_ups, now)
        elif outcome.kind is AttemptOutcome.RETRYABLE and message.attempt < policy.max_attempts:
            state = MessageState.PENDING
            delay = policy.delay(message.attempt, outcome.retry_after, rng)
            values = {
                **base,
                "state": state,
                "next_attempt_at": now + delay,
                "last_error": outcome.error,
                "last_error_class": outcome.error_class,
            }
        else:
            state = MessageState.DEAD
            values = {
                **base,
                "state": state,
                "last_error": outcome.error,
                "last_error_class": outcome.error_class,
            }
        conn.execute(update(SyncMessage).where(SyncMessage.id == message.id).values(**values))
        _settle_dead_letter(conn, message, outcome, state, now)
        if sink is not None and outcome.span is not None:
            sink(conn, [outcome.span, *outcome.observed])
    return state


def _hold(
    conn: Connection, message: ClaimedMessage, outcome: Outcome, now: dt.datetime
) -> tuple[MessageState, Outcome]:
    """Hold a message stopped at an approval checkpoint. A hold is not an attempt: none is
    stored and the count goes back, so the approved run is the same attempt. An approval
    decided while the step ran settles it at once (due now, or dead when rejected)."""
    decided = conn.execute(
        select(Approval.state, Approval.decided_by, Approval.note).where(
            Approval.id == outcome.approval_id
        )
    ).first()
    values: dict[str, Any] = {
        "locked_by": None,
        "locked_until": None,
        "updated_at": now,
        "attempts": SyncMessage.attempts - 1,
        "last_error": outcome.error,
        "last_error_class": outcome.error_class,
    }
    state = MessageState.HELD
    if decided is not None and decided.state == ApprovalState.APPROVED:
        state = MessageState.PENDING
        values |= {"next_attempt_at": now, "last_error": None, "last_error_class": None}
    elif decided is not None and decided.state == ApprovalState.REJECTED:
        state = MessageState.DEAD
        text = rejection_text(outcome.approval_id or 0, decided.decided_by, decided.note)
        outcome = replace(outcome, error_class=APPROVAL_REJECTED, error=text)
        values |= {"last_error": text, "last_error_class": APPROVAL_REJECTED}
    conn.execute(
        update(SyncMessage).where(SyncMessage.id == message.id).values(state=state, **values)
    )
    _settle_dead_letter(conn, message, outcome, state, now)
    return state, outcome


def settle_death(
    conn: Connection, message_id: int, error_class: str, error: str, now: dt.datetime
) -> None:
    """What a worker's fatal outcome does to its dead letter, for a message that died
    outside a run (a rejected approval): the dead letter opened (or opened again), and a
    replay that was waiting on it settled as failed."""
    row = conn.execute(
        select(
            SyncMessage.flow,
            SyncMessage.step,
            SyncMessage.system,
            SyncMessage.idempotency_key,
            SyncMessage.deal_id,
            SyncMessage.attempts,
        ).where(SyncMessage.id == message_id)
    ).one()
    message = ClaimedMessage(
        message_id,
        row.flow,
        row.step,
        System(row.system),
        row.idempotency_key,
        {},
        row.deal_id,
        row.attempts,
    )
    outcome = Outcome(AttemptOutcome.FATAL, 0, error_class=error_class, error=error)
    _settle_dead_letter(conn, message, outcome, MessageState.DEAD, now)


def _settle_dead_letter(
    conn: Connection,
    message: ClaimedMessage,
    outcome: Outcome,
    state: MessageState,
    now: dt.datetime,
) -> None:
    """Open a dead letter for a message that died; settle the replay of one that was
    being replayed."""
    letter = conn.execute(
        select(DeadLetter.id, DeadLetter.state).where(DeadLetter.message_id == message.id)
    ).first()
    if state is MessageState.DEAD:
        values = {
            "error_class": outcome.error_class or "unknown",
            "error": outcome.error,
            "state": DeadLetterState.OPEN,
            "dead_at": now,
            "resolved_at": None,
        }
        if letter is None:
            conn.execute(
                insert(DeadLetter).values(
                    message_id=message.id,
                    flow=message.flow,
                    system=message.system,
                    deal_id=message.deal_id,
                    **values,
                )
            )
        else:
            conn.execute(update(DeadLetter).where(DeadLetter.id == letter.id).values(**values))
    if letter is None or letter.state != DeadLetterState.REPLAYING:
        return
    if state is MessageState.SUCCEEDED:
        replay_outcome = (
            ReplayOutcome.ALREADY_DONE if outcome.already_done else ReplayOutcome.SUCCEEDED
        )
        conn.execute(
            update(DeadLetter)
            .where(DeadLetter.id == letter.id)
            .values(state=DeadLetterState.REPLAYED, resolved_at=now)
        )
    elif state is MessageState.DEAD:
        replay_outcome = ReplayOutcome.FAILED
    else:
        return  # retrying: the replay is still running
    conn.execute(
        update(Replay)
        .where(Replay.dead_letter_id == letter.id, Replay.outcome == ReplayOutcome.PENDING)
        .values(
            outcome=replay_outcome,
            finished_at=now,
            detail=outcome.error
            if replay_outcome is ReplayOutcome.FAILED
            else ("the target already held the record" if outcome.already_done else None),
        )
    )
