"""Retention: prune spans, sync attempts and probe results older than their configured age.

Deletes run in bounded batches so a large first prune never holds a long write lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select
from sqlalchemy.sql.elements import ColumnElement

from store.monitoring import ProbeResult
from store.outbox import SyncAttempt
from store.telemetry import Span


@dataclass(frozen=True)
class RetentionPolicy:
    spans: dt.timedelta
    sync_attempts: dt.timedelta
    probe_results: dt.timedelta


@dataclass(frozen=True)
class PruneReport:
    spans: int
    sync_attempts: int
    probe_results: int


def _prune(
    engine: Engine, key: ColumnElement[object], older: ColumnElement[bool], batch: int
) -> int:
    """Delete rows matching `older`, `batch` at a time, by their primary key."""
    total = 0
    table = key.table
    while True:
        with engine.begin() as conn:
            ids = conn.execute(select(key).where(older).limit(batch)).scalars().all()
            if not ids:
                return total
            conn.execute(delete(table).where(key.in_(ids)))
        total += len(ids)


def prune(
    engine: Engine, policy: RetentionPolicy, now: dt.datetime, batch: int = 5000
) -> PruneReport:
    span_cutoff_ns = int((now - policy.spans).timestamp() * 1_000_000_000)
    spans = 0
    while True:
        # Spans have a composite key; delete by the start-time index in slices instead.
        with engine.begin() as conn:
            boundary = conn.execute(
                select(Span.start_unix_nano)
                .where(Span.start_unix_nano < span_cutoff_ns)
                .order_by(Span.start_unix_nano)
                .offset(batch - 1)
                .limit(1)
            ).scalar()
            limit = span_cutoff_ns if boundary is None else boundary + 1
            deleted = conn.execute(delete(Span).where(Span.start_unix_nano < limit)).rowcount
        spans += deleted
        if boundary is None:
            break
    attempts = _prune(
        engine,
        SyncAttempt.__table__.c.id,
        SyncAttempt.started_at < now - policy.sync_attempts,
        batch,
    )
    probes = _prune(
        engine,
        ProbeResult.__table__.c.id,
        ProbeResult.started_at < now - policy.probe_results,
        batch,
    )
    return PruneReport(spans=spans, sync_attempts=attempts, probe_results=probes)
