"""Runs a probe under a time limit and records what it found: a `probe_results` row with its
findings (one transaction), and a span. Prometheus reads the latest results from the store
(`probes.metrics`), so every `serve` process shows the same series.

A probe that raises is a failed run with the error; one that outlives its time limit is a
failed run "timed out". Python cannot kill a thread: the hung run is left behind, and until
it returns that probe is not started again (each later tick is reported failed as well).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Status, StatusCode, Tracer
from sqlalchemy import Engine, insert

from probes.base import Outcome, Probe, ProbeContext
from store.monitoring import ProbeFinding, ProbeResult
from store.states import ProbeStatus

logger = logging.getLogger(__name__)

MAX_FINDINGS = 10_000  # per run; the rest are counted in the result's detail


@dataclass(frozen=True)
class ProbeRun:
    result_id: int
    probe: str
    outcome: Outcome
    started_at: dt.datetime
    duration_ms: int
    trace_id: str | None

    @property
    def status(self) -> ProbeStatus:
        return self.outcome.status


class _Call(threading.Thread):
    def __init__(self, probe: Probe, ctx: ProbeContext) -> None:
        super().__init__(name=f"probe-{probe.name}", daemon=True)
        self.probe = probe
        self.ctx = ctx
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.since = time.monotonic()

    def run(self) -> None:
        try:
            self.outcome = self.probe.run(self.ctx)
        except BaseException as exc:  # reported as the run's failure
            self.error = exc


class ProbeRunner:
    def __init__(
        self, engine: Engine, ctx: ProbeContext, tracer: Tracer, *, timeout: dt.timedelta
    ) -> None:
        self._engine = engine
        self._ctx = ctx
        self._tracer = tracer
        self._timeout = timeout
        self._hung: dict[str, _Call] = {}
        self._lock = threading.Lock()

    def run(self, probe: Probe) -> ProbeRun:
        started_at = self._ctx.now()
        t0 = time.perf_counter()
        attributes: dict[str, Any] = {
            "throughline.probe.name": probe.name,
            "throughline.probe.kind": probe.kind.value,
        }
        if probe.system:
            attributes["q2c.system"] = probe.system
        if probe.flow:
            attributes["q2c.flow"] = probe.flow
        span_name = f"probe {probe.name}"
        with self._tracer.start_as_current_span(span_name, attributes=attributes) as span:
            outcome = self._call(probe)
            span.set_attribute("throughline.probe.status", outcome.status.value)
            span.set_attribute("throughline.probe.findings", len(outcome.findings))
            if outcome.value is not None:
                span.set_attribute("throughline.probe.value", outcome.value)
            if outcome.status is ProbeStatus.FAIL:
                span.set_status(Status(StatusCode.ERROR, (outcome.observed or "failed")[:200]))
            else:
                span.set_status(Status(StatusCode.OK))
            context = span.get_span_context()
            trace_id = format(context.trace_id, "032x") if context.is_valid else None
        duration_ms = round((time.perf_counter() - t0) * 1000)
        result_id = self._store(probe, outcome, started_at, duration_ms, trace_id)
        return ProbeRun(result_id, probe.name, outcome, started_at, duration_ms, trace_id)

    def _call(self, probe: Probe) -> Outcome:
        limit = self._timeout.total_seconds()
        with self._lock:
            hung = self._hung.get(probe.name)
            if hung is not None and hung.is_alive():
                stuck_for = time.monotonic() - hung.since
                return Outcome(
                    ProbeStatus.FAIL,
                    observed=f"the previous run is still hanging after {stuck_for:.0f} s",
                    expected=f"a run within {limit:g} s",
                    detail={"error_class": "timeout", "timeout_s": limit},
                )
            self._hung.pop(probe.name, None)
            call = _Call(probe, self._ctx)
            call.start()
        call.join(limit)
        if call.is_alive():
            with self._lock:
                self._hung[probe.name] = call
            logger.warning("probe %s timed out after %.0f s", probe.name, limit)
            return Outcome(
                ProbeStatus.FAIL,
                observed=f"timed out after {limit:g} s",
                expected=f"a run within {limit:g} s",
                detail={"error_class": "timeout", "timeout_s": limit},
            )
        if call.error is not None:
            logger.warning("probe %s failed: %r", probe.name, call.error)
            return Outcome(
                ProbeStatus.FAIL,
                observed=f"the probe failed: {type(call.error).__name__}: {call.error}"[:500],
                detail={"error_class": type(call.error).__name__, "error": str(call.error)[:2000]},
            )
        assert call.outcome is not None
        return call.outcome

    def _store(
        self,
        probe: Probe,
        outcome: Outcome,
        started_at: dt.datetime,
        duration_ms: int,
        trace_id: str | None,
    ) -> int:
        findings = outcome.findings[:MAX_FINDINGS]
        detail = dict(outcome.detail)
        if len(outcome.findings) > MAX_FINDINGS:
            detail["findings_total"] = len(outcome.findings)
            detail["findings_stored"] = MAX_FINDINGS
        with self._engine.begin() as conn:
            result_id = conn.execute(
                insert(ProbeResult)
                .values(
                    probe=probe.name,
                    kind=probe.kind,
                    system=probe.system,
                    flow=probe.flow,
                    status=outcome.status,
                    value=outcome.value,
                    observed=outcome.observed,
                    expected=outcome.expected,
                    detail=detail or None,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    trace_id=trace_id,
                )
                .returning(ProbeResult.id)
            ).scalar_one()
            if findings:
                conn.execute(
                    insert(ProbeFinding),
                    [
                        {
                            "probe_result_id": result_id,
                            "kind": f.kind,
                            "object_type": f.object_type,
                            "object_id": f.object_id,
                            "deal_id": f.deal_id,
                            "system": f.system,
                            "amount": f.amount,
                            "currency": f.currency,
                            "detail": f.detail or None,
                        }
                        for f in findings
                    ],
                )
        return int(result_id)
