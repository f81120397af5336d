"""Retention prunes by age, across batch boundaries, and keeps everything younger."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import Engine

from store.monitoring import ProbeFinding, ProbeResult
from store.outbox import SyncAttempt, SyncMessage
from store.retention import RetentionPolicy, prune
from store.states import AttemptOutcome, MessageState, ProbeKind, ProbeStatus, SpanStatus
from store.telemetry import Span

NOW = dt.datetime(2026, 6, 30, tzinfo=dt.UTC)
POLICY = RetentionPolicy(
    spans=dt.timedelta(days=30),
    sync_attempts=dt.timedelta(days=90),
    probe_results=dt.timedelta(days=7),
)


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


def _seed(engine: Engine) -> None:
    spans = [
        {
            "trace_id": f"{i:032x}",
            "span_id": f"{i:016x}",
            "name": "post invoice",
            "service": "throughline",
            "kind": "client",
            "start_unix_nano": _ns(NOW - dt.timedelta(days=age)),
            "end_unix_nano": _ns(NOW - dt.timedelta(days=age)) + 5_000_000,
            "status": SpanStatus.OK,
            "attributes": {},
        }
        for i, age in enumerate([1, 29, 31, 31, 31, 40, 50, 60, 365, 30])
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(Span), spans)
        message_id = conn.execute(
            sa.insert(SyncMessage)
            .values(
                flow="invoice_to_ar",
                step="post",
                system="erp",
                idempotency_key="ar-posting:INV-1",
                payload={},
                state=MessageState.SUCCEEDED,
                attempts=7,
                next_attempt_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(SyncMessage.id)
        ).scalar_one()
        conn.execute(
            sa.insert(SyncAttempt),
            [
                {
                    "message_id": message_id,
                    "attempt_no": n,
                    "outcome": AttemptOutcome.RETRYABLE,
                    "started_at": NOW - dt.timedelta(days=age),
                    "duration_ms": 12,
                }
                for n, age in enumerate([100, 95, 91, 89, 10, 0, 200])
            ],
        )
        for age in (8, 6):
            result_id = conn.execute(
                sa.insert(ProbeResult)
                .values(
                    probe="erp.health",
                    kind=ProbeKind.HEALTH,
                    status=ProbeStatus.FAIL,
                    started_at=NOW - dt.timedelta(days=age),
                    duration_ms=3,
                )
                .returning(ProbeResult.id)
            ).scalar_one()
            conn.execute(sa.insert(ProbeFinding).values(probe_result_id=result_id, kind="x"))


def _count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_prune_deletes_only_what_is_older_than_the_policy(engine: Engine) -> None:
    _seed(engine)
    report = prune(engine, POLICY, now=NOW, batch=2)
    assert (report.spans, report.sync_attempts, report.probe_results) == (7, 4, 1)
    assert _count(engine, Span) == 3  # 1, 29 and exactly 30 days old
    with engine.connect() as conn:
        ages = sorted(
            (NOW - started).days
            for started in conn.execute(sa.select(SyncAttempt.started_at)).scalars()
        )
    assert ages == [0, 10, 89]
    # The finding of the pruned probe result goes with it.
    assert _count(engine, ProbeFinding) == 1
    assert _count(engine, SyncMessage) == 1


def test_prune_twice_deletes_nothing_more(engine: Engine) -> None:
    _seed(engine)
    prune(engine, POLICY, now=NOW)
    again = prune(engine, POLICY, now=NOW)
    assert (again.spans, again.sync_attempts, again.probe_results) == (0, 0, 0)
