"""Flow 4: an invoice released in billing is validated against its schedule (rates, PO)
and posted to ERP accounts receivable, once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.errors import ValidationFailed
from connectors.flows.base import FlowContext, Observation, Planned, Stream, money, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.tracing import observe
from connectors.worker import StepResult
from store.states import System

FLOW = "invoice_to_ar"


def plan_invoice(context: FlowContext, invoice: dict[str, Any]) -> Iterator[Planned]:
    invoice_id = str(invoice["id"])
    yield Planned(
        Step(
            FLOW,
            "post",
            System.ERP,
            f"{FLOW}.post:{invoice_id}",
            {"invoice": invoice},
            str(invoice["deal_id"]),
        ),
        (
            Observation(
                "invoiced",
                parse_time(
                    invoice.get("created_at") or invoice.get("invoice_date"), context.clock()
                ),
                {
                    "q2c.deal.id": str(invoice["deal_id"]),
                    "q2c.invoice.id": invoice_id,
                    "q2c.system": "billing",
                    "q2c.amount": str(money(invoice["amount"])),
                    "q2c.currency": invoice["currency"],
                },
            ),
        ),
    )


def streams(context: FlowContext) -> list[Stream]:
    return [
        Stream(
            "billing.invoices",
            System.BILLING,
            "invoices",
            {"status": "posted"},
            lambda r: plan_invoice(context, r),
        )
    ]


def validate(invoice: dict[str, Any], schedule: dict[str, Any]) -> None:
    if schedule.get("po_number") and invoice.get("po_number") != schedule["po_number"]:
        raise ValidationFailed(
            f"invoice {invoice['id']} lacks the contract's PO {schedule['po_number']}"
        )
    card = {line["role"]: money(line["unit_price"]) for line in schedule.get("rate_card") or []}
    for line in invoice.get("lines") or []:
        role = line.get("role")
        if role in card and money(line["unit_price"]) != card[role]:
            raise ValidationFailed(
                f"invoice {invoice['id']} bills {role} at {money(line['unit_price'])}, "
                f"contract rate {card[role]}"
            )


def post(context: FlowContext, message: ClaimedMessage) -> StepResult:
    invoice = message.payload["invoice"]
    invoice_id = str(invoice["id"])
    billing = context.api(System.BILLING)
    attributes = {
        "q2c.deal.id": str(invoice["deal_id"]),
        "q2c.invoice.id": invoice_id,
        "q2c.amount": str(money(invoice["amount"])),
        "q2c.currency": invoice["currency"],
    }
    existing = context.erp.find_posting(invoice_id, attributes)
    if existing is not None:
        return StepResult(
            {"ar_posting_id": existing}, already_done=True, stage="posted", attributes=attributes
        )
    schedule = billing.get("billing_schedules", str(invoice["billing_schedule_id"]), attributes)
    try:
        validate(invoice, schedule)
    except ValidationFailed as exc:
        observe(
            context.tracer,
            "validate invoice",
            context.clock(),
            {
                **attributes,
                "q2c.stage": "rejected",
                "q2c.system": "billing",
                "throughline.reason": str(exc),
            },
        )
        raise
    posting_id = context.erp.create_posting(invoice, attributes)
    return StepResult({"ar_posting_id": posting_id}, stage="posted", attributes=attributes)


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {(FLOW, "post"): lambda m: post(context, m)}
