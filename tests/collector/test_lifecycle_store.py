"""The bulk applier writes through the raw driver: what it stores must be what SQLAlchemy
stores for the same values, redeliveries must land once (in one batch and across batches),
and the deal's derived first_* events must move to the earliest invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from collector.lifecycle import Observation
from collector.lifecycle_store import LifecycleApplier, note_webhook_sources
from store.objects import BillableItem, Deal, Invoice
from store.telemetry import LifecycleEvent, WebhookSource

T0 = dt.datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=400)


def obs(key: str, stage: str, hours: float, deal: str | None = "D1", **kw: Any) -> Observation:
    ids = {
        k: kw.pop(k)
        for k in ("invoice", "billable_item", "contract", "project", "payment")
        if k in kw
    }
    return Observation(
        dedup_key=key,
        stage=stage,
        occurred_at=T0 + dt.timedelta(hours=hours),
        deal_id=deal,
        ids=ids,
        **kw,
    )


def apply(engine: Engine, *observations: Observation) -> int:
    with engine.begin() as conn:
        return LifecycleApplier(conn, NOW).apply(observations)


def raw(engine: Engine, table: str, key: str, value: str) -> dict[str, Any]:
    """A stored row as the database holds it (on SQLite with each value's storage class)."""
    with engine.connect() as conn:
        columns = [c.name for c in sa.Table(table, sa.MetaData(), autoload_with=conn).columns]
        if engine.dialect.name == "sqlite":
            select = ", ".join(f"{c}, typeof({c})" for c in columns)
        else:
            select = ", ".join(f"{c}::text, pg_typeof({c})::text" for c in columns)
        row = conn.execute(
            sa.text(f"SELECT {select} FROM {table} WHERE {key} = :v"), {"v": value}
        ).one()
    return {c: (row[2 * i], row[2 * i + 1]) for i, c in enumerate(columns)}


def test_rows_are_stored_as_sqlalchemy_stores_them(engine: Engine) -> None:
    apply(
        engine,
        obs(
            "a",
            "closed_won",
            0,
            deal="D9",
            amount=Decimal("1234.5"),
            currency="EUR",
            source_system="crm",
            trace_id="t" * 32,
            span_id="s" * 16,
            details={"region": "emea", "legal_entity": "US01"},
        ),
        obs("i", "invoiced", 2, invoice="I1", amount=Decimal("99.99"), currency="EUR"),
        obs("p", "posting_failed", 3, invoice="I1"),
        obs("b", "billable_approved", 1, billable_item="T1", details={"quantity": "2.5"}),
    )
    # The same values through SQLAlchemy, as the reference.
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Deal),
            {
                "id": "REF",
                "region": "emea",
                "legal_entity": "US01",
                "currency": "EUR",
                "amount": Decimal("1234.5"),
                "stage": "closed_won",
                "stage_entered_at": T0,
                "closed_won_at": T0,
                "created_at": NOW,
                "updated_at": NOW,
                "account_id": None,
                "account_name": None,
                "name": None,
                "practice": None,
                "owner": None,
            },
        )
        conn.execute(
            sa.insert(LifecycleEvent),
            {
                "dedup_key": "REF",
                "object_type": "deal",
                "object_id": "D9",
                "deal_id": "D9",
                "stage": "closed_won",
                "occurred_at": T0,
                "source_system": "crm",
                "trace_id": "t" * 32,
                "span_id": "s" * 16,
                "amount": Decimal("1234.5"),
                "currency": "EUR",
                "attributes": {"region": "emea", "legal_entity": "US01"},
                "recorded_at": NOW,
            },
        )
        conn.execute(
            sa.insert(LifecycleEvent),
            {
                "dedup_key": "REF2",
                "object_type": "invoice",
                "object_id": "I1",
                "deal_id": "D1",
                "stage": "posting_failed",
                "occurred_at": T0 + dt.timedelta(hours=3),
                "source_system": None,
                "trace_id": None,
                "span_id": None,
                "amount": None,
                "currency": None,
                "attributes": None,
                "recorded_at": NOW,
            },
        )
    deal, reference = raw(engine, "deals", "id", "D9"), raw(engine, "deals", "id", "REF")
    assert {k: v for k, v in deal.items() if k != "id"} == {
        k: v for k, v in reference.items() if k != "id"
    }
    for key, ref in (("a:deal", "REF"), ("p:invoice", "REF2")):
        event, reference = (raw(engine, "lifecycle_events", "dedup_key", k) for k in (key, ref))
        assert {k: v for k, v in event.items() if k not in ("id", "dedup_key")} == {
            k: v for k, v in reference.items() if k not in ("id", "dedup_key")
        }
    # Read back through SQLAlchemy: the types the rest of the application sees.
    with engine.connect() as conn:
        invoice = conn.execute(sa.select(Invoice).where(Invoice.id == "I1")).one()
        item = conn.execute(sa.select(BillableItem).where(BillableItem.id == "T1")).one()
    assert (invoice.stage, invoice.has_exception, invoice.amount, invoice.amount_paid) == (
        "posting_failed",
        True,
        Decimal("99.99"),
        Decimal("0"),
    )
    assert invoice.issued_at == T0 + dt.timedelta(hours=2)
    assert invoice.created_at == NOW and invoice.updated_at == NOW
    assert (item.quantity, item.approved_at, item.currency) == (
        Decimal("2.5"),
        T0 + dt.timedelta(hours=1),
        "USD",
    )


