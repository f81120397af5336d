"""Approval checkpoints (DESIGN 1: some steps wait for a person on purpose): an invoice
worth more than `approvals.invoice_above` waits before its AR posting; with
`approvals.over_cap`, a billable that would take its contract past the cap waits before its
charge (instead of being rejected). The step records the
checkpoint (`approvals`, one per object) and stops with `AwaitingApproval`; the worker then
holds its message (state `held`: not claimed, not retried, no attempt counted) until a
person decides. Approving puts the message back in the outbox, due now, and its next run
posts; rejecting makes it a dead letter (`approval_rejected`) that finance can replay,
which asks for approval again. The SLA clock of the held stage keeps running meanwhile:
the stuck-work probe and the alerts see an invoice that waits too long.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connectors.errors import AwaitingApproval
from connectors.outbox import APPROVAL_REJECTED, ClaimedMessage, rejection_text, settle_death
from store.access import AuditEntry
from store.outbox import Approval, SyncMessage
from store.states import ApprovalState, MessageState
from throughline.config import Settings


@dataclass(frozen=True)
class ApprovalPolicy:
    """Which objects wait for approval: invoices worth more than `invoice_above` in the
    reporting currency; with `over_cap`, billables past their contract's cap."""

    invoice_above: float | None
    reporting_currency: str
    fx_rates: Mapping[str, float]
    over_cap: bool = False

    @classmethod
    def of(cls, settings: Settings) -> ApprovalPolicy:
        return cls(
            settings.approvals.invoice_above,
            settings.kpis.reporting_currency,
            dict(settings.kpis.fx_rates),
            settings.approvals.over_cap,
        )

    def invoice_reason(self, amount: Decimal, currency: str) -> str | None:
        """Why an invoice of `amount` `currency` must wait (None: it need not). A currency
        without a rate waits too: its worth is unknown."""
        if self.invoice_above is None:
            return None
        rate = self.fx_rates.get(currency)
        limit = f"{self.invoice_above:,.2f} {self.reporting_currency}"
        if rate is None:
            return f"{amount:,.2f} {currency} has no rate to {self.reporting_currency}"
        worth = float(amount) * rate
        if worth <= self.invoice_above:
            return None
        shown = f"{amount:,.2f} {currency}"
        if currency != self.reporting_currency:
            shown += f" ({worth:,.2f} {self.reporting_currency})"
        return f"invoice of {shown} is above the approval limit {limit}"


@dataclass(frozen=True)
class Checkpoint:
    """What a step asks approval for."""

    key: str
    object_type: str
    object_id: str
    amount: Decimal
    currency: str
    reason: str


def require(
    engine: Engine, message: ClaimedMessage, checkpoint: Checkpoint, now: dt.datetime
) -> None:
    """Return if the checkpoint was approved; else record it (once per key; a rejected one
    is asked again: its dead letter was replayed) and raise `AwaitingApproval`."""
    with engine.begin() as conn:
        found = conn.execute(
            select(Approval.id, Approval.state).where(Approval.key == checkpoint.key)
        ).first()
        if found is not None and found.state == ApprovalState.APPROVED:
            return
        if found is None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                dialect.insert(Approval)
                .values(
                    key=checkpoint.key,
                    message_id=message.id,
                    flow=message.flow,
                    object_type=checkpoint.object_type,
                    object_id=checkpoint.object_id,
                    deal_id=message.deal_id,
                    amount=checkpoint.amount,
                    currency=checkpoint.currency,
                    reason=checkpoint.reason,
                    state=ApprovalState.OPEN,
                    requested_at=now,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )
        elif found.state == ApprovalState.REJECTED:
            conn.execute(
                update(Approval)
                .where(Approval.id == found.id)
                .values(
                    state=ApprovalState.OPEN,
                    requested_at=now,
                    decided_by=None,
                    decided_at=None,
                    note=None,
                    reason=checkpoint.reason,
                )
            )
        approval_id = conn.execute(
            select(Approval.id).where(Approval.key == checkpoint.key)
        ).scalar_one()
    raise AwaitingApproval(
        f"waiting for approval {approval_id}: {checkpoint.reason}", approval_id=approval_id
    )


@dataclass(frozen=True)
class Decision:
    approval_id: int
    state: ApprovalState
    message_id: int


class DecisionError(ValueError):
    """A decision that cannot be taken (unknown id, already decided): says which and why."""


