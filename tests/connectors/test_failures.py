"""When things go wrong: invoices that break their contract are refused with the reason,
invoices the ERP refuses become posting failures, an ERP outage pauses postings, and a
bulk replay afterwards posts each invoice once."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connectors.replay import replay_statuses, request_replay
from kpis.compute import compute_kpis
from kpis.frames import load_store_frames
from probes.base import ProbeContext
from probes.reconciliation import reconciliation_probes
from sandbox.actors import UNKNOWN_CUSTOMER as UNKNOWN
from store import migrate
from store.engine import make_engine
from store.objects import Invoice
from store.outbox import DeadLetter, SyncAttempt, SyncMessage
from store.states import DeadLetterState, ReplayOutcome
from store.telemetry import LifecycleEvent
from tests.connectors.firm import Firm, start_firm
from tests.sandbox.http import admin_put_faults
from throughline.config import Settings

DAYS = 70
FAULTY_RUN = dt.date(2026, 2, 1)  # billing's monthly run with data faults on
OUTAGE = (dt.date(2026, 3, 1), dt.date(2026, 3, 4))  # the ERP is down from the run for 3 days


@dataclass
class Story:
    firm: Firm
    dead_during_outage: list[int]
    replay_ids: list[int]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    directory = tmp_path_factory.mktemp("failures")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    firm = start_firm(directory, engine, seed=42, horizon_days=DAYS + 30)
    billing, erp = firm.servers.urls["billing"], firm.servers.urls["erp"]
    firm.connectors.worker._policy = type(firm.connectors.worker._policy)(  # few tries: dead soon
        max_attempts=2, base=dt.timedelta(minutes=5)
    )

    def before_sync(day: dt.date) -> None:
        if day == FAULTY_RUN - dt.timedelta(days=1):
            admin_put_faults(
                billing, wrong_rate_rate=0.4, missing_po_rate=0.4, unknown_customer_rate=1.0
            )
        if day == FAULTY_RUN:
            admin_put_faults(
                billing, wrong_rate_rate=0.0, missing_po_rate=0.0, unknown_customer_rate=0.0
            )
        if day == OUTAGE[0]:
            admin_put_faults(erp, outage=True)
        if day == OUTAGE[1]:
            admin_put_faults(erp, outage=False)

    try:
        firm.run((OUTAGE[1] - dt.date(2026, 1, 5)).days + 1, before_sync)
        with engine.connect() as conn:
            dead = (
                conn.execute(
                    sa.select(DeadLetter.id).where(
                        # the outage's: not those refused by our validation or by the ERP
                        DeadLetter.error_class.notin_(["validation", "client_error"])
                    )
                )
                .scalars()
                .all()
            )
        now = firm.world.clock.now()
        requests = request_replay(engine, dead, "oncall@firm", "ERP back after the outage", now)
        firm.run(5)
        yield Story(firm, list(dead), [r.replay_id for r in requests])
    finally:
        firm.stop()


def test_invoices_that_break_the_contract_are_refused_with_the_reason(story: Story) -> None:
    faults = story.firm.world.services["billing"].faults.injected()
    faulty = {f["deal_id"] for f in faults if f["kind"] in ("wrong_rate", "missing_po")}
    assert faulty, "the faulty billing run injected nothing"
    with story.firm.engine.connect() as conn:
        refused = conn.execute(
            sa.select(DeadLetter.deal_id, DeadLetter.error).where(
                DeadLetter.error_class == "validation"
            )
        ).all()
        rejected = (
            conn.execute(
                sa.select(LifecycleEvent.object_id).where(LifecycleEvent.stage == "rejected")
            )
            .scalars()
            .all()
        )
    assert {deal for deal, _ in refused} == faulty
    assert all("PO" in error or "contract rate" in error for _, error in refused)
    assert len(rejected) == len(refused)
    posted = {p["externalId"] for p in story.firm.world.services["erp"].store.all("ar_postings")}
    assert not posted & set(rejected)  # nothing that broke the contract reached AR


def test_the_outage_dead_letters_then_a_bulk_replay_posts_each_invoice_once(story: Story) -> None:
    assert story.dead_during_outage, "the outage killed no message"
    statuses = replay_statuses(story.firm.engine, story.replay_ids)
    assert {s.outcome for s in statuses} <= {ReplayOutcome.SUCCEEDED, ReplayOutcome.ALREADY_DONE}
    assert len(statuses) == len(story.dead_during_outage)
    with story.firm.engine.connect() as conn:
        letters = dict(
            conn.execute(
                sa.select(DeadLetter.state, sa.func.count()).group_by(DeadLetter.state)
            ).all()
        )
        waiting = conn.execute(
            sa.select(sa.func.count())
            .select_from(SyncMessage)
            .where(SyncMessage.state.in_(["pending", "running"]))
        ).scalar()
    assert letters.get(DeadLetterState.REPLAYED, 0) == len(story.dead_during_outage)
    assert waiting == 0
    postings = Counter(
        p["externalId"] for p in story.firm.world.services["erp"].store.all("ar_postings")
    )
    assert max(postings.values()) == 1
    invoices = {i["id"] for i in story.firm.world.services["billing"].store.all("invoices")}
    with story.firm.engine.connect() as conn:
        refused = set(
            conn.execute(
                sa.select(LifecycleEvent.object_id).where(
                    LifecycleEvent.stage.in_(["rejected", "posting_failed"])
                )
            ).scalars()
        )
    assert set(postings) == invoices - refused


def test_invoices_the_erp_refuses_are_posting_failures_in_the_exception_rate(
    story: Story,
) -> None:
    billing = story.firm.world.services["billing"].store.all("invoices")
    unknown = {i["id"]: i["deal_id"] for i in billing if i["customer_account_number"] == UNKNOWN}
    engine = story.firm.engine
    with engine.connect() as conn:
        rejected = set(
            conn.execute(
                sa.select(LifecycleEvent.object_id).where(LifecycleEvent.stage == "rejected")
            ).scalars()
        )
        failed = conn.execute(
            sa.select(LifecycleEvent.object_id, LifecycleEvent.trace_id).where(
                LifecycleEvent.stage == "posting_failed"
            )
        ).all()
        letters = conn.execute(
            sa.select(DeadLetter.deal_id, DeadLetter.error, DeadLetter.message_id).where(
                DeadLetter.error_class == "client_error"
            )
        ).all()
        attempts = conn.execute(
            sa.select(SyncAttempt.message_id, SyncAttempt.trace_id).where(
                SyncAttempt.message_id.in_([m for _, _, m in letters])
            )
        ).all()
        invoices = dict(
            conn.execute(
                sa.select(Invoice.id, Invoice.has_exception).where(Invoice.id.in_(list(unknown)))
            ).all()
        )
    # our validation runs first: an invoice that also broke its contract is rejected
    refused = set(unknown) - rejected
    assert refused, f"no invoice to an unknown customer passed validation: {unknown} {rejected}"
    assert {invoice for invoice, _ in failed} == refused
    assert {deal for deal, _, _ in letters} == {unknown[i] for i in refused}
    assert all("422" in error and "999999" in error for _, error, _ in letters)
    # each stage was stored with the attempt the ERP refused, in its trace
    assert {trace for _, trace in failed} <= {trace for _, trace in attempts}
    assert all(invoices[i] for i in refused)
    posted = {p["externalId"] for p in story.firm.world.services["erp"].store.all("ar_postings")}
    assert not posted & set(unknown)

    now = story.firm.world.clock.now()
    with engine.connect() as conn:
        frames = load_store_frames(conn)
    [rate] = [
        v
        for v in compute_kpis(frames, None, Settings(), now)
        if v.kpi == "invoice_exception_rate" and v.window == "90d" and v.dimension == "all"
    ]
    # the rate's numerator lists the invoices with an exception: the ERP's refusals too
    assert refused <= set(rate.meta["exception_invoices"])


def test_invoices_the_erp_refuses_are_credited_in_billing_and_leave_open_ar(
    story: Story,
) -> None:
    billing = story.firm.world.services["billing"].store
    amounts = {i["id"]: Decimal(i["amount"]) for i in billing.all("invoices")}
    engine = story.firm.engine
    with engine.connect() as conn:
        failed = set(
            conn.execute(
                sa.select(LifecycleEvent.object_id).where(LifecycleEvent.stage == "posting_failed")
            ).scalars()
        )
        credited = conn.execute(
            sa.select(LifecycleEvent.object_id, LifecycleEvent.source_system).where(
                LifecycleEvent.stage == "credited"
            )
        ).all()
        stages = dict(
            conn.execute(sa.select(Invoice.id, Invoice.stage).where(Invoice.id.in_(failed))).all()
        )
    assert failed, "the ERP refused no invoice"
    notes = billing.all("credit_notes")
    # one credit note per refused invoice, for all of it, saying why; nothing else credited
    assert Counter(n["invoice_id"] for n in notes) == Counter(failed)
    assert all(Decimal(n["amount"]) == amounts[n["invoice_id"]] for n in notes)
    assert all("ERP refused" in n["reason"] and "999999" in n["reason"] for n in notes)
    assert {(i, "billing") for i in failed} == set(credited)
    assert set(stages.values()) == {"credited"}

    now = story.firm.world.clock.now()
    with engine.connect() as conn:
        frames = load_store_frames(conn)
    [open_ar] = [
        v
        for v in compute_kpis(frames, None, Settings(), now)
        if v.kpi == "open_ar" and v.dimension == "all"
    ]
    assert open_ar.member_count > 0
    assert not failed & set(open_ar.members)  # a credited invoice is owed by nobody

    # nor is it owed an AR posting: the reconciliation counts it, it does not report it
    ctx = ProbeContext(engine, story.firm.connectors.context.apis, story.firm.world.clock.now)
    [ledger] = [p for p in reconciliation_probes() if p.name == "reconcile.invoices_vs_postings"]
    outcome = ledger.run(ctx)
    assert not failed & {f.object_id for f in outcome.findings if f.kind == "never_posted"}
    assert outcome.detail["credited_in_full"] == len(failed)


def test_replaying_a_refused_invoice_after_its_credit_posts_and_credits_nothing(
    story: Story,
) -> None:
    engine = story.firm.engine
    with engine.connect() as conn:
        letters = (
            conn.execute(
                sa.select(DeadLetter.id).where(
                    DeadLetter.error_class == "client_error",
                    DeadLetter.state == DeadLetterState.OPEN,
                )
            )
            .scalars()
            .all()
        )
    assert letters
    billing = story.firm.world.services["billing"].store
    notes = billing.all("credit_notes")
    now = story.firm.world.clock.now()
    requests = request_replay(engine, letters, "finance@firm", "replay after the credit", now)
    story.firm.run(1)
    statuses = replay_statuses(engine, [r.replay_id for r in requests])
    # the invoice was credited for good: the replay finds it done, it does not try the ERP
    # again (which would refuse it again) nor credit it a second time
    assert [s.outcome for s in statuses] == [ReplayOutcome.ALREADY_DONE] * len(letters)
    assert billing.all("credit_notes") == notes
    posted = {p["externalId"] for p in story.firm.world.services["erp"].store.all("ar_postings")}
    assert not posted & {n["invoice_id"] for n in notes}