def test_redeliveries_land_once_in_one_batch_and_across_batches(engine: Engine) -> None:
    first = obs("k", "invoiced", 1, invoice="I1", amount=Decimal("10"))
    assert apply(engine, first, first, obs("c", "closed_won", 0)) == 2
    assert apply(engine, first, obs("c", "closed_won", 0)) == 0
    assert apply(engine, first, obs("p", "posted", 2, invoice="I1")) == 1
    with engine.connect() as conn:
        keys = (
            conn.execute(sa.select(LifecycleEvent.dedup_key).order_by(LifecycleEvent.id))
            .scalars()
            .all()
        )
    # In arrival order by occurred_at; the deal's derived stages beside them.
    assert keys == [
        "c:deal",
        "k:invoice",
        "derived:D1:first_invoiced",
        "p:invoice",
        "derived:D1:first_posted",
    ]
    with engine.connect() as conn:
        deal = conn.execute(sa.select(Deal).where(Deal.id == "D1")).one()
        invoice = conn.execute(sa.select(Invoice).where(Invoice.id == "I1")).one()
    assert (deal.stage, invoice.stage, invoice.amount) == ("first_posted", "posted", Decimal("10"))


def test_a_redelivered_payment_is_counted_once(engine: Engine) -> None:
    apply(engine, obs("i", "invoiced", 0, invoice="I1", amount=Decimal("100")))
    payment = obs("pay", "paid", 5, invoice="I1", payment="P1", amount=Decimal("40"))
    apply(engine, payment, payment)
    apply(engine, payment)
    with engine.connect() as conn:
        invoice = conn.execute(sa.select(Invoice).where(Invoice.id == "I1")).one()
    assert (invoice.stage, invoice.amount_paid) == ("invoiced", Decimal("40"))


def test_a_derived_first_stage_moves_to_an_earlier_invoice(engine: Engine) -> None:
    apply(engine, obs("late", "invoiced", 50, invoice="I2", trace_id="b" * 32, span_id="2" * 16))
    apply(engine, obs("early", "invoiced", 10, invoice="I1", trace_id="a" * 32, span_id="1" * 16))
    apply(engine, obs("later", "invoiced", 70, invoice="I3"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                LifecycleEvent.occurred_at, LifecycleEvent.trace_id, LifecycleEvent.span_id
            ).where(LifecycleEvent.dedup_key == "derived:D1:first_invoiced")
        ).all()
    assert [tuple(r) for r in rows] == [(T0 + dt.timedelta(hours=10), "a" * 32, "1" * 16)]


def test_an_observation_with_no_known_deal_stores_its_event_only(engine: Engine) -> None:
    assert apply(engine, obs("x", "posted", 1, deal=None, invoice="NOPE")) == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Invoice)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(LifecycleEvent)).scalar() == 1


def test_a_naive_time_is_refused_and_nothing_is_stored(engine: Engine) -> None:
    naive = Observation(
        dedup_key="n", stage="closed_won", occurred_at=dt.datetime(2026, 1, 1), deal_id="D1", ids={}
    )
    with pytest.raises((ValueError, sa.exc.StatementError), match="naive"):
        apply(engine, naive)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(LifecycleEvent)).scalar() == 0


def test_a_batch_without_observations_touches_nothing(engine: Engine) -> None:
    assert apply(engine) == 0


def test_money_of_mixed_kinds_in_one_batch(engine: Engine) -> None:
    # One batch: an invoice never paid (amount_paid 0), one paid in part, a payment without
    # an amount (stored as 0) beside one with an amount; one array per column on PostgreSQL.
    apply(
        engine,
        obs("i1", "invoiced", 0, invoice="I1", amount=Decimal("100.10")),
        obs("i2", "invoiced", 0, invoice="I2", amount=Decimal("200")),
        obs("p1", "paid", 1, invoice="I2", payment="P1", amount=Decimal("50.25")),
        obs("p2", "paid", 2, invoice="I1", payment="P2"),
    )
    with engine.connect() as conn:
        invoices = dict(conn.execute(sa.select(Invoice.id, Invoice.amount_paid)).all())
        payments = dict(conn.execute(sa.text("SELECT id, amount FROM payments")).all())
        stages = dict(conn.execute(sa.select(Invoice.id, Invoice.stage)).all())
    assert invoices == {"I1": Decimal("0"), "I2": Decimal("50.25")}
    assert {k: Decimal(str(v)) for k, v in payments.items()} == {
        "P1": Decimal("50.25"),
        "P2": Decimal("0"),
    }
    assert stages == {"I1": "paid", "I2": "invoiced"}


def test_webhook_sources_keep_the_latest_moment_and_count_every_event(engine: Engine) -> None:
    """A write noted with an earlier moment (a slower writer committing later) does not
    move a source's last event back; counts add up."""
    early, late = dt.datetime(2026, 6, 1, tzinfo=dt.UTC), dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    with engine.begin() as conn:
        note_webhook_sources(conn, {"/crm": 2, "/psa": 1}, late)
    with engine.begin() as conn:
        note_webhook_sources(conn, {"/crm": 3}, early)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(WebhookSource.source, WebhookSource.last_received_at, WebhookSource.events)
        ).all()
    assert sorted(tuple(r) for r in rows) == [("/crm", late, 5), ("/psa", late, 1)]
