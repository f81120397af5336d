"""Change capture by polling: each stream reads its collection since its stored cursor,
plans the steps the changed records ask for, and commits the steps and the new cursor in one
transaction, so a restart resumes where it stopped and never re-reads everything.

Records at the cursor's boundary are read again on the next poll (systems filter with
`>=`); the steps' idempotency keys make that harmless. Lifecycle stages a system shows are
recorded as spans when the step they belong to is first queued, and stored (through the
span sink) in the transaction that moves the cursor past them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from connectors.errors import ConnectorError
from connectors.flows.base import FlowContext, Planned, Stream, parse_time
from connectors.outbox import enqueue_new
from connectors.resources import collection
from connectors.tracing import SpanSink, observe
from store.outbox import SyncCursor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollReport:
    stream: str
    records: int
    new_steps: int
    cursor: str | None
    error: str | None = None


def read_cursor(engine: Engine, stream: Stream) -> dt.datetime | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(SyncCursor.cursor).where(
                SyncCursor.system == stream.system, SyncCursor.stream == stream.name
            )
        ).scalar()
    return dt.datetime.fromisoformat(value) if value else None


class Capture:
    def __init__(
        self,
        engine: Engine,
        context: FlowContext,
        streams: Sequence[Stream],
        sink: SpanSink | None = None,
    ) -> None:
        self._engine = engine
        self._context = context
        self.streams = list(streams)
        self._sink = sink

    def poll_all(self) -> list[PollReport]:
        """Poll every stream; a system that fails leaves its cursor where it was, and the
        other streams go on."""
        reports = []
        for stream in self.streams:
            try:
                reports.append(self.poll(stream))
            except ConnectorError as exc:
                logger.warning("polling %s failed: %s", stream.name, exc)
                reports.append(PollReport(stream.name, 0, 0, None, error=exc.error_class))
        return reports

    def poll(self, stream: Stream) -> PollReport:
        since = read_cursor(self._engine, stream)
        changed = collection(stream.system, stream.collection).changed_field
        api = self._context.api(stream.system)
        planned: list[Planned] = []
        newest = since
        count = 0
        records = (
            stream.read(since)
            if stream.read is not None
            else api.records(stream.collection, stream.filters, since)
        )
        for record in records:
            count += 1
            planned.extend(stream.plan(record))
            moment = parse_time(record.get(changed), self._context.clock())
            if newest is None or moment > newest:
                newest = moment
        now = self._context.clock()
        with self._engine.begin() as conn:
            new = enqueue_new(conn, [p.step for p in planned], now)
            if newest is not None and newest != since:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                statement = dialect.insert(SyncCursor).values(
                    system=stream.system,
                    stream=stream.name,
                    cursor=newest.isoformat(),
                    updated_at=now,
                )
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["system", "stream"],
                        set_={"cursor": newest.isoformat(), "updated_at": now},
                    )
                )
            # Stored with the cursor: once it has moved on, these records are not read
            # again, so a stage left to the exporter alone would be lost with it.
            seen_spans = [
                observe(
                    self._context.tracer,
                    f"observe {stream.system.value}.{stream.collection}",
                    seen.at,
                    {**seen.attributes, "q2c.stage": seen.stage, "q2c.flow": item.step.flow},
                )
                for item in planned
                if item.step.idempotency_key in new
                for seen in item.observations
            ]
            if self._sink is not None and seen_spans:
                self._sink(conn, seen_spans)
        return PollReport(stream.name, count, len(new), newest.isoformat() if newest else None)
