"""Lifecycle derivation rules (docs/lifecycle.md): history keeps everything, stages only
move forward, money and first-stage timestamps follow the earliest events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import Engine

from collector.lifecycle import Observation
from collector.lifecycle_store import LifecycleApplier
from store.objects import Contract, Deal, Invoice, Payment, Project
from store.telemetry import LifecycleEvent

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=400)


def obs(
    key: str, stage: str, hours: float, deal: str = "D1", amount: str | None = None, **ids: str
) -> Observation:
    return Observation(
        dedup_key=key,
        stage=stage,
        occurred_at=T0 + dt.timedelta(hours=hours),
        deal_id=deal,
        ids=ids,
        amount=Decimal(amount) if amount else None,
        currency="USD" if amount else None,
    )


def apply(engine: Engine, *observations: Observation) -> int:
    with engine.begin() as conn:
        return LifecycleApplier(conn, NOW).apply(observations)


def row(engine: Engine, model: type, object_id: str) -> sa.Row:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return conn.execute(sa.select(model).where(model.id == object_id)).one()  # type: ignore[attr-defined]


def test_a_deal_moves_through_its_stages_and_never_back(engine: Engine) -> None:
    apply(engine, obs("a", "closed_won", 0, amount="50000"))
    apply(engine, obs("b", "contract_executed", 48, contract="C1", amount="48000"))
    apply(engine, obs("c", "project_activated", 60, project="P1", contract="C1"))
    # A late, out-of-order delivery of an earlier stage is kept but does not move the deal.
    assert apply(engine, obs("d", "contract_executed", 47, contract="C1")) == 2
    deal = row(engine, Deal, "D1")
    assert (deal.stage, deal.stage_entered_at, deal.closed_won_at, str(deal.amount)) == (
        "project_activated",
        T0 + dt.timedelta(hours=60),
        T0,
        "50000.00",
    )
    contract = row(engine, Contract, "C1")
    assert (contract.executed_at, str(contract.value)) == (T0 + dt.timedelta(hours=47), "48000.00")
    assert row(engine, Project, "P1").contract_id == "C1"
    with engine.connect() as conn:
        deal_history = (
            conn.execute(
                sa.select(LifecycleEvent.stage)
                .where(LifecycleEvent.object_type == "deal")
                .order_by(LifecycleEvent.occurred_at)
            )
            .scalars()
            .all()
        )
    assert deal_history == [
        "closed_won",
        "contract_executed",
        "contract_executed",
        "project_activated",
    ]


def test_a_deal_that_skips_a_stage_still_lands_on_the_later_one(engine: Engine) -> None:
    apply(engine, obs("a", "closed_won", 0), obs("b", "project_activated", 30, project="P1"))
    assert row(engine, Deal, "D1").stage == "project_activated"


def test_posted_before_invoiced_keeps_the_invoice_posted(engine: Engine) -> None:
    apply(engine, obs("p", "posted", 5, invoice="I1"))
    apply(engine, obs("i", "invoiced", 4, invoice="I1", amount="1000"))
    invoice = row(engine, Invoice, "I1")
    assert (invoice.stage, invoice.issued_at, invoice.posted_at, str(invoice.amount)) == (
        "posted",
        T0 + dt.timedelta(hours=4),
        T0 + dt.timedelta(hours=5),
        "1000.00",
    )


def test_exceptions_flag_the_invoice_and_a_later_success_moves_it_on(engine: Engine) -> None:
    apply(engine, obs("i", "invoiced", 0, invoice="I1", amount="800"))
    apply(engine, obs("f", "posting_failed", 1, invoice="I1"))
    assert (row(engine, Invoice, "I1").stage, row(engine, Invoice, "I1").has_exception) == (
        "posting_failed",
        True,
    )
    apply(engine, obs("p", "posted", 3, invoice="I1"))
    invoice = row(engine, Invoice, "I1")
    assert (invoice.stage, invoice.has_exception) == ("posted", True)


def test_partial_payments_pay_the_invoice_only_when_covered(engine: Engine) -> None:
    apply(engine, obs("i", "invoiced", 0, invoice="I1", amount="1000"))
    apply(engine, obs("p1", "paid", 24 * 40, invoice="I1", amount="400", payment="PAY1"))
    half = row(engine, Invoice, "I1")
    assert (half.stage, str(half.amount_paid), half.paid_at) == ("invoiced", "400.00", None)
    apply(engine, obs("p2", "paid", 24 * 61, invoice="I1", amount="600", payment="PAY2"))
    paid = row(engine, Invoice, "I1")
    assert (paid.stage, str(paid.amount_paid), paid.paid_at) == (
        "paid",
        "1000.00",
        T0 + dt.timedelta(hours=24 * 61),
    )
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Payment)).scalar() == 2
    assert row(engine, Deal, "D1").stage == "first_cash"


def test_first_invoiced_is_the_earliest_invoice_even_when_it_arrives_last(engine: Engine) -> None:
    apply(engine, obs("a", "closed_won", 0))
    apply(engine, obs("i2", "invoiced", 24 * 60, invoice="I2", amount="10"))
    apply(engine, obs("i1", "invoiced", 24 * 30, invoice="I1", amount="10"))
    with engine.connect() as conn:
        first = (
            conn.execute(
                sa.select(LifecycleEvent.occurred_at).where(
                    LifecycleEvent.stage == "first_invoiced"
                )
            )
            .scalars()
            .all()
        )
    assert first == [T0 + dt.timedelta(hours=24 * 30)]


def test_an_event_that_names_only_its_invoice_finds_its_deal(engine: Engine) -> None:
    apply(engine, obs("i", "invoiced", 0, invoice="I1", amount="10"))
    apply(
        engine,
        Observation(
            dedup_key="p",
            stage="posted",
            occurred_at=T0 + dt.timedelta(hours=1),
            deal_id=None,
            ids={"invoice": "I1"},
        ),
    )
    assert row(engine, Invoice, "I1").stage == "posted"
    assert row(engine, Deal, "D1").stage == "first_posted"


def test_an_invoiced_billable_item_links_to_its_invoice_and_leaves_the_invoice_alone(
    engine: Engine,
) -> None:
    from store.objects import BillableItem

    apply(engine, obs("a", "billable_approved", 0, amount="900", billable_item="T1"))
    apply(engine, obs("i", "invoiced", 24, invoice="I1", amount="5000"))
    apply(engine, obs("b", "invoiced", 25, billable_item="T1", invoice="I1", amount="900"))
    item = row(engine, BillableItem, "T1")
    assert (item.stage, item.invoice_id, item.invoiced_at) == (
        "invoiced",
        "I1",
        T0 + dt.timedelta(hours=25),
    )
    assert str(row(engine, Invoice, "I1").amount) == "5000.00"
