"""Lifecycle stages are stored with the commits that make them final: the capture's
observations with the cursor that moves past their records, a step's stage with the
message it completes. Here the tracer exports nothing at all (as if the process died
right after every commit, or the exporter's queue were full): the lifecycle is whole
all the same."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from store import migrate
from store.engine import make_engine
from store.outbox import SyncMessage
from store.states import MessageState
from store.telemetry import LifecycleEvent, Span
from tests.connectors.firm import EXECUTED_STAGES, Firm, start_firm
from tests.kpis.stores import module_store

DAYS = 30


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def firm(request: pytest.FixtureRequest) -> Iterator[Firm]:
    directory = request.getfixturevalue("tmp_path_factory").mktemp("firm")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
            migrate.upgrade(engine)
        else:  # the spans go in by COPY inside the outbox's and the capture's transactions
            engine = stack.enter_context(module_store(request))
        running = start_firm(directory, engine, seed=7, horizon_days=DAYS, export_spans=False)
        stack.callback(running.stop)
        running.run(DAYS)
        yield running


def test_every_stage_is_stored_though_no_span_was_exported(firm: Firm) -> None:
    crm = firm.world.services["crm"].store.all("opportunities")
    won = {o["id"] for o in crm if o["isWon"]}
    executed = {
        a["source_ref"]["opportunity_id"]
        for a in firm.world.services["clm"].store.all("agreements")
        if a["status"] == "executed"
    }
    assert won and executed
    with firm.engine.connect() as conn:
        by_deal: dict[str, set[str]] = {}
        for deal, stage in conn.execute(
            sa.select(LifecycleEvent.deal_id, LifecycleEvent.stage).where(
                LifecycleEvent.object_type == "deal"
            )
        ):
            by_deal.setdefault(deal, set()).add(stage)
        done = conn.execute(
            sa.select(sa.func.count())
            .select_from(SyncMessage)
            .where(SyncMessage.state == MessageState.SUCCEEDED)
        ).scalar_one()
        # one span per attempt stored with it, plus the capture's observations
        stored_spans = conn.execute(sa.select(sa.func.count()).select_from(Span)).scalar_one()
    # observed in the CRM by the capture
    assert set(by_deal) == won and all("closed_won" in s for s in by_deal.values())
    # reached by our steps
    for deal in executed:
        assert by_deal[deal] >= EXECUTED_STAGES, deal
    assert stored_spans >= done


def test_spans_the_store_refuses_do_not_fail_the_commit_they_ride_with(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A span that cannot be stored is left to the exporter: the capture cursor (or the
    message) it rides with still commits, or one bad span would stall a stream for good."""
    import datetime as dt

    from opentelemetry.sdk.trace import TracerProvider

    from collector import exporter
    from store.outbox import SyncCursor
    from store.states import System

    tracer = TracerProvider().get_tracer("test")
    stored = tracer.start_span("observe crm.opportunities", attributes={"q2c.deal.id": "D1"})
    stored.end()
    refused = tracer.start_span("observe crm.opportunities", attributes={"q2c.deal.id": "D2"})
    refused.end()
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)

    def cursor(conn: sa.Connection, stream: str) -> None:
        conn.execute(
            sa.insert(SyncCursor).values(
                system=System.CRM, stream=stream, cursor="c", updated_at=now
            )
        )

    with engine.begin() as conn:
        cursor(conn, "good")
        exporter.write_spans(conn, [stored])

    def refuse(conn: sa.Connection, *_args: object) -> int:
        # fails in the database, which on PostgreSQL aborts the transaction it is in
        conn.exec_driver_sql("INSERT INTO spans (trace_id) VALUES (NULL)")
        return 0

    monkeypatch.setattr(exporter, "write_rows", refuse)
    with engine.begin() as conn:
        cursor(conn, "bad")
        exporter.write_spans(conn, [refused])

    with engine.connect() as conn:
        streams = set(conn.execute(sa.select(SyncCursor.stream)).scalars())
        deals = set(conn.execute(sa.select(Span.deal_id)).scalars())
    assert streams == {"good", "bad"}
    assert deals == {"D1"}


def test_a_failed_steps_exception_stage_is_stored_with_its_attempt(engine: sa.Engine) -> None:
    """The ERP refuses a posting: the `posting_failed` stage the step records is stored with
    the failed attempt, in its trace, though the tracer exports nothing."""
    import datetime as dt

    from opentelemetry.sdk.trace import TracerProvider

    from collector.exporter import write_spans
    from connectors.errors import FatalError
    from connectors.flows.base import FlowContext
    from connectors.outbox import ClaimedMessage, Step, enqueue
    from connectors.worker import StepResult, Worker
    from store.objects import Invoice
    from store.outbox import DeadLetter, SyncAttempt
    from store.states import System

    tracer = TracerProvider().get_tracer("test")
    now = dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC)
    context = FlowContext(apis={}, tracer=tracer, clock=lambda: now, erp=None)  # type: ignore[arg-type]
    attributes = {"q2c.deal.id": "D1", "q2c.invoice.id": "I1", "q2c.amount": "100.00"}

    def post(message: ClaimedMessage) -> StepResult:
        error = FatalError("POST ar_postings -> 422: entity.id '999999' not found", status=422)
        context.failed_at(error, "post invoice", "posting_failed", System.ERP, attributes)
        raise error

    step = Step("invoice_to_ar", "post", System.ERP, "invoice_to_ar.post:I1", {}, "D1")
    with engine.begin() as conn:
        enqueue(conn, [step], now)
    handlers = {("invoice_to_ar", "post"): post}
    worker = Worker(engine, handlers, tracer, name="w", clock=lambda: now, sink=write_spans)
    assert worker.run_once() == 1

    with engine.connect() as conn:
        events = conn.execute(
            sa.select(LifecycleEvent.object_id, LifecycleEvent.stage, LifecycleEvent.trace_id)
        ).all()
        attempt = conn.execute(sa.select(SyncAttempt.trace_id, SyncAttempt.error_class)).one()
        letter = conn.execute(sa.select(DeadLetter.deal_id, DeadLetter.error_class)).one()
        invoice = conn.execute(sa.select(Invoice.id, Invoice.stage, Invoice.has_exception)).one()
    assert [(e.object_id, e.stage) for e in events] == [("I1", "posting_failed")]
    assert events[0].trace_id == attempt.trace_id
    assert tuple(attempt)[1] == tuple(letter)[1] == "client_error"
    assert tuple(invoice) == ("I1", "posting_failed", True)
