"""Freshness and absence probes: what should have happened by now and did not.

- `freshness.flows`: the last successful sync per flow; a flow with an expected cadence
  (`probes.flows_expected_every`) that has gone quiet fails (a dead man's switch).
- `freshness.webhooks`: the last CloudEvent per source; a source with an expected cadence
  (`probes.webhooks_expected_every`) that has stopped sending fails.
- `freshness.outbox`: sync messages due for longer than `probes.outbox_stall_after` mean
  no worker is running the outbox.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import func, select

from probes.base import Finding, Outcome, ProbeContext
from store.outbox import SyncAttempt, SyncMessage
from store.states import AttemptOutcome, MessageState, ProbeKind, ProbeStatus
from store.telemetry import WebhookSource

LOOKBACK = dt.timedelta(days=7)


def _age(now: dt.datetime, last: dt.datetime | None) -> str:
    if last is None:
        return "never"
    minutes = (now - last).total_seconds() / 60
    return f"{minutes:.0f} min ago" if minutes < 120 else f"{minutes / 60:.1f} h ago"


def _span(length: dt.timedelta) -> str:
    return f"{length.days} d" if length >= dt.timedelta(days=1) else f"{length}"


def _silence_text(
    finding: Finding, what: str, last: Mapping[str, dt.datetime | None], now: dt.datetime
) -> str:
    name = finding.object_id or ""
    return f"{name}: {what} {_age(now, last.get(name))}"


def _silences(
    kind: str,
    last_seen: Mapping[str, dt.datetime | None],
    expected: Mapping[str, dt.timedelta],
    now: dt.datetime,
) -> list[Finding]:
    findings = []
    for name, every in sorted(expected.items()):
        last = last_seen.get(name)
        if last is None or now - last > every:
            findings.append(
                Finding(
                    kind,
                    None,
                    name,
                    detail={
                        "last_seen": last.isoformat() if last else None,
                        "expected_every_s": every.total_seconds(),
                        "silent_for_s": (now - last).total_seconds() if last else None,
                    },
                )
            )
    return findings


class FlowFreshnessProbe:
    name = "freshness.flows"
    kind = ProbeKind.FRESHNESS
    system = None
    flow = None
    description = "last successful sync per flow; a flow with an expected cadence gone quiet"

    def __init__(self, expected: Mapping[str, dt.timedelta]) -> None:
        self._expected = dict(expected)

    def run(self, ctx: ProbeContext) -> Outcome:
        now = ctx.now()
        # Only recent attempts are read (an indexed range, not the whole history): a flow
        # with nothing in the lookback is as silent as one that never synced.
        lookback = max([LOOKBACK, *(2 * every for every in self._expected.values())])
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                select(SyncMessage.flow, func.max(SyncAttempt.started_at))
                .join(SyncMessage, SyncMessage.id == SyncAttempt.message_id)
                .where(SyncAttempt.started_at >= now - lookback)
                .where(SyncAttempt.outcome == AttemptOutcome.SUCCEEDED)
                .group_by(SyncMessage.flow)
            ).all()
        last: dict[str, dt.datetime | None] = {flow: at for flow, at in rows}
        findings = _silences("flow_silent", last, self._expected, now)
        detail = {
            "last_success": {f: at.isoformat() if at else None for f, at in sorted(last.items())},
            "expected_every_s": {f: e.total_seconds() for f, e in self._expected.items()},
        }
        outcome = Outcome.from_findings(findings, expected="each flow within its cadence")
        observed = (
            "; ".join(_silence_text(f, "last synced", last, now) for f in findings)
            if findings
            else f"{len(last)} flow(s) synced within {_span(lookback)}"
        )
        return Outcome(
            outcome.status,
            value=outcome.value,
            observed=observed,
            expected=outcome.expected,
            detail=detail,
            findings=findings,
        )


class WebhookFreshnessProbe:
    name = "freshness.webhooks"
    kind = ProbeKind.FRESHNESS
    system = None
    flow = None
    description = "last CloudEvent per source; a source with an expected cadence that stopped"

    def __init__(self, expected: Mapping[str, dt.timedelta]) -> None:
        self._expected = dict(expected)

    def run(self, ctx: ProbeContext) -> Outcome:
        now = ctx.now()
        last: dict[str, dt.datetime | None] = dict.fromkeys(self._expected)
        with ctx.engine.connect() as conn:
            found = conn.execute(
                select(WebhookSource.source, WebhookSource.last_received_at).where(
                    WebhookSource.source.in_(list(self._expected))
                )
            ).all()
        last.update({source: at for source, at in found})
        findings = _silences("webhook_silent", last, self._expected, now)
        detail = {
            "last_received": {s: at.isoformat() if at else None for s, at in sorted(last.items())}
        }
        observed = (
            "; ".join(_silence_text(f, "last webhook", last, now) for f in findings)
            if findings
            else f"{len(last)} source(s) sending"
        )
        return Outcome(
            ProbeStatus.FAIL if findings else ProbeStatus.OK,
            value=float(len(findings)),
            observed=observed,
            expected="each source within its cadence",
            detail=detail,
            findings=findings,
        )


class OutboxStallProbe:
    name = "freshness.outbox"
    kind = ProbeKind.FRESHNESS
    system = None
    flow = None
    description = "sync messages due long ago and not picked up: no worker is running"

    def __init__(self, stall_after: dt.timedelta) -> None:
        self._stall_after = stall_after

    def run(self, ctx: ProbeContext) -> Outcome:
        now = ctx.now()
        cutoff = now - self._stall_after
        with ctx.engine.connect() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(SyncMessage.next_attempt_at))
                .where(SyncMessage.state.in_([MessageState.PENDING, MessageState.RUNNING]))
                .where(SyncMessage.next_attempt_at < cutoff)
                .where((SyncMessage.locked_until.is_(None)) | (SyncMessage.locked_until < now))
            ).one()
        oldest_at: dt.datetime | None = oldest  # max/min keep UTCDateTime
        lag_s = (now - oldest_at).total_seconds() if oldest_at else 0.0
        if not count:
            return Outcome(
                ProbeStatus.OK,
                value=0.0,
                observed="no overdue sync messages",
                expected=f"due messages run within {self._stall_after}",
            )
        return Outcome(
            ProbeStatus.FAIL,
            value=round(lag_s, 1),
            observed=f"{count} sync message(s) overdue, the oldest by {lag_s / 60:.0f} min: "
            "is a worker running?",
            expected=f"due messages run within {self._stall_after}",
            detail={
                "overdue_messages": int(count),
                "oldest_due_at": oldest_at.isoformat() if oldest_at else None,
            },
        )
