"""Prometheus collector for values that live in the database, read at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from store.monitoring import ProbeFinding, ProbeResult
from store.outbox import DeadLetter, SyncMessage
from store.scheduling import JobRun
from store.states import DeadLetterState, JobRunStatus, MessageState, ProbeStatus

logger = logging.getLogger(__name__)


class StoreCollector(Collector):
    """Outbox depth by state and open dead letters by flow, straight from the store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("throughline_store_up", "1 if the store answered the scrape")
        messages = GaugeMetricFamily(
            "throughline_sync_messages", "Outbox messages by state", labels=["state"]
        )
        dead = GaugeMetricFamily(
            "throughline_dead_letters_open", "Open dead letters by flow", labels=["flow"]
        )
        try:
            with self._engine.connect() as conn:
                by_state = dict(
                    conn.execute(
                        select(SyncMessage.state, func.count()).group_by(SyncMessage.state)
                    ).all()
                )
                by_flow = conn.execute(
                    select(DeadLetter.flow, func.count())
                    .where(DeadLetter.state == DeadLetterState.OPEN)
                    .group_by(DeadLetter.flow)
                ).all()
        except SQLAlchemyError:
            logger.exception("store unreachable during scrape")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for state in MessageState:
            messages.add_metric([state.value], by_state.get(state, 0))
        for flow, count in by_flow:
            dead.add_metric([flow], count)
        yield from (up, messages, dead)
        try:
            with self._engine.connect() as conn:
                yield from _probe_families(conn)
                yield from _job_families(conn)
        except SQLAlchemyError:
            logger.exception("reading probe results during scrape failed")


PROBE_LABELS = ["probe", "kind", "system"]
STATUS_VALUE = {ProbeStatus.OK: 0, ProbeStatus.WARN: 1, ProbeStatus.FAIL: 2}


def _probe_families(conn: Connection) -> Iterator[GaugeMetricFamily]:
    """Each probe's latest result (one series per probe: bounded cardinality)."""
    latest = select(func.max(ProbeResult.id).label("id")).group_by(ProbeResult.probe).subquery()
    findings = (
        select(ProbeFinding.probe_result_id, func.count().label("n"))
        .where(ProbeFinding.probe_result_id.in_(select(latest.c.id)))
        .group_by(ProbeFinding.probe_result_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            ProbeResult.probe,
            ProbeResult.kind,
            ProbeResult.system,
            ProbeResult.status,
            ProbeResult.value,
            ProbeResult.started_at,
            ProbeResult.duration_ms,
            func.coalesce(findings.c.n, 0),
        )
        .join(latest, latest.c.id == ProbeResult.id)
        .outerjoin(findings, findings.c.probe_result_id == ProbeResult.id)
    ).all()
    status = GaugeMetricFamily(
        "throughline_probe_status",
        "Latest probe result: 0 ok, 1 warn, 2 fail",
        labels=PROBE_LABELS,
    )
    value = GaugeMetricFamily(
        "throughline_probe_value",
        "Latest probe value (latency in ms, mismatches, money at risk, ...)",
        labels=PROBE_LABELS,
    )
    duration = GaugeMetricFamily(
        "throughline_probe_duration_seconds", "How long the latest run took", labels=PROBE_LABELS
    )
    last_run = GaugeMetricFamily(
        "throughline_probe_last_run_timestamp_seconds",
        "When the latest run started (Unix time)",
        labels=PROBE_LABELS,
    )
    found = GaugeMetricFamily(
        "throughline_probe_findings", "Records the latest run found wrong", labels=PROBE_LABELS
    )
    for probe, kind, system, state, number, started, ms, count in rows:
        labels = [probe, str(kind), system or ""]
        status.add_metric(labels, STATUS_VALUE[ProbeStatus(state)])
        if number is not None:
            value.add_metric(labels, float(number))
        duration.add_metric(labels, ms / 1000)
        last_run.add_metric(labels, started.timestamp())
        found.add_metric(labels, int(count))
    yield from (status, value, duration, last_run, found)


def _job_families(conn: Connection) -> Iterator[GaugeMetricFamily]:
    """When each scheduled job last succeeded, and how its latest run ended."""
    last_ok = GaugeMetricFamily(
        "throughline_job_last_success_timestamp_seconds",
        "When the scheduled job last finished ok (Unix time)",
        labels=["job"],
    )
    for job, finished in conn.execute(
        select(JobRun.job, func.max(JobRun.finished_at))
        .where(JobRun.status == JobRunStatus.OK)
        .group_by(JobRun.job)
    ):
        if finished is not None:  # max() keeps the column's UTCDateTime: aware on both
            last_ok.add_metric([job], finished.timestamp())
    latest = select(func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery()
    last_status = GaugeMetricFamily(
        "throughline_job_last_run_ok",
        "1 if the job's latest run ended ok, 0 if it failed or timed out",
        labels=["job", "status"],
    )
    for job, state in conn.execute(
        select(JobRun.job, JobRun.status)
        .join(latest, latest.c.id == JobRun.id)
        .where(JobRun.status != JobRunStatus.RUNNING)
    ):
        last_status.add_metric([job, str(state)], 1 if state == JobRunStatus.OK else 0)
    yield from (last_ok, last_status)
