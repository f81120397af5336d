"""Hand-built event logs for KPI tests: objects as the collector maintains them
(docs/lifecycle.md) plus the lifecycle events behind them, written in whatever order the
test gives (so events can arrive out of order)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert

from store.monitoring import ProbeResult
from store.objects import BillableItem, Consultant, Contract, Deal, Invoice, Project
from store.outbox import DeadLetter, Replay, SyncAttempt, SyncMessage
from store.telemetry import LifecycleEvent

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(text: str) -> dt.datetime:
    """`2026-06-05 10:00` as an aware UTC datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def money(value: float | str | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class EventLog:
    """Collects rows, then writes them in one go with `write(engine)`."""

    def __init__(self) -> None:
        self.rows: dict[type[Any], list[dict[str, Any]]] = {}
        self._event = 0

    def _add(self, table: type[Any], **row: Any) -> None:
        self.rows.setdefault(table, []).append(row)

    def event(
        self,
        object_type: str,
        object_id: str,
        deal_id: str,
        stage: str,
        when: str,
        amount: float | None = None,
        currency: str | None = None,
    ) -> None:
        self._event += 1
        self._add(
            LifecycleEvent,
            dedup_key=f"test:{self._event}:{object_type}:{object_id}:{stage}",
            object_type=object_type,
            object_id=object_id,
            deal_id=deal_id,
            stage=stage,
            occurred_at=at(when),
            source_system=None,
            amount=money(amount),
            currency=currency,
            recorded_at=T0 + dt.timedelta(seconds=self._event),
        )

    def deal(
        self,
        deal_id: str,
        *,
        entity: str | None,
        region: str | None,
        practice: str | None,
        currency: str,
        amount: float,
        stage: str,
        closed_won: str,
    ) -> None:
        self._add(
            Deal,
            id=deal_id,
            legal_entity=entity,
            region=region,
            practice=practice,
            currency=currency,
            amount=money(amount),
            stage=stage,
            closed_won_at=at(closed_won),
            created_at=T0,
            updated_at=T0,
        )

    def contract(
        self, contract_id: str, deal_id: str, currency: str, value: float, executed: str | None
    ) -> None:
        self._add(
            Contract,
            id=contract_id,
            deal_id=deal_id,
            currency=currency,
            value=money(value),
            stage="contract_executed" if executed else None,
            executed_at=at(executed) if executed else None,
            created_at=T0,
            updated_at=T0,
        )

    def project(
        self, project_id: str, deal_id: str, activated: str | None, practice: str | None = None
    ) -> None:
        self._add(
            Project,
            id=project_id,
            deal_id=deal_id,
            practice=practice,
            stage="project_activated" if activated else None,
            activated_at=at(activated) if activated else None,
            created_at=T0,
            updated_at=T0,
        )

    def invoice(
        self,
        invoice_id: str,
        deal_id: str,
        *,
        entity: str | None,
        currency: str,
        amount: float,
        stage: str,
        issued: str,
        posted: str | None = None,
        paid: str | None = None,
        amount_paid: float = 0,
        has_exception: bool = False,
    ) -> None:
        self._add(
            Invoice,
            id=invoice_id,
            deal_id=deal_id,
            legal_entity=entity,
            currency=currency,
            amount=money(amount),
            amount_paid=money(amount_paid),
            stage=stage,
            has_exception=has_exception,
            issued_at=at(issued),
            posted_at=at(posted) if posted else None,
            paid_at=at(paid) if paid else None,
            created_at=T0,
            updated_at=T0,
        )

    def item(
        self,
        item_id: str,
        deal_id: str,
        *,
        kind: str,
        quantity: float,
        rate: float,
        currency: str,
        approved: str,
        stage: str = "billable_approved",
        invoice_id: str | None = None,
        invoiced: str | None = None,
        invoiced_amount: float | None = None,
        consultant: str | None = None,
    ) -> None:
        self._add(
            BillableItem,
            id=item_id,
            deal_id=deal_id,
            invoice_id=invoice_id,
            kind=kind,
            quantity=Decimal(str(quantity)),
            rate=money(rate),
            amount=money(round(quantity * rate, 2)),
            invoiced_amount=money(invoiced_amount),
            currency=currency,
            stage=stage,
            approved_at=at(approved),
            invoiced_at=at(invoiced) if invoiced else None,
            consultant=consultant,
            created_at=T0,
        )

    def consultant(
        self,
        consultant_id: str,
        *,
        entity: str | None,
        practice: str | None,
        weekly_hours: float,
        created: str = "2026-01-01 00:00",
    ) -> None:
        self._add(
            Consultant,
            id=consultant_id,
            name=f"Consultant {consultant_id}",
            email=f"{consultant_id.lower()}@example.test",
            role="Consultant",
            practice=practice,
            legal_entity=entity,
            weekly_capacity_hours=Decimal(str(weekly_hours)),
            created_at=at(created),
            updated_at=at(created),
        )

    def message(
        self, message_id: int, flow: str, system: str, key: str, state: str, created: str
    ) -> None:
        self._add(
            SyncMessage,
            id=message_id,
            flow=flow,
            step=flow,
            system=system,
            idempotency_key=key,
            payload={},
            state=state,
            attempts=0,
            next_attempt_at=at(created),
            created_at=at(created),
            updated_at=at(created),
        )

    def attempt(self, message_id: int, attempt_no: int, outcome: str, started: str) -> None:
        self._add(
            SyncAttempt,
            message_id=message_id,
            attempt_no=attempt_no,
            outcome=outcome,
            started_at=at(started),
            duration_ms=10,
        )

    def dead_letter(self, dl_id: int, message_id: int, flow: str, system: str, dead: str) -> None:
        self._add(
            DeadLetter,
            id=dl_id,
            message_id=message_id,
            flow=flow,
            system=system,
            error_class="fatal",
            state="replayed",
            dead_at=at(dead),
        )

    def replay(self, dl_id: int, message_id: int, outcome: str, requested: str) -> None:
        self._add(
            Replay,
            dead_letter_id=dl_id,
            message_id=message_id,
            requested_by="test",
            requested_at=at(requested),
            outcome=outcome,
            finished_at=at(requested),
        )

    def probe(
        self,
        system: str,
        status: str,
        duration_ms: int,
        started: str,
        rate_limit: tuple[int, int] | None = None,
    ) -> None:
        remaining_limit = (
            {"rate_limit_remaining": rate_limit[0], "rate_limit_limit": rate_limit[1]}
            if rate_limit
            else None
        )
        self._add(
            ProbeResult,
            probe=f"health:{system}",
            kind="health",
            system=system,
            status=status,
            duration_ms=duration_ms,
            started_at=at(started),
            detail=remaining_limit,
        )

    def write(self, engine: Engine) -> None:
        order = [
            Consultant,
            Deal,
            Contract,
            Project,
            Invoice,
            BillableItem,
            LifecycleEvent,
            SyncMessage,
            SyncAttempt,
            DeadLetter,
            Replay,
            ProbeResult,
        ]
        with engine.begin() as conn:
            for table in order:
                if self.rows.get(table):
                    conn.execute(insert(table), self.rows[table])
        self.rows.clear()
