"""The acceptance run: 200+ deals through every flow with the sandbox's `default` fault
profile (latency, 1% server errors, timeouts, wrong-rate and missing-PO invoices), then
every system reconciled record by record against the world: nothing doubled, nothing lost
but what the contract validation refused on purpose."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sandbox.scenario import ScenarioSettings
from store import migrate
from store.engine import make_engine
from store.outbox import DeadLetter, SyncMessage
from store.telemetry import LifecycleEvent, Span
from tests.connectors.firm import Firm, start_firm

DAYS = 100


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    directory = tmp_path_factory.mktemp("busy-firm")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    running = start_firm(
        directory,
        engine,
        seed=7,
        horizon_days=DAYS,
        faults="default",
        scenario=ScenarioSettings(
            opportunities_per_week=20,
            win_rate=0.8,
            accounts=90,
            consultants_per_practice_and_entity=6,
        ),
        # The profile as it is, but hung requests give up after 0.5 s instead of 20 s and
        # the systems' rate limits are lifted (tested on their own elsewhere).
        fault_overrides={
            "timeout_seconds": 0.5,
            "rate_limit_per_second": 5000.0,
            "rate_limit_burst": 5000,
        },
    )
    try:
        running.run(DAYS)
        for _ in range(3):  # the last day's retries, on later "days"
            running.world.clock.advance(dt.timedelta(days=1))
            running.connectors.cycle()
        running.flush()
        yield running
    finally:
        running.stop()


def records(firm: Firm, system: str, collection: str) -> list[dict]:  # type: ignore[type-arg]
    return firm.world.services[system].store.all(collection)


def test_at_least_200_deals_went_through_and_faults_were_injected(firm: Firm) -> None:
    won = [o for o in records(firm, "crm", "opportunities") if o["isWon"]]
    assert len(won) >= 200
    injected = Counter(f["kind"] for s in firm.world.services.values() for f in s.faults.injected())
    assert injected["error"] > 0 and injected["timeout"] > 0, injected
    assert injected["wrong_rate"] + injected["missing_po"] > 0, injected


def test_every_system_holds_each_record_once_and_none_is_missing(firm: Firm) -> None:
    won = {o["id"] for o in records(firm, "crm", "opportunities") if o["isWon"]}
    agreements = Counter(
        a["source_ref"]["opportunity_id"] for a in records(firm, "clm", "agreements")
    )
    assert set(agreements) == won and max(agreements.values()) == 1
    executed = [a for a in records(firm, "clm", "agreements") if a["status"] == "executed"]
    for system, collection, field, expected in (
        ("erp", "customers", "externalId", {a["counterparty"]["crm_account_id"] for a in executed}),
        ("psa", "workspaces", "external_reference", {a["id"] for a in executed}),
        ("billing", "billing_schedules", "contract_number", {a["id"] for a in executed}),
    ):
        counts = Counter(r[field] for r in records(firm, system, collection))
        assert set(counts) == expected and max(counts.values()) == 1, (system, collection)
    charges = Counter(c["source_reference"] for c in records(firm, "billing", "charges"))
    assert max(charges.values()) == 1
    faulted = {
        (f["deal_id"], f["invoice_date"])
        for f in firm.world.services["billing"].faults.injected()
        if f["kind"] in ("wrong_rate", "missing_po")
    }
    invoices = records(firm, "billing", "invoices")
    clean = {i["id"] for i in invoices if (i["deal_id"], i["invoice_date"]) not in faulted}
    refused = {i["id"] for i in invoices} - clean
    postings = Counter(p["externalId"] for p in records(firm, "erp", "ar_postings"))
    assert set(postings) == clean and max(postings.values()) == 1
    assert refused, "no invoice broke its contract"
    with firm.engine.connect() as conn:
        dead = conn.execute(sa.select(DeadLetter.error_class, DeadLetter.deal_id)).all()
        states = dict(
            conn.execute(
                sa.select(SyncMessage.state, sa.func.count()).group_by(SyncMessage.state)
            ).all()
        )
    # Transient faults were retried away; only the contract validation refused anything.
    assert {error for error, _ in dead} == {"validation"}
    assert len(dead) == len(refused)
    assert set(states) == {"succeeded", "dead"}, states


def test_every_deal_has_lifecycle_events_and_spans(firm: Firm) -> None:
    won = {o["id"] for o in records(firm, "crm", "opportunities") if o["isWon"]}
    with firm.engine.connect() as conn:
        with_events = set(
            conn.execute(
                sa.select(LifecycleEvent.deal_id).where(LifecycleEvent.stage == "closed_won")
            ).scalars()
        )
        traced = set(conn.execute(sa.select(Span.deal_id).distinct()).scalars())
        paid = conn.execute(
            sa.select(sa.func.count())
            .select_from(LifecycleEvent)
            .where(LifecycleEvent.stage == "paid", LifecycleEvent.object_type == "payment")
        ).scalar()
    assert with_events == won
    assert won <= traced
    assert paid == len(records(firm, "erp", "payments")) > 0
