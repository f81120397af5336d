"""Applying observations to the store in bulk: one round of reads, the rules of
`collector.lifecycle` in memory, one round of writes, all in the caller's transaction.

A batch of a few thousand spans with a few hundred stage changes costs a dozen statements,
not a dozen per event, which keeps lifecycle derivation off the ingest critical path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from collector import lifecycle as rules
from collector.lifecycle import Observation, Row
from store.objects import BillableItem, Contract, Deal, Invoice, Payment, Project
from store.states import ObjectType
from store.telemetry import LifecycleEvent

# Insert order respects the foreign keys.
MODELS: dict[ObjectType, Any] = {
    ObjectType.DEAL: Deal,
    ObjectType.CONTRACT: Contract,
    ObjectType.PROJECT: Project,
    ObjectType.INVOICE: Invoice,
    ObjectType.BILLABLE_ITEM: BillableItem,
    ObjectType.PAYMENT: Payment,
}
_CHUNK = 500


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class LifecycleApplier:
    def __init__(self, conn: Connection, now: dt.datetime) -> None:
        self.conn = conn
        self.now = now
        self.rows: dict[ObjectType, dict[str, Row]] = {t: {} for t in MODELS}
        self.new: dict[ObjectType, set[str]] = {t: set() for t in MODELS}
        self.dirty: dict[ObjectType, set[str]] = {t: set() for t in MODELS}

    def apply(self, observations: Iterable[Observation]) -> int:
        """Store each new lifecycle event and move its objects; return how many were new."""
        pending = sorted(observations, key=lambda o: o.occurred_at)
        if not pending:
            return 0
        pending = self._resolve_deals(pending)
        events, work = self._event_rows(pending)
        fresh = self._insert_new_events(events)
        work = [(key, obs, t, oid) for key, obs, t, oid in work if key in fresh]
        self._load(work)
        derived = self._load_derived({obs.deal_id for _, obs, _, _ in work if obs.deal_id})
        for _, obs, object_type, object_id in work:
            if obs.deal_id is None:
                continue
            self._touch(ObjectType.DEAL, obs.deal_id, obs)
            if object_type is ObjectType.DEAL:
                rules.apply_deal(self.rows[ObjectType.DEAL][obs.deal_id], obs)
                continue
            row = self._touch(object_type, object_id, obs)
            if object_type is ObjectType.CONTRACT:
                rules.apply_contract(row, obs)
            elif object_type is ObjectType.PROJECT:
                contract = obs.ids.get("contract")
                rules.apply_project(
                    row, obs, contract is not None and self._exists(ObjectType.CONTRACT, contract)
                )
            elif object_type is ObjectType.BILLABLE_ITEM:
                rules.apply_billable(row, obs)
                invoice = obs.ids.get("invoice")
                if invoice:
                    # The invoice's own event may come later: hold its place until then.
                    self._touch(ObjectType.INVOICE, invoice, obs)
                    row["invoice_id"] = invoice
            elif object_type is ObjectType.INVOICE:
                if rules.apply_invoice(row, obs):
                    self._first(obs, derived)
            elif object_type is ObjectType.PAYMENT and row.get("amount") is None:
                row.update(
                    invoice_id=obs.ids["invoice"],
                    amount=obs.amount or 0,
                    currency=obs.currency or "USD",
                    received_at=obs.occurred_at,
                )
        self._persist(derived)
        return len(fresh)

    # -- reading -----------------------------------------------------------------------------

    def _resolve_deals(self, pending: list[Observation]) -> list[Observation]:
        """Fill in the deal of observations that name only their invoice or item."""
        wanted = {
            kind: sorted({o.ids[kind] for o in pending if o.deal_id is None and kind in o.ids})
            for kind in ("invoice", "billable_item")
        }
        found: dict[tuple[str, str], str] = {}
        for kind, model in (("invoice", Invoice), ("billable_item", BillableItem)):
            for chunk in _chunks(wanted[kind]):
                for object_id, deal_id in self.conn.execute(
                    select(model.id, model.deal_id).where(model.id.in_(chunk))
                ):
                    found[(kind, object_id)] = deal_id
        out = []
        for obs in pending:
            if obs.deal_id is None:
                deal = next(
                    (
                        found[(k, obs.ids[k])]
                        for k in ("invoice", "billable_item")
                        if k in obs.ids and (k, obs.ids[k]) in found
                    ),
                    None,
                )
                if deal is not None:
                    obs = Observation(**{**obs.__dict__, "deal_id": deal})
            out.append(obs)
        return out

    def _event_rows(
        self, pending: list[Observation]
    ) -> tuple[list[Row], list[tuple[str, Observation, ObjectType, str]]]:
        events: dict[str, Row] = {}
        work = []
        for obs in pending:
            for object_type, object_id in rules.targets(obs):
                key = f"{obs.dedup_key}:{object_type.value}"
                if key in events:
                    continue
                events[key] = {
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
                work.append((key, obs, object_type, object_id))
        return list(events.values()), work

    def _insert_new_events(self, events: list[Row]) -> set[str]:
        keys = [e["dedup_key"] for e in events]
        known: set[str] = set()
        for chunk in _chunks(keys):
            known.update(
                self.conn.execute(
                    select(LifecycleEvent.dedup_key).where(LifecycleEvent.dedup_key.in_(chunk))
                ).scalars()
            )
        fresh = [e for e in events if e["dedup_key"] not in known]
        if fresh:
            dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
            # ON CONFLICT guards against another collector process storing the same event.
            self.conn.execute(dialect.insert(LifecycleEvent).on_conflict_do_nothing(), fresh)
        return {e["dedup_key"] for e in fresh}

    def _load(self, work: list[tuple[str, Observation, ObjectType, str]]) -> None:
        ids: dict[ObjectType, set[str]] = {t: set() for t in MODELS}
        for _, obs, object_type, object_id in work:
            if obs.deal_id:
                ids[ObjectType.DEAL].add(obs.deal_id)
            ids[object_type].add(object_id)
            for kind, object_type_ in (
                ("contract", ObjectType.CONTRACT),
                ("invoice", ObjectType.INVOICE),
            ):
                if kind in obs.ids:
                    ids[object_type_].add(obs.ids[kind])
        for object_type, wanted in ids.items():
            model = MODELS[object_type]
            for chunk in _chunks(sorted(wanted)):
                for row in self.conn.execute(select(model).where(model.id.in_(chunk))).mappings():
                    self.rows[object_type][row["id"]] = dict(row)

    def _load_derived(self, deals: set[str]) -> dict[str, Row]:
        keys = [f"derived:{d}:{s}" for d in sorted(deals) for s in rules.FIRST_OF.values()]
        found: dict[str, Row] = {}
        for chunk in _chunks(keys):
            for row in self.conn.execute(
                select(
                    LifecycleEvent.id, LifecycleEvent.dedup_key, LifecycleEvent.occurred_at
                ).where(LifecycleEvent.dedup_key.in_(chunk))
            ).mappings():
                found[row["dedup_key"]] = dict(row)
        return found

    # -- in memory ---------------------------------------------------------------------------

    def _exists(self, object_type: ObjectType, object_id: str) -> bool:
        return object_id in self.rows[object_type]

    def _touch(self, object_type: ObjectType, object_id: str, obs: Observation) -> Row:
        rows = self.rows[object_type]
        if object_id not in rows:
            row: Row = {"id": object_id}
            if object_type is not ObjectType.DEAL:
                row["deal_id"] = obs.deal_id
            if object_type is ObjectType.INVOICE:
                row.update(has_exception=False, amount_paid=0)
            if object_type is ObjectType.BILLABLE_ITEM:
                row.update(rules.new_billable(obs))
            rows[object_id] = row
            self.new[object_type].add(object_id)
        self.dirty[object_type].add(object_id)
        return rows[object_id]

    def _first(self, obs: Observation, derived: dict[str, Row]) -> None:
        """The deal's first_invoiced / first_posted / first_cash, at the earliest invoice."""
        stage = rules.FIRST_OF[obs.stage]
        key = f"derived:{obs.deal_id}:{stage}"
        existing = derived.get(key)
        if existing is not None and existing["occurred_at"] <= obs.occurred_at:
            return
        derived[key] = {
            **(existing or {}),
            "dedup_key": key,
            "occurred_at": obs.occurred_at,
            "trace_id": obs.trace_id,
            "span_id": obs.span_id,
            "source_system": obs.source_system,
            "deal_id": obs.deal_id,
            "stage": stage,
            "changed": True,
        }
        first = Observation(**{**obs.__dict__, "stage": stage, "amount": None, "details": {}})
        rules.apply_deal(self.rows[ObjectType.DEAL][obs.deal_id or ""], first)

    # -- writing -----------------------------------------------------------------------------

    def _persist(self, derived: dict[str, Row]) -> None:
        for object_type, model in MODELS.items():
            table = model.__table__
            columns = set(table.c.keys())
            new_ids, dirty_ids = self.new[object_type], self.dirty[object_type]
            inserts = []
            for object_id in sorted(new_ids):
                row = {k: v for k, v in self.rows[object_type][object_id].items() if k in columns}
                if "created_at" in columns:
                    row["created_at"] = self.now
                if "updated_at" in columns:
                    row["updated_at"] = self.now
                inserts.append(row)
            # executemany needs one shape: fill absent columns with NULL (their defaults
            # are NULL except these, set in _touch).
            for row in inserts:
                for column in columns:
                    row.setdefault(column, None)
            if inserts:
                self.conn.execute(insert(model), inserts)
            updates = []
            for object_id in sorted(dirty_ids - new_ids):
                row = {k: v for k, v in self.rows[object_type][object_id].items() if k in columns}
                row["_id"] = row.pop("id")
                if "updated_at" in columns:
                    row["updated_at"] = self.now
                updates.append(row)
            if updates:
                names = [c for c in updates[0] if c != "_id"]
                statement = (
                    update(model)
                    .where(table.c.id == bindparam("_id"))
                    .values({c: bindparam(c) for c in names})
                )
                self.conn.execute(statement, updates)
        new_derived = [d for d in derived.values() if d.get("changed") and "id" not in d]
        changed = [d for d in derived.values() if d.get("changed") and "id" in d]
        if new_derived:
            self.conn.execute(
                insert(LifecycleEvent),
                [
                    {
                        "dedup_key": d["dedup_key"],
                        "object_type": ObjectType.DEAL,
                        "object_id": d["deal_id"],
                        "deal_id": d["deal_id"],
                        "stage": d["stage"],
                        "occurred_at": d["occurred_at"],
                        "source_system": d["source_system"],
                        "trace_id": d["trace_id"],
                        "span_id": d["span_id"],
                        "amount": None,
                        "currency": None,
                        "attributes": None,
                        "recorded_at": self.now,
                    }
                    for d in new_derived
                ],
            )
        for d in changed:
            self.conn.execute(
                update(LifecycleEvent)
                .where(LifecycleEvent.id == d["id"])
                .values(occurred_at=d["occurred_at"], trace_id=d["trace_id"], span_id=d["span_id"])
            )
