"""The quote-to-cash flows against the sandbox firm: two months of activity carried by our
connectors; every system holds what it should, once, and every deal has its lifecycle."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors.flows.base import money
from store import migrate
from store.engine import make_engine
from store.objects import Deal, Invoice
from store.outbox import DeadLetter, SyncMessage
from store.telemetry import LifecycleEvent, Span
from tests.connectors.firm import EXECUTED_STAGES, Firm, start_firm

DAYS = 75


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    directory = tmp_path_factory.mktemp("firm")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    running = start_firm(directory, engine, seed=3, horizon_days=DAYS)
    try:
        running.run(DAYS)
        yield running
    finally:
        running.stop()


def records(firm: Firm, system: str, collection: str) -> list[dict]:  # type: ignore[type-arg]
    return firm.world.services[system].store.all(collection)


def test_each_system_holds_exactly_the_records_it_should(firm: Firm) -> None:
    won = {o["id"] for o in records(firm, "crm", "opportunities") if o["isWon"]}
    agreements = records(firm, "clm", "agreements")
    assert won and {a["source_ref"]["opportunity_id"] for a in agreements} == won
    assert len(agreements) == len(won)  # one contract request per won deal, no duplicate

    executed = [a for a in agreements if a["status"] == "executed"]
    assert executed
    accounts = {a["counterparty"]["crm_account_id"] for a in executed}
    customers = Counter(c["externalId"] for c in records(firm, "erp", "customers"))
    assert set(customers) == accounts and max(customers.values()) == 1
    workspaces = Counter(w["external_reference"] for w in records(firm, "psa", "workspaces"))
    assert set(workspaces) == {a["id"] for a in executed} and max(workspaces.values()) == 1
    schedules = Counter(s["contract_number"] for s in records(firm, "billing", "billing_schedules"))
    assert set(schedules) == {a["id"] for a in executed} and max(schedules.values()) == 1

    charges = Counter(c["source_reference"] for c in records(firm, "billing", "charges"))
    assert charges and max(charges.values()) == 1
    invoices = records(firm, "billing", "invoices")
    postings = Counter(p["externalId"] for p in records(firm, "erp", "ar_postings"))
    assert invoices and max(postings.values()) == 1
    assert set(postings) == {i["id"] for i in invoices}  # no data faults: every one posted


def test_amendments_reach_the_billing_schedule(firm: Firm) -> None:
    amended = {
        a["agreement_id"]: a["changes"]
        for a in records(firm, "clm", "amendments")
        if a["status"] == "executed"
        and (a["changes"].get("cap") or a["changes"].get("term_months"))
    }
    assert amended, "no amendment in the period"
    schedules = {s["contract_number"]: s for s in records(firm, "billing", "billing_schedules")}
    for agreement, changes in amended.items():
        schedule = schedules[agreement]
        if changes.get("cap"):
            assert money(schedule["cap_amount"]) == money(changes["cap"]["amount"])
        if changes.get("term_months"):
            assert schedule["term_months"] == changes["term_months"]


def test_every_deal_has_its_lifecycle_and_its_spans(firm: Firm) -> None:
    with firm.engine.connect() as conn:
        won = {o["id"] for o in records(firm, "crm", "opportunities") if o["isWon"]}
        stages = conn.execute(
            sa.select(LifecycleEvent.deal_id, LifecycleEvent.stage).where(
                LifecycleEvent.object_type == "deal"
            )
        ).all()
        by_deal: dict[str, set[str]] = {}
        for deal, stage in stages:
            by_deal.setdefault(deal, set()).add(stage)
        assert set(by_deal) == won
        assert all("closed_won" in s for s in by_deal.values())
        executed = {
            a["source_ref"]["opportunity_id"]
            for a in records(firm, "clm", "agreements")
            if a["status"] == "executed"
        }
        for deal in executed:
            assert by_deal[deal] >= EXECUTED_STAGES, deal
        traced = set(conn.execute(sa.select(Span.deal_id).distinct()).scalars())
        assert won <= traced
        invoiced = conn.execute(sa.select(sa.func.count()).select_from(Invoice)).scalar()
        assert invoiced == len(records(firm, "billing", "invoices"))
        assert conn.execute(sa.select(sa.func.count()).select_from(Deal)).scalar() == len(won)


def test_nothing_is_left_undone(firm: Firm) -> None:
    with firm.engine.connect() as conn:
        states = dict(
            conn.execute(
                sa.select(SyncMessage.state, sa.func.count()).group_by(SyncMessage.state)
            ).all()
        )
        dead = conn.execute(sa.select(DeadLetter.error_class, DeadLetter.error)).all()
    assert dead == []
    assert set(states) == {"succeeded"}, states


def test_disputes_in_the_erp_are_invoice_exceptions_and_reach_the_crm_account(
    firm: Firm,
) -> None:
    postings = records(firm, "erp", "ar_postings")
    disputed = {p["externalId"]: p for p in postings if p.get("disputedOn")}
    assert disputed, "no customer disputed an invoice in the period"
    with firm.engine.connect() as conn:
        events = conn.execute(
            sa.select(
                LifecycleEvent.object_id, LifecycleEvent.deal_id, LifecycleEvent.occurred_at
            ).where(LifecycleEvent.stage == "disputed")
        ).all()
        flagged = dict(
            conn.execute(
                sa.select(Invoice.id, Invoice.has_exception).where(Invoice.id.in_(list(disputed)))
            ).all()
        )
    # each dispute once, on the invoice and deal it belongs to, on the day it was raised
    assert sorted(e.object_id for e in events) == sorted(disputed)
    for invoice, deal, at in events:
        assert deal == disputed[invoice]["custbody_deal_id"]
        assert at.date().isoformat() == disputed[invoice]["disputedOn"]
    assert flagged == {invoice: True for invoice in disputed}

    # the CRM account follows: disputed, unless a payment the customer made later says
    # otherwise (a payment on the same or the next day may run before or after it)
    customers = {c["id"]: c["externalId"] for c in records(firm, "erp", "customers")}
    last_paid: dict[str, str] = {}
    for payment in records(firm, "erp", "payments"):
        account = customers[str(payment["customer"]["id"])]
        last_paid[account] = max(last_paid.get(account, ""), payment["tranDate"])
    accounts = {a["id"]: a for a in records(firm, "crm", "accounts")}
    latest = {}
    for posting in disputed.values():
        account = customers[str(posting["entity"]["id"])]
        latest[account] = max(latest.get(account, ""), posting["disputedOn"])
    settled_after = 0
    for account, day in latest.items():
        paid = last_paid.get(account, "")
        if paid and dt.date.fromisoformat(paid) >= dt.date.fromisoformat(day) - dt.timedelta(1):
            settled_after += 1
            continue
        assert accounts[account]["cashStatus"] == "disputed", account
    assert settled_after < len(latest), "every disputing customer paid afterwards"
