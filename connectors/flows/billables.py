"""Flow 3: approved time and approved milestones in PSA become billable charges in billing,
each validated against the contract terms first (rate, cap, milestone approval)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from connectors.approvals import Checkpoint, require
from connectors.errors import MissingPrerequisite, OverCap, ValidationFailed
from connectors.flows.base import FlowContext, Observation, Planned, Stream, money, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.worker import StepResult
from store.states import System

FLOW = "billables"


def _billable(kind: str, record: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal, str | None]:
    """Quantity, unit price, amount and role of an approved time entry or milestone."""
    if kind == "time":
        quantity = (Decimal(record["time_in_minutes"]) / 60).quantize(Decimal("0.01"))
        rate = money(Decimal(record["rate_in_cents"]) / 100)
        return quantity, rate, money(quantity * rate), record.get("role")
    amount = money(Decimal(record["price_in_cents"]) / 100)
    return Decimal(1), amount, amount, None


def _plan(context: FlowContext, kind: str, record: dict[str, Any]) -> Iterator[Planned]:
    if kind == "time":
        workspace = _workspace(context, str(record["workspace_id"]))
        if workspace["billing_mode"] != "time_and_materials":
            return  # time on fixed-fee and retainer work is not billed by the hour
    item = str(record["id"])
    deal = record.get("deal_reference")
    quantity, rate, amount, _role = _billable(kind, record)
    approved = parse_time(record.get("approved_at") or record.get("updated_at"), context.clock())
    yield Planned(
        Step(
            FLOW,
            "charge",
            System.BILLING,
            f"{FLOW}.charge:{item}",
            {"kind": kind, "item": record},
            str(deal) if deal else None,
        ),
        (
            Observation(
                "billable_approved",
                approved,
                {
                    "q2c.deal.id": str(deal or ""),
                    "q2c.billable.id": item,
                    "q2c.system": "psa",
                    "q2c.amount": str(amount),
                    "q2c.currency": record.get("currency") or "",
                    "q2c.quantity": str(quantity),
                    "q2c.rate": str(rate),
                    "q2c.kind": kind,
                    "q2c.consultant": str(record.get("user_id") or ""),
                },
            ),
        ),
    )


def _plan_invoiced(context: FlowContext, charge: dict[str, Any]) -> Iterator[Planned]:
    """A charge billing invoiced: the billable item it came from is invoiced (what unbilled
    WIP, leakage and time-to-invoice are measured by)."""
    item = str(charge["source_reference"])
    amount = money(charge["quantity"]) * money(charge["unit_price"])
    yield Planned(
        Step(
            FLOW, "invoiced", System.BILLING, f"{FLOW}.invoiced:{charge['id']}", {"charge": charge}
        ),
        (
            Observation(
                "invoiced",
                parse_time(charge.get("updated_at"), context.clock()),
                {
                    "q2c.billable.id": item,
                    "q2c.invoice.id": str(charge.get("invoice_id") or ""),
                    "q2c.system": "billing",
                    "q2c.amount": str(money(amount)),
                },
            ),
        ),
    )


def streams(context: FlowContext) -> list[Stream]:
    return [
        Stream(
            "psa.approved_time",
            System.PSA,
            "time_entries",
            {"approved": "true"},
            lambda r: _plan(context, "time", r),
        ),
        Stream(
            "psa.approved_milestones",
            System.PSA,
            "stories",
            {"state": "approved"},
            lambda r: _plan(context, "milestone", r),
        ),
        Stream(
            "billing.invoiced_charges",
            System.BILLING,
            "charges",
            {"status": "invoiced"},
            lambda r: _plan_invoiced(context, r),
        ),
    ]


def record_invoiced(context: FlowContext, message: ClaimedMessage) -> StepResult:
    """Nothing to write anywhere: the step records that billing invoiced the charge."""
    charge = message.payload["charge"]
    return StepResult({"charge_id": charge["id"], "invoice_id": charge.get("invoice_id")})


def _workspace(context: FlowContext, workspace_id: str) -> dict[str, Any]:
    key = f"psa.workspace:{workspace_id}"
    if key not in context.cache:
        context.cache[key] = context.api(System.PSA).get("workspaces", workspace_id)
    workspace: dict[str, Any] = context.cache[key]
    return workspace


def validate(
    schedule: dict[str, Any], existing: list[dict[str, Any]], kind: str, record: dict[str, Any]
) -> None:
    """Refuse a billable that breaks the contract: a rate off the rate card, a charge past
    the cap, a milestone that is not approved."""
    _quantity, rate, amount, role = _billable(kind, record)
    if kind == "milestone" and record.get("state") != "approved":
        raise ValidationFailed(f"milestone {record['id']} is not approved")
    if kind == "time":
        card = {line["role"]: money(line["unit_price"]) for line in schedule.get("rate_card") or []}
        if role not in card:
            raise ValidationFailed(f"role {role!r} is not on the contract's rate card")
        if rate != card[role]:
            raise ValidationFailed(
                f"rate {rate} for {role} differs from the contract rate {card[role]}"
            )
    cap = schedule.get("cap_amount")
    if cap is not None:
        billed = sum(
            (
                money(c["quantity"]) * money(c["unit_price"])
                for c in existing
                if c.get("source_reference") != str(record["id"])
            ),
            Decimal(0),
        )
        if billed + amount > money(cap):
            raise OverCap(
                f"charge of {amount} would bring billed {money(billed)} past the cap {money(cap)}",
                amount=amount,
            )


def charge(context: FlowContext, message: ClaimedMessage) -> StepResult:
    kind, record = message.payload["kind"], message.payload["item"]
    item = str(record["id"])
    billing = context.api(System.BILLING)
    attributes = {"q2c.deal.id": message.deal_id or "", "q2c.billable.id": item}
    workspace = _workspace(context, str(record["workspace_id"]))
    if kind == "time" and workspace["billing_mode"] != "time_and_materials":
        return StepResult({"skipped": "time on a fixed-fee or retainer project is not billed"})
    agreement_id = str(workspace["external_reference"])
    schedule = billing.first("billing_schedules", {"contract_number": agreement_id}, attributes)
    if schedule is None:
        raise MissingPrerequisite(f"no billing schedule for contract {agreement_id} yet")
    charges = list(
        billing.records(
            "charges", {"billing_schedule_id": str(schedule["id"])}, attributes=attributes
        )
    )
    done = next((c for c in charges if c.get("source_reference") == item), None)
    if done is not None:
        return StepResult(
            {"charge_id": done["id"]}, already_done=True, stage="validated", attributes=attributes
        )
    try:
        validate(schedule, charges, kind, record)
    except OverCap as exc:
        if not over_cap_approved(context, message, item, exc, str(schedule.get("currency"))):
            context.failed_at(exc, "validate billable", "rejected", System.PSA, attributes)
            raise
    except ValidationFailed as exc:
        context.failed_at(exc, "validate billable", "rejected", System.PSA, attributes)
        raise
    quantity, rate, _amount, role = _billable(kind, record)
    service_date = str(record.get("date_performed") or record.get("approved_at") or "")[:10]
    created = billing.create(
        "charges",
        {
            "billing_schedule_id": str(schedule["id"]),
            "source_reference": item,
            "description": f"{role or 'Milestone'} {service_date}",
            "service_date": service_date,
            "quantity": str(quantity),
            "unit_price": str(rate),
            "role": role,
        },
        key=f"billing-charge:{item}",
        attributes=attributes,
    )
    return StepResult({"charge_id": created["id"]}, stage="validated", attributes=attributes)


def over_cap_approved(
    context: FlowContext, message: ClaimedMessage, item: str, refusal: OverCap, currency: str
) -> bool:
    """Whether a person approved charging past the cap (`approvals.over_cap`): False where
    no one decides (the charge is rejected); raises `AwaitingApproval` while it waits."""
    if context.approvals is None or not context.approvals.over_cap or context.store is None:
        return False
    wait = Checkpoint(
        f"billable:{item}", "billable_item", item, money(refusal.amount), currency, str(refusal)
    )
    require(context.store, message, wait, context.clock())
    return True


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {
        (FLOW, "charge"): lambda m: charge(context, m),
        (FLOW, "invoiced"): lambda m: record_invoiced(context, m),
    }
