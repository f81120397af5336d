"""Lifecycle derivation: stage observations (from OK spans with `q2c.stage`, or from
CloudEvents) become lifecycle events and move the objects' current stage.

The rules are written down in docs/lifecycle.md. In short: every event is kept once
(`dedup_key`), the history keeps everything, and an object's current stage only moves
forward, so a late, out-of-order delivery never moves it back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from collector.span_record import BILLABLE_ID, PAYMENT_ID, SpanRecord
from store.objects import BillableItem, Contract, Deal, Invoice, Payment, Project
from store.states import DealStage, InvoiceStage, ObjectType
from store.telemetry import LifecycleEvent

DEAL_RANK = {stage.value: n for n, stage in enumerate(DealStage)}
# Invoice and billable-item ranks; exceptions sit where they interrupt the happy path.
ITEM_RANK = {
    "billable_approved": 0.0,
    "validated": 1.0,
    "rejected": 1.5,
    "invoiced": 2.0,
    "posting_failed": 2.5,
    "posted": 3.0,
    "disputed": 3.5,
    "paid": 4.0,
    "credited": 5.0,
}
EXCEPTIONS = frozenset(
    s.value
    for s in (
        InvoiceStage.REJECTED,
        InvoiceStage.POSTING_FAILED,
        InvoiceStage.DISPUTED,
        InvoiceStage.CREDITED,
    )
)
ITEM_STAGES = frozenset({"billable_approved", "validated", "rejected"})
INVOICE_STAGES = frozenset({"invoiced", "posted", "paid", "posting_failed", "disputed", "credited"})
FIRST_OF = {"invoiced": "first_invoiced", "posted": "first_posted", "paid": "first_cash"}
KNOWN_STAGES = frozenset(DEAL_RANK) | frozenset(ITEM_RANK)

# Dimension attributes carried on spans (`q2c.<name>`) or in CloudEvent data (`<name>`).
DEAL_DIMENSIONS = {
    "legal_entity": "legal_entity",
    "region": "region",
    "practice": "practice",
    "account.id": "account_id",
    "account.name": "account_name",
    "deal.name": "name",
    "owner": "owner",
}


class UnknownStage(ValueError):
    pass


@dataclass(frozen=True)
class Observation:
    """One stage reached by one business object, as a span or a CloudEvent reported it."""

    dedup_key: str
    stage: str
    occurred_at: dt.datetime
    deal_id: str | None
    ids: Mapping[str, str]  # object type -> id (contract, project, invoice, billable_item, payment)
    amount: Decimal | None = None
    currency: str | None = None
    source_system: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)  # dimensions, quantity, rate...


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def observation_from_span(record: SpanRecord) -> Observation | None:
    """An OK span with a known `q2c.stage` is an observation; anything else is not."""
    if record.status != "ok" or record.stage not in KNOWN_STAGES:
        return None
    attributes: dict[str, Any] = orjson.loads(record.attributes)
    ids = {
        key: str(value)
        for key, value in (
            ("contract", record.contract_id),
            ("project", record.project_id),
            ("invoice", record.invoice_id),
            ("billable_item", attributes.get(BILLABLE_ID)),
            ("payment", attributes.get(PAYMENT_ID)),
        )
        if value
    }
    details = {
        column: attributes[f"q2c.{name}"]
        for name, column in DEAL_DIMENSIONS.items()
        if attributes.get(f"q2c.{name}") is not None
    }
    for extra in ("billing_model", "quantity", "rate", "kind", "consultant", "po_number"):
        if attributes.get(f"q2c.{extra}") is not None:
            details[extra] = attributes[f"q2c.{extra}"]
    return Observation(
        dedup_key=f"span:{record.trace_id}:{record.span_id}",
        stage=record.stage,
        occurred_at=dt.datetime.fromtimestamp(record.end_unix_nano / 1e9, dt.UTC),
        deal_id=record.deal_id,
        ids=ids,
        amount=_decimal(record.amount),
        currency=record.currency,
        source_system=record.system,
        trace_id=record.trace_id,
        span_id=record.span_id,
        details=details,
    )


def targets(observation: Observation) -> list[tuple[ObjectType, str]]:
    """The objects an observation is about, in the order they are applied."""
    stage, ids, deal = observation.stage, observation.ids, observation.deal_id
    out: list[tuple[ObjectType, str]] = []
    if stage in ITEM_STAGES and "billable_item" in ids:
        out.append((ObjectType.BILLABLE_ITEM, ids["billable_item"]))
    elif stage in ITEM_STAGES or stage in INVOICE_STAGES:
        if "invoice" in ids:
            out.append((ObjectType.INVOICE, ids["invoice"]))
        if stage == "paid" and "payment" in ids:
            out.append((ObjectType.PAYMENT, ids["payment"]))
    elif stage == "contract_executed" and "contract" in ids:
        out.append((ObjectType.CONTRACT, ids["contract"]))
    elif stage == "project_activated" and "project" in ids:
        out.append((ObjectType.PROJECT, ids["project"]))
    if stage in DEAL_RANK and deal:
        out.append((ObjectType.DEAL, deal))
    return out


def _insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> set[str]:
    """Insert lifecycle events, skipping known dedup keys; return the keys inserted."""
    if not rows:
        return set()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing().returning(table.c.dedup_key)
    inserted: set[str] = set()
    for row in rows:  # per row: RETURNING after ON CONFLICT names only what was inserted
        inserted.update(conn.execute(statement, row).scalars())
    return inserted


class LifecycleApplier:
    """Applies observations inside the caller's transaction."""

    def __init__(self, conn: Connection, now: dt.datetime) -> None:
        self.conn = conn
        self.now = now

    def apply(self, observations: Iterable[Observation]) -> int:
        """Store each new event and move its objects; return the number of new events."""
        rows: list[dict[str, Any]] = []
        work: list[tuple[str, Observation, ObjectType, str]] = []
        for obs in sorted(observations, key=lambda o: o.occurred_at):
            deal_id = obs.deal_id or self._deal_of(obs)
            if deal_id and deal_id != obs.deal_id:
                obs = Observation(**{**obs.__dict__, "deal_id": deal_id})
            for object_type, object_id in targets(obs):
                key = f"{obs.dedup_key}:{object_type.value}"
                rows.append(
                    {
                        "dedup_key": key,
                        "object_type": object_type,
                        "object_id": object_id,
                        "deal_id": obs.deal_id,
                        "stage": obs.stage,
                        "occurred_at": obs.occurred_at,
                        "source_system": obs.source_system,
                        "trace_id": obs.trace_id,
                        "span_id": obs.span_id,
                        "amount": obs.amount,
                        "currency": obs.currency,
                        "attributes": dict(obs.details) or None,
                        "recorded_at": self.now,
                    }
                )
                work.append((key, obs, object_type, object_id))
        inserted = _insert_ignore(self.conn, LifecycleEvent.__table__, rows)  # type: ignore[arg-type]
        for key, obs, object_type, object_id in work:
            if key not in inserted or obs.deal_id is None:
                continue
            self._ensure_deal(obs)
            if object_type is ObjectType.DEAL:
                self._move_deal(obs)
            elif object_type is ObjectType.CONTRACT:
                self._move_contract(obs, object_id)
            elif object_type is ObjectType.PROJECT:
                self._move_project(obs, object_id)
            elif object_type is ObjectType.INVOICE:
                self._move_invoice(obs, object_id)
            elif object_type is ObjectType.BILLABLE_ITEM:
                self._move_billable(obs, object_id)
            elif object_type is ObjectType.PAYMENT:
                self._record_payment(obs, object_id)
        return len(inserted)

    # -- helpers ---------------------------------------------------------------------------

    def _deal_of(self, obs: Observation) -> str | None:
        """Find the deal of an observation that names only its invoice or item."""
        for kind, model in (("invoice", Invoice), ("billable_item", BillableItem)):
            if kind in obs.ids:
                found = self.conn.execute(
                    select(model.deal_id).where(model.id == obs.ids[kind])
                ).scalar()
                if found:
                    return str(found)
        return None

    def _ensure_deal(self, obs: Observation) -> None:
        deal_id = obs.deal_id
        row = self.conn.execute(select(Deal.id).where(Deal.id == deal_id)).first()
        dimensions = {k: str(v) for k, v in obs.details.items() if k in DEAL_DIMENSIONS.values()}
        if row is None:
            self.conn.execute(
                insert(Deal).values(
                    id=deal_id, created_at=self.now, updated_at=self.now, **dimensions
                )
            )
        elif dimensions:
            self.conn.execute(
                update(Deal).where(Deal.id == deal_id).values(updated_at=self.now, **dimensions)
            )

    @staticmethod
    def _advance(rank: Mapping[str, float], obs: Observation, current: Any) -> dict[str, Any]:
        """Stage columns to set if the observation moves the object forward."""
        stage, entered = current.stage, current.stage_entered_at
        new_rank, old_rank = rank.get(obs.stage), rank.get(stage) if stage else None
        if new_rank is None:
            return {}
        forward = old_rank is None or new_rank > old_rank
        exception_now = obs.stage in EXCEPTIONS and (entered is None or obs.occurred_at >= entered)
        if forward or exception_now:
            return {"stage": obs.stage, "stage_entered_at": obs.occurred_at}
        return {}

    def _current(self, model: Any, object_id: str) -> Any:
        return self.conn.execute(select(model).where(model.id == object_id)).first()

    def _upsert(
        self,
        model: Any,
        object_id: str,
        insert_values: dict[str, Any],
        rank: Mapping[str, float],
        obs: Observation,
        update_values: dict[str, Any],
    ) -> Any:
        current = self._current(model, object_id)
        if current is None:
            values = {
                "id": object_id,
                "deal_id": obs.deal_id,
                "stage": obs.stage,
                "stage_entered_at": obs.occurred_at,
                **insert_values,
                **update_values,
            }
            if "created_at" in model.__table__.c:
                values["created_at"] = self.now
            if "updated_at" in model.__table__.c:
                values["updated_at"] = self.now
            self.conn.execute(insert(model).values(**values))
            return None
        values = {**self._advance(rank, obs, current), **update_values}
        if values:
            if "updated_at" in model.__table__.c:
                values["updated_at"] = self.now
            self.conn.execute(update(model).where(model.id == object_id).values(**values))
        return current

    @staticmethod
    def _earliest(current: Any, column: str, moment: dt.datetime) -> dict[str, Any]:
        existing = getattr(current, column, None) if current is not None else None
        return {column: moment} if existing is None or moment < existing else {}

    def _money(self, obs: Observation, amount_column: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if obs.amount is not None:
            values[amount_column] = obs.amount
        if obs.currency:
            values["currency"] = obs.currency
        return values

    # -- per object type -------------------------------------------------------------------

    def _move_deal(self, obs: Observation) -> None:
        current = self._current(Deal, obs.deal_id or "")
        values = self._advance(DEAL_RANK, obs, current)
        if obs.stage == "closed_won":
            values.update(self._earliest(current, "closed_won_at", obs.occurred_at))
            values.update(self._money(obs, "amount"))
        if values:
            values["updated_at"] = self.now
            self.conn.execute(update(Deal).where(Deal.id == obs.deal_id).values(**values))

    def _move_contract(self, obs: Observation, contract_id: str) -> None:
        current = self._current(Contract, contract_id)
        updates = {
            **self._earliest(current, "executed_at", obs.occurred_at),
            **self._money(obs, "value"),
        }
        for key in ("billing_model", "po_number"):
            if key in obs.details:
                updates[key] = str(obs.details[key])
        self._upsert(Contract, contract_id, {}, {"contract_executed": 0}, obs, updates)

    def _move_project(self, obs: Observation, project_id: str) -> None:
        current = self._current(Project, project_id)
        updates = self._earliest(current, "activated_at", obs.occurred_at)
        contract_id = obs.ids.get("contract")
        if contract_id and self._current(Contract, contract_id) is not None:
            updates["contract_id"] = contract_id
        if "practice" in obs.details:
            updates["practice"] = str(obs.details["practice"])
        self._upsert(Project, project_id, {}, {"project_activated": 0}, obs, updates)

    def _move_invoice(self, obs: Observation, invoice_id: str) -> None:
        current = self._current(Invoice, invoice_id)
        updates: dict[str, Any] = {}
        if obs.stage == "invoiced":
            updates.update(self._earliest(current, "issued_at", obs.occurred_at))
            updates.update(self._money(obs, "amount"))
            if "legal_entity" in obs.details:
                updates["legal_entity"] = str(obs.details["legal_entity"])
        elif obs.stage == "posted":
            updates.update(self._earliest(current, "posted_at", obs.occurred_at))
        if obs.stage in EXCEPTIONS:
            updates["has_exception"] = True
        if obs.stage == "paid":
            self._pay(obs, invoice_id, current)
            return
        self._upsert(Invoice, invoice_id, {"has_exception": False}, ITEM_RANK, obs, updates)
        self._first(obs)

    def _pay(self, obs: Observation, invoice_id: str, current: Any) -> None:
        paid_before = current.amount_paid if current is not None else Decimal("0")
        amount = current.amount if current is not None else None
        paid_now = paid_before + (obs.amount or Decimal("0"))
        full = obs.amount is None or (amount is not None and paid_now >= amount)
        if current is None:
            self.conn.execute(
                insert(Invoice).values(
                    id=invoice_id,
                    deal_id=obs.deal_id,
                    amount_paid=paid_now,
                    has_exception=False,
                    stage="paid" if full else None,
                    stage_entered_at=obs.occurred_at if full else None,
                    paid_at=obs.occurred_at if full else None,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )
        else:
            values: dict[str, Any] = {"amount_paid": paid_now, "updated_at": self.now}
            if full:
                values.update(self._advance(ITEM_RANK, obs, current))
                values.update(self._earliest(current, "paid_at", obs.occurred_at))
            self.conn.execute(update(Invoice).where(Invoice.id == invoice_id).values(**values))
        if full:
            self._first(obs)

    def _first(self, obs: Observation) -> None:
        """The deal's first_invoiced / first_posted / first_cash, at the earliest invoice."""
        derived = FIRST_OF.get(obs.stage)
        if derived is None or obs.deal_id is None:
            return
        key = f"derived:{obs.deal_id}:{derived}"
        existing = self.conn.execute(
            select(LifecycleEvent.id, LifecycleEvent.occurred_at).where(
                LifecycleEvent.dedup_key == key
            )
        ).first()
        if existing is not None:
            if obs.occurred_at < existing.occurred_at:
                self.conn.execute(
                    update(LifecycleEvent)
                    .where(LifecycleEvent.id == existing.id)
                    .values(occurred_at=obs.occurred_at, trace_id=obs.trace_id, span_id=obs.span_id)
                )
            return
        self.conn.execute(
            insert(LifecycleEvent).values(
                dedup_key=key,
                object_type=ObjectType.DEAL,
                object_id=obs.deal_id,
                deal_id=obs.deal_id,
                stage=derived,
                occurred_at=obs.occurred_at,
                source_system=obs.source_system,
                trace_id=obs.trace_id,
                span_id=obs.span_id,
                recorded_at=self.now,
            )
        )
        self._move_deal(Observation(**{**obs.__dict__, "stage": derived, "amount": None}))

    def _move_billable(self, obs: Observation, item_id: str) -> None:
        current = self._current(BillableItem, item_id)
        updates: dict[str, Any] = {}
        if obs.stage == "billable_approved":
            updates.update(self._earliest(current, "approved_at", obs.occurred_at))
        if obs.stage == "invoiced":
            updates.update(self._earliest(current, "invoiced_at", obs.occurred_at))
        inserted: dict[str, Any] = {}
        if current is None:
            amount = obs.amount or Decimal("0")
            quantity = _decimal(obs.details.get("quantity")) or Decimal("1")
            rate = _decimal(obs.details.get("rate")) or amount
            inserted = {
                "kind": str(obs.details.get("kind", "time")),
                "quantity": quantity,
                "rate": rate,
                "amount": amount,
                "currency": obs.currency or "USD",
                "consultant": obs.details.get("consultant"),
            }
        self._upsert(BillableItem, item_id, inserted, ITEM_RANK, obs, updates)

    def _record_payment(self, obs: Observation, payment_id: str) -> None:
        if self._current(Payment, payment_id) is not None or "invoice" not in obs.ids:
            return
        self.conn.execute(
            insert(Payment).values(
                id=payment_id,
                invoice_id=obs.ids["invoice"],
                deal_id=obs.deal_id,
                amount=obs.amount or Decimal("0"),
                currency=obs.currency or "USD",
                received_at=obs.occurred_at,
                created_at=self.now,
            )
        )
