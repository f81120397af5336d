"""The probe runner: every run is a stored result with its findings and a span; a probe
that raises or hangs is a failed run, and a hung probe is not started twice."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, select

from probes.base import Finding, Outcome, ProbeContext
from probes.runner import ProbeRunner
from store.monitoring import ProbeFinding, ProbeResult
from store.states import ProbeKind, ProbeStatus

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


class FakeProbe:
    kind = ProbeKind.RECONCILIATION
    system = "erp"
    flow = None
    description = "test probe"

    def __init__(self, name: str, behave: object) -> None:
        self.name = name
        self._behave = behave

    def run(self, ctx: ProbeContext) -> Outcome:
        if isinstance(self._behave, threading.Event):
            self._behave.wait(30)
            return Outcome(ProbeStatus.OK, observed="woke up")
        if isinstance(self._behave, Exception):
            raise self._behave
        assert isinstance(self._behave, Outcome)
        return self._behave


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def runner(engine: Engine, spans: InMemorySpanExporter) -> Iterator[ProbeRunner]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    ctx = ProbeContext(engine, {}, lambda: NOW)
    yield ProbeRunner(engine, ctx, provider.get_tracer("test"), timeout=dt.timedelta(seconds=0.5))
    provider.shutdown()


def results(engine: Engine) -> list[ProbeResult]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(session.scalars(select(ProbeResult).order_by(ProbeResult.id)))


def test_a_run_is_stored_with_its_findings_and_a_span(
    runner: ProbeRunner, engine: Engine, spans: InMemorySpanExporter
) -> None:
    findings = [
        Finding(
            "posted_twice",
            "invoice",
            "INV-7",
            deal_id="OPP-3",
            system="erp",
            amount=Decimal("1200.50"),
            currency="EUR",
            detail={"postings": ["P-1", "P-2"]},
        ),
        Finding("never_posted", "invoice", "INV-9", deal_id="OPP-4", system="erp"),
    ]
    run = runner.run(FakeProbe("reconcile.test", Outcome.from_findings(findings)))
    assert run.status is ProbeStatus.FAIL

    [stored] = results(engine)
    assert (stored.probe, stored.status, stored.value) == ("reconcile.test", ProbeStatus.FAIL, 2)
    assert stored.started_at == NOW
    assert stored.trace_id == run.trace_id
    with engine.connect() as conn:
        rows = conn.execute(
            select(ProbeFinding.kind, ProbeFinding.object_id, ProbeFinding.amount)
            .where(ProbeFinding.probe_result_id == stored.id)
            .order_by(ProbeFinding.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("posted_twice", "INV-7", Decimal("1200.50")),
        ("never_posted", "INV-9", None),
    ]
    [span] = spans.get_finished_spans()
    assert span.name == "probe reconcile.test"
    assert span.attributes is not None
    assert span.attributes["throughline.probe.status"] == "fail"
    assert span.attributes["throughline.probe.findings"] == 2
    assert format(span.context.trace_id, "032x") == stored.trace_id


def test_a_probe_that_raises_is_a_failed_run_with_the_error(
    runner: ProbeRunner, engine: Engine
) -> None:
    run = runner.run(FakeProbe("broken", RuntimeError("ERP returned garbage")))
    assert run.status is ProbeStatus.FAIL
    assert "ERP returned garbage" in (run.outcome.observed or "")
    assert results(engine)[0].detail == {
        "error_class": "RuntimeError",
        "error": "ERP returned garbage",
    }


def test_a_hanging_probe_times_out_and_is_not_started_twice(
    runner: ProbeRunner, engine: Engine
) -> None:
    release = threading.Event()
    hanging = FakeProbe("hangs", release)
    first = runner.run(hanging)
    assert first.status is ProbeStatus.FAIL
    assert "timed out after" in (first.outcome.observed or "")
    # Other probes still run meanwhile.
    assert runner.run(FakeProbe("fine", Outcome(ProbeStatus.OK))).status is ProbeStatus.OK
    second = runner.run(hanging)
    assert second.status is ProbeStatus.FAIL
    assert "still hanging" in (second.outcome.observed or "")
    release.set()
    for _ in range(50):
        third = runner.run(hanging)
        if third.status is ProbeStatus.OK:
            break
    assert third.status is ProbeStatus.OK
    statuses = [(r.probe, r.status.value) for r in results(engine)]
    assert statuses[:3] == [("hangs", "fail"), ("fine", "ok"), ("hangs", "fail")]
    assert statuses[-1] == ("hangs", "ok")
