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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine

from collector.lifecycle import Observation, observation_from_span
from collector.lifecycle_store import LifecycleApplier
from collector.metrics import CollectorMetrics
from collector.span_record import SPAN_COLUMNS, SpanRecord

logger = logging.getLogger(__name__)


@dataclass
class WriteResult:
    spans: int
    lifecycle_events: int


@dataclass
class IngestJob:
    records: Sequence[SpanRecord] = ()
    observations: Sequence[Observation] = ()
    future: Future[WriteResult] = field(default_factory=Future)

    @property
    def weight(self) -> int:
        return len(self.records) + len(self.observations)


class QueueFull(Exception):
    """The write queue holds its maximum; retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"write queue full, retry after {retry_after}s")
        self.retry_after = retry_after


_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO spans ({', '.join(SPAN_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in SPAN_COLUMNS)})"
)
_PG_STAGE = "CREATE TEMP TABLE IF NOT EXISTS spans_in (LIKE spans) ON COMMIT DELETE ROWS"
_PG_COPY = f"COPY spans_in ({', '.join(SPAN_COLUMNS)}) FROM STDIN"
_PG_MERGE = (
    f"INSERT INTO spans ({', '.join(SPAN_COLUMNS)}) SELECT {', '.join(SPAN_COLUMNS)} "
    "FROM spans_in ON CONFLICT DO NOTHING"
)


def insert_spans(conn: Connection, records: Sequence[SpanRecord]) -> None:
    """Insert span rows, ignoring ones already stored (exporters retry): executemany on
    SQLite, COPY into a staging table then one INSERT ... ON CONFLICT on PostgreSQL."""
    if not records:
        return
    if conn.dialect.name == "postgresql":
        dbapi: Any = conn.connection.dbapi_connection  # psycopg 3: COPY is not in the DB-API
        with dbapi.cursor() as cursor:
            cursor.execute(_PG_STAGE)
            with cursor.copy(_PG_COPY) as copy:
                for record in records:
                    copy.write_row(record)
            cursor.execute(_PG_MERGE)
        return
    conn.exec_driver_sql(_SQLITE_INSERT, list(records))


class SpanWriter:
    def __init__(
        self,
        engine: Engine,
        metrics: CollectorMetrics,
        *,
        max_queued: int = 200_000,
        max_batch: int = 20_000,
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

    def submit(self, job: IngestJob) -> Future[WriteResult]:
        """Queue a job, or raise QueueFull without queueing anything."""
        with self._lock:
            if self._queued + job.weight > self._max_queued and self._queued > 0:
                # Tell the sender roughly how long the backlog takes to drain.
                raise QueueFull(max(1, round(self._last_write_seconds * 2)))
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
        records = [r for job in jobs for r in job.records]
        observations = [
            o for r in records if r.stage is not None and (o := observation_from_span(r))
        ]
        observations += [o for job in jobs for o in job.observations]
        try:
            with self._engine.begin() as conn:
                insert_spans(conn, records)
                derived = (
                    LifecycleApplier(conn, self._now()).apply(observations) if observations else 0
                )
        except Exception as exc:  # the store refused the batch: every sender hears of it
            logger.exception(
                "writing %d spans and %d observations failed", len(records), len(observations)
            )
            self._metrics.write_failures.inc()
            for job in jobs:
                job.future.set_exception(exc)
            return
        elapsed = time.perf_counter() - started
        self._last_write_seconds = elapsed
        self._metrics.write_seconds.observe(elapsed)
        self._metrics.spans_stored.inc(len(records))
        self._metrics.lifecycle_events.inc(derived)
        for job in jobs:
            job.future.set_result(WriteResult(len(job.records), derived))
