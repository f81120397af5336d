"""The write path: a bounded queue of ingest jobs and one writer thread that commits them
to the store in groups.

Each job's submitter gets a future that resolves once its rows are committed, so an OTLP
success response means the spans are stored. The queue is bounded in spans: when it is
full `submit` refuses at once and the receiver answers 429/503 with Retry-After instead of
growing memory. Several requests' jobs are written in one transaction (group commit).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from collector.lifecycle import Observation, observation_from_span
from collector.lifecycle_store import LifecycleApplier, note_webhook_sources
from collector.metrics import CollectorMetrics
from collector.span_record import (
    NULLABLE_COLUMNS,
    SPAN_COLUMNS,
    STAGE_AT,
    STATUS_AT,
    SpanRow,
    record_from_row,
)

logger = logging.getLogger(__name__)


@dataclass
class WriteResult:
    spans: int
    lifecycle_events: int


@dataclass
class IngestJob:
    rows: Sequence[SpanRow] = ()
    observations: Sequence[Observation] = ()
    sources: Sequence[str] = ()
    """the CloudEvent source of each event the observations came from"""
    future: Future[WriteResult] = field(default_factory=Future)

    @property
    def weight(self) -> int:
        return len(self.rows) + len(self.observations)


class QueueFull(Exception):
    """The write queue holds its maximum; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"write queue full, retry after {retry_after}s")
        self.retry_after = retry_after


def _value(column: str) -> str:
    return "NULLIF(?, '')" if column in NULLABLE_COLUMNS else "?"


# One prepared statement, run by the driver's executemany (the sqlite3 module caches it).
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO spans ({', '.join(SPAN_COLUMNS)}) "
    f"VALUES ({', '.join(_value(c) for c in SPAN_COLUMNS)})"
)
# The writer's page cache (KiB, as a negative cache_size): the spans table's indexes take
# random inserts (trace ids, deal ids), and SQLite's default 2 MiB cache makes most of them
# re-read a page from the OS. Bounded, and per connection.
SQLITE_CACHE_KIB = 65_536
_SQLITE_CACHE = f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}"

# PostgreSQL: COPY into a text staging table, then one INSERT that turns "" into NULL and
# casts, skipping rows already stored.
_PG_TYPES = {"start_unix_nano": "bigint", "end_unix_nano": "bigint"}
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS spans_copy_in ("
    + ", ".join(f"{c} {_PG_TYPES.get(c, 'text')}" for c in SPAN_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
_PG_COPY = f"COPY spans_copy_in ({', '.join(SPAN_COLUMNS)}) FROM STDIN"
_PG_CASTS = {
    "attributes": "::jsonb",
    "resource": "::jsonb",
    "events": "::jsonb",
    "amount": "::numeric",
}


def _pg_value(column: str) -> str:
    value = f"NULLIF({column}, '')" if column in NULLABLE_COLUMNS else column
    return value + _PG_CASTS.get(column, "")


_PG_MERGE = (
    f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) "
    f"SELECT {', '.join(_pg_value(c) for c in SPAN_COLUMNS)} "
    "FROM spans_copy_in ON CONFLICT DO NOTHING"
)


def insert_spans(conn: Connection, rows: Sequence[SpanRow]) -> None:
    """Insert span rows, ignoring ones already stored (exporters retry): the sqlite3
    driver's executemany of one prepared INSERT on SQLite (through the raw DB-API
    connection, no SQLAlchemy statement per call), COPY into a staging table then one
    INSERT ... ON CONFLICT on PostgreSQL. The fastest path we know for these rows; the
    ingest benchmark's raw-insert baseline uses it too."""
    if not rows:
        return
    dbapi: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cursor:  # psycopg 3: COPY is not in the DB-API
            cursor.execute(_PG_STAGE)
            with cursor.copy(_PG_COPY) as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
            cursor.execute(_PG_MERGE)
        return
    cursor = dbapi.cursor()
    try:
        cursor.execute(_SQLITE_CACHE)
        cursor.executemany(_SQLITE_INSERT, rows)
    finally:
        cursor.close()


def observations_in(rows: Sequence[SpanRow]) -> list[Observation]:
    """The lifecycle observations the span rows carry: OK spans that reach a stage."""
    return [
        o
        for r in rows
        if r[STAGE_AT] and r[STATUS_AT] == "ok" and (o := observation_from_span(record_from_row(r)))
    ]


def write_rows(conn: Connection, rows: Sequence[SpanRow], now: dt.datetime) -> int:
    """Store span rows and the lifecycle events they imply in the caller's transaction
    (rows and events already stored are skipped); returns the lifecycle events derived."""
    insert_spans(conn, rows)
    observations = observations_in(rows)
    return LifecycleApplier(conn, now).apply(observations) if observations else 0


# Spans (and observations) written in one transaction at most: large group commits matter
# on SQLite, where every commit rewrites each index page it touched into the WAL.
MAX_BATCH = 20_000


class SpanWriter:
    def __init__(
        self,
        engine: Engine,
        metrics: CollectorMetrics,
        *,
        max_queued: int = 200_000,
        max_batch: int = MAX_BATCH,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        if max_queued < 1 or max_batch < 1:
            raise ValueError("max_queued and max_batch must be positive")
        self._engine = engine
        self._metrics = metrics
        self._max_queued = max_queued
        self._max_batch = max_batch
        self._now = now
        self._jobs: queue.SimpleQueue[IngestJob | None] = queue.SimpleQueue()
        self._queued = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="span-writer", daemon=True)
        self._last_write_seconds = 0.05

    @property
    def queued(self) -> int:
        return self._queued

    def start(self) -> None:
        self._thread.start()

    def check_room(self, weight: int) -> None:
        """Raise QueueFull if a job of `weight` would not be queued now, so a receiver can
        refuse a request before spending time decoding it."""
        if self._queued + weight > self._max_queued and self._queued > 0:
            # Tell the sender roughly how long the backlog takes to drain.
            raise QueueFull(max(1, round(self._last_write_seconds * 2)))

    def submit(self, job: IngestJob) -> Future[WriteResult]:
        """Queue a job, or raise QueueFull without queueing anything."""
        with self._lock:
            self.check_room(job.weight)
            self._queued += job.weight
        self._jobs.put(job)
        return job.future

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._jobs.get()
            if first is None:
                break
            jobs, weight = [first], first.weight
            while weight < self._max_batch:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
                weight += more.weight
            self._write(jobs)
            with self._lock:
                self._queued -= weight

    def _write(self, jobs: list[IngestJob]) -> None:
        started = time.perf_counter()
        rows: list[SpanRow] = []
        for job in jobs:
            rows += job.rows
        observations = observations_in(rows)
        observations += [o for job in jobs for o in job.observations]
        sources = Counter(s for job in jobs for s in job.sources)
        try:
            with self._engine.begin() as conn:
                insert_spans(conn, rows)
                moment = self._now()
                derived = LifecycleApplier(conn, moment).apply(observations) if observations else 0
                if sources:
                    note_webhook_sources(conn, sources, moment)
        except Exception as exc:  # the store refused the batch: every sender hears of it
            logger.exception(
                "writing %d spans and %d observations failed", len(rows), len(observations)
            )
            self._metrics.write_failures.inc()
            for job in jobs:
                job.future.set_exception(exc)
            return
        elapsed = time.perf_counter() - started
        self._last_write_seconds = elapsed
        self._metrics.write_seconds.observe(elapsed)
        self._metrics.spans_stored.inc(len(rows))
        self._metrics.lifecycle_events.inc(derived)
        for job in jobs:
            job.future.set_result(WriteResult(len(job.rows), derived))