def decide(
    engine: Engine,
    approval_ids: Sequence[int],
    *,
    approve: bool,
    actor: str,
    note: str | None,
    now: dt.datetime,
) -> list[Decision]:
    """Approve or reject open approvals, all or none: an unknown or decided id refuses the
    whole request, naming it. Each decision is audited with `actor`."""
    wanted = list(dict.fromkeys(approval_ids))
    if not wanted:
        raise DecisionError("no approval ids given")
    state = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
    with engine.begin() as conn:
        rows = {
            r.id: r
            for r in conn.execute(
                select(Approval.id, Approval.state, Approval.message_id).where(
                    Approval.id.in_(wanted)
                )
            )
        }
        problems = [f"approval {i} does not exist" for i in wanted if i not in rows]
        problems += [
            f"approval {i} is already {rows[i].state}"
            for i in wanted
            if i in rows and rows[i].state != ApprovalState.OPEN
        ]
        if problems:
            raise DecisionError("; ".join(problems))
        decisions = []
        for approval_id in wanted:
            message_id = rows[approval_id].message_id
            conn.execute(
                update(Approval)
                .where(Approval.id == approval_id)
                .values(state=state, decided_by=actor, decided_at=now, note=note)
            )
            _release(conn, message_id, approval_id, state, actor, note, now)
            conn.execute(
                insert(AuditEntry).values(
                    at=now,
                    actor=actor,
                    action=f"approval.{'approve' if approve else 'reject'}",
                    object_type="approval",
                    object_id=str(approval_id),
                    detail={"message_id": message_id},
                    note=note,
                )
            )
            decisions.append(Decision(approval_id, state, message_id))
    return decisions


def _release(
    conn: Connection,
    message_id: int,
    approval_id: int,
    state: ApprovalState,
    actor: str,
    note: str | None,
    now: dt.datetime,
) -> None:
    """Move a held message on: due now when approved, a dead letter when rejected. A
    message not held (its step is running) is settled by the worker (`settle_held`)."""
    held = SyncMessage.id == message_id, SyncMessage.state == MessageState.HELD
    if state is ApprovalState.APPROVED:  # due again: it was due when it was held
        conn.execute(
            update(SyncMessage).where(*held).values(state=MessageState.PENDING, updated_at=now)
        )
        return
    error = rejection_text(approval_id, actor, note)
    moved = conn.execute(
        update(SyncMessage)
        .where(*held)
        .values(
            state=MessageState.DEAD,
            last_error=error,
            last_error_class=APPROVAL_REJECTED,
            updated_at=now,
        )
    ).rowcount
    if moved:
        settle_death(conn, message_id, APPROVAL_REJECTED, error, now)


@dataclass(frozen=True)
class ApprovalRow:
    id: int
    state: ApprovalState
    flow: str
    object_type: str
    object_id: str
    deal_id: str | None
    amount: Decimal
    currency: str
    reason: str
    requested_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    note: str | None
    message_state: MessageState

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "flow": self.flow,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "deal_id": self.deal_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
            "note": self.note,
            "message_state": self.message_state.value,
        }


def list_approvals(
    engine: Engine, state: ApprovalState | None = None, *, limit: int = 50, offset: int = 0
) -> tuple[list[ApprovalRow], int]:
    """Approvals, oldest request first (the longest waiting on top), and how many match."""
    query = select(*Approval.__table__.c, SyncMessage.state.label("message_state")).join(
        SyncMessage, SyncMessage.id == Approval.message_id
    )
    count = select(func.count()).select_from(Approval)
    if state is not None:
        query = query.where(Approval.state == state)
        count = count.where(Approval.state == state)
    with engine.connect() as conn:
        total = int(conn.execute(count).scalar_one())
        rows = conn.execute(
            query.order_by(Approval.requested_at, Approval.id).limit(limit).offset(offset)
        ).all()
    return [
        ApprovalRow(
            id=r.id,
            state=ApprovalState(r.state),
            flow=r.flow,
            object_type=r.object_type,
            object_id=r.object_id,
            deal_id=r.deal_id,
            amount=Decimal(r.amount),
            currency=r.currency,
            reason=r.reason,
            requested_at=r.requested_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            note=r.note,
            message_state=MessageState(r.message_state),
        )
        for r in rows
    ], total
