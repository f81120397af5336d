"""When things go wrong: invoices that break their contract are refused with the reason,
an ERP outage pauses postings, and a bulk replay afterwards posts each invoice once."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from connectors.replay import replay_statuses, request_replay
from store import migrate
from store.engine import make_engine
from store.outbox import DeadLetter, SyncMessage
from store.states import DeadLetterState, ReplayOutcome
from store.telemetry import LifecycleEvent
from tests.connectors.firm import Firm, start_firm
from tests.sandbox.http import admin_put_faults

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
            admin_put_faults(billing, wrong_rate_rate=0.4, missing_po_rate=0.4)
        if day == FAULTY_RUN:
            admin_put_faults(billing, wrong_rate_rate=0.0, missing_po_rate=0.0)
        if day == OUTAGE[0]:
            admin_put_faults(erp, outage=True)
        if day == OUTAGE[1]:
            admin_put_faults(erp, outage=False)

    try:
        firm.run((OUTAGE[1] - dt.date(2026, 1, 5)).days + 1, before_sync)
        with engine.connect() as conn:
            dead = (
                conn.execute(sa.select(DeadLetter.id).where(DeadLetter.error_class != "validation"))
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
    faulty = {f["deal_id"] for f in faults}
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
                sa.select(LifecycleEvent.object_id).where(LifecycleEvent.stage == "rejected")
            ).scalars()
        )
    assert set(postings) == invoices - refused
