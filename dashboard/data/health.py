"""Integration health: recent sync outcomes per system and flow, probe states, dead
letters, replays, failed traces and the probes' reconciliation and freshness findings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from sqlalchemy import Connection, func, select

from store.monitoring import ProbeFinding, ProbeResult
from store.outbox import DeadLetter, Replay, SyncAttempt, SyncMessage
from store.states import DeadLetterState, ProbeKind, SpanStatus, System
from store.telemetry import Span

SYSTEMS: tuple[str, ...] = tuple(s.value for s in System)
OPEN_STATES = (DeadLetterState.OPEN, DeadLetterState.REPLAYING)


def _frame(conn: Connection, query: object, columns: Sequence[str]) -> pd.DataFrame:
    rows = conn.execute(query).all()  # type: ignore[call-overload]
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def sync_matrix(conn: Connection, since: dt.datetime) -> pd.DataFrame:
    """system, flow, succeeded, dead, waiting (pending or running), retries, open dead
    letters, probe (latest probe status), state (ok | degraded | failing | idle)."""
    outcomes = _frame(
        conn,
        select(SyncMessage.system, SyncMessage.flow, SyncMessage.state, func.count())
        .where(SyncMessage.created_at > since)
        .group_by(SyncMessage.system, SyncMessage.flow, SyncMessage.state),
        ["system", "flow", "state", "n"],
    )
    retries = _frame(
        conn,
        select(SyncMessage.system, SyncMessage.flow, func.count())
        .select_from(SyncAttempt)
        .join(SyncMessage, SyncMessage.id == SyncAttempt.message_id)
        .where(SyncAttempt.started_at > since)
        .where(SyncAttempt.attempt_no > 1)
        .group_by(SyncMessage.system, SyncMessage.flow),
        ["system", "flow", "retries"],
    )
    dead = _frame(
        conn,
        select(DeadLetter.system, DeadLetter.flow, func.count())
        .where(DeadLetter.state.in_(OPEN_STATES))
        .group_by(DeadLetter.system, DeadLetter.flow),
        ["system", "flow", "open_dead_letters"],
    )
    probes = latest_probes(conn)
    for frame in (outcomes, retries, dead):
        frame["system"] = frame["system"].astype(str)
    wide = (
        outcomes.pivot_table(
            index=["system", "flow"], columns="state", values="n", aggfunc="sum", fill_value=0
        )
        if not outcomes.empty
        else pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["system", "flow"]))
    )
    for state in ("succeeded", "dead", "pending", "running", "held"):
        if state not in wide:
            wide[state] = 0
    wide = wide.reset_index()[["system", "flow", "succeeded", "dead", "pending", "running", "held"]]
    keys = ["system", "flow"]
    flows = pd.concat(
        [wide[keys], retries[keys], dead[keys], probes.loc[probes["flow"].notna(), keys]]
    ).drop_duplicates()
    table = flows.merge(wide, on=keys, how="left").merge(retries, on=keys, how="left")
    table = table.merge(dead, on=keys, how="left")
    counts = ["succeeded", "dead", "pending", "running", "held", "retries", "open_dead_letters"]
    table[counts] = table[counts].fillna(0).astype(int)
    # held: waiting for a person's approval (connectors.approvals)
    table["waiting"] = table["pending"] + table["running"] + table["held"]
    probe_by_key = {(r.system, r.flow): r.status for r in probes.itertuples() if r.flow is not None}
    probe_by_system = {
        r.system: r.status for r in probes.itertuples() if r.flow is None and r.kind == "health"
    }
    table["probe"] = [
        probe_by_key.get((s, f), probe_by_system.get(s))
        for s, f in zip(table["system"], table["flow"], strict=True)
    ]
    table["state"] = [_state(r) for r in table.itertuples()]
    return table[
        [
            "system",
            "flow",
            "succeeded",
            "dead",
            "waiting",
            "retries",
            "open_dead_letters",
            "probe",
            "state",
        ]
    ].sort_values(keys, ignore_index=True)


def _state(row: object) -> str:
    probe = getattr(row, "probe", None)
    if getattr(row, "open_dead_letters", 0) > 0 or probe == "fail":
        return "failing"
    if getattr(row, "retries", 0) > 0 or getattr(row, "dead", 0) > 0 or probe == "warn":
        return "degraded"
    if getattr(row, "succeeded", 0) == 0 and getattr(row, "waiting", 0) == 0 and probe is None:
        return "idle"
    return "ok"


def latest_probes(conn: Connection) -> pd.DataFrame:
    """The latest result of every probe: probe, kind, system, flow, status, observed,
    expected, started_at, duration_ms."""
    latest = (
        select(ProbeResult.probe, func.max(ProbeResult.started_at).label("at"))
        .group_by(ProbeResult.probe)
        .subquery()
    )
    query = select(
        ProbeResult.probe,
        ProbeResult.kind,
        ProbeResult.system,
        ProbeResult.flow,
        ProbeResult.status,
        ProbeResult.observed,
        ProbeResult.expected,
        ProbeResult.started_at,
        ProbeResult.duration_ms,
    ).join(
        latest,
        (latest.c.probe == ProbeResult.probe) & (latest.c.at == ProbeResult.started_at),
    )
    frame = _frame(
        conn,
        query,
        [
            "probe",
            "kind",
            "system",
            "flow",
            "status",
            "observed",
            "expected",
            "started_at",
            "duration_ms",
        ],
    )
    for column in ("kind", "status"):
        frame[column] = frame[column].astype(str)
    return frame


def open_dead_letters(conn: Connection) -> pd.DataFrame:
    """id, error_class, flow, system, deal_id, error, state, dead_at; newest first."""
    frame = _frame(
        conn,
        select(
            DeadLetter.id,
            DeadLetter.error_class,
            DeadLetter.flow,
            DeadLetter.system,
            DeadLetter.deal_id,
            DeadLetter.error,
            DeadLetter.state,
            DeadLetter.dead_at,
        )
        .where(DeadLetter.state.in_(OPEN_STATES))
        .order_by(DeadLetter.dead_at.desc(), DeadLetter.id.desc()),
        ["id", "error_class", "flow", "system", "deal_id", "error", "state", "dead_at"],
    )
    for column in ("system", "state"):
        frame[column] = frame[column].astype(str)
    return frame


def recent_replays(conn: Connection, limit: int = 50) -> pd.DataFrame:
    frame = _frame(
        conn,
        select(
            Replay.id,
            Replay.dead_letter_id,
            DeadLetter.error_class,
            DeadLetter.deal_id,
            Replay.requested_by,
            Replay.requested_at,
            Replay.outcome,
            Replay.detail,
            Replay.finished_at,
        )
        .join(DeadLetter, DeadLetter.id == Replay.dead_letter_id)
        .order_by(Replay.requested_at.desc(), Replay.id.desc())
        .limit(limit),
        [
            "replay",
            "dead_letter",
            "error_class",
            "deal_id",
            "requested_by",
            "requested_at",
            "outcome",
            "detail",
            "finished_at",
        ],
    )
    frame["outcome"] = frame["outcome"].astype(str)
    return frame


def failed_traces(conn: Connection, since: dt.datetime, limit: int = 30) -> pd.DataFrame:
    """trace_id, started_at, deal_id, system, flow, name, status_message of the latest
    traces with an error span since `since` (one row per trace, its first error)."""
    since_ns = int(since.timestamp() * 1e9)
    rows = conn.execute(
        select(
            Span.trace_id,
            Span.start_unix_nano,
            Span.deal_id,
            Span.system,
            Span.flow,
            Span.name,
            Span.status_message,
        )
        .where(Span.status == SpanStatus.ERROR)
        .where(Span.start_unix_nano > since_ns)
        .order_by(Span.start_unix_nano.desc())
        .limit(limit * 10)
    ).all()
    seen: dict[str, tuple[object, ...]] = {}
    for r in rows:
        seen.setdefault(r.trace_id, tuple(r))
        if len(seen) >= limit:
            break
    frame = pd.DataFrame(
        list(seen.values()),
        columns=["trace_id", "start", "deal_id", "system", "flow", "name", "status_message"],
    )
    frame["started_at"] = pd.to_datetime(frame["start"], unit="ns", utc=True)
    return frame.drop(columns=["start"])


def probe_findings(conn: Connection, kinds: Sequence[ProbeKind]) -> pd.DataFrame:
    """The findings of the latest run of each reconciliation / freshness / stuck probe."""
    latest = (
        select(func.max(ProbeResult.id).label("id"))
        .where(ProbeResult.kind.in_(list(kinds)))
        .group_by(ProbeResult.probe)
        .subquery()
    )
    frame = _frame(
        conn,
        select(
            ProbeResult.probe,
            ProbeResult.kind,
            ProbeResult.started_at,
            ProbeFinding.kind,
            ProbeFinding.object_type,
            ProbeFinding.object_id,
            ProbeFinding.deal_id,
            ProbeFinding.system,
            ProbeFinding.amount,
            ProbeFinding.currency,
        )
        .join(ProbeFinding, ProbeFinding.probe_result_id == ProbeResult.id)
        .where(ProbeResult.id.in_(select(latest.c.id))),
        [
            "probe",
            "probe_kind",
            "checked_at",
            "finding",
            "object_type",
            "object_id",
            "deal_id",
            "system",
            "amount",
            "currency",
        ],
    )
    frame["probe_kind"] = frame["probe_kind"].astype(str)
    return frame
