"""Flow 4: an invoice released in billing is validated against its schedule (rates, PO)
and posted to ERP accounts receivable, once. An invoice the ERP refuses for good is
credited in billing (the compensation: it no longer counts as open receivable or as
billed backlog) and dead-lettered, which hands it to finance to fix and reissue."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.approvals import Checkpoint, require
from connectors.errors import ConnectorError, RetryableError, ValidationFailed
from connectors.flows.base import FlowContext, Observation, Planned, Stream, money, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.resources import Api
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


def validate(
    invoice: dict[str, Any], schedule: dict[str, Any], charges: dict[str, dict[str, Any]]
) -> None:
    """Refuse an invoice that breaks its contract: no PO where the contract has one, a line
    that bills a charge at another price or quantity than the validated charge, a retainer
    fee that is not the contract's."""
    if schedule.get("po_number") and invoice.get("po_number") != schedule["po_number"]:
        raise ValidationFailed(
            f"invoice {invoice['id']} lacks the contract's PO {schedule['po_number']}"
        )
    for line in invoice.get("lines") or []:
        charge_id = line.get("charge_id")
        if charge_id is not None:
            charge = charges.get(str(charge_id))
            if charge is None:
                raise ValidationFailed(f"invoice {invoice['id']} bills unknown charge {charge_id}")
            for field in ("unit_price", "quantity"):
                if money(line[field]) != money(charge[field]):
                    raise ValidationFailed(
                        f"invoice {invoice['id']} bills {line.get('description')} at "
                        f"{field} {money(line[field])}, contract rate {money(charge[field])}"
                    )
        elif schedule.get("monthly_fee") and money(line["unit_price"]) != money(
            schedule["monthly_fee"]
        ):
            raise ValidationFailed(
                f"invoice {invoice['id']} bills a fee of {money(line['unit_price'])}, "
                f"contract rate {money(schedule['monthly_fee'])}"
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
    if message.attempt > 1:  # a retry or a replay: the invoice may have been credited since
        credit = credited_in_full(billing, invoice, attributes)
        if credit is not None:
            return StepResult(
                {"credit_note_id": credit, "compensated": True},
                already_done=True,
                attributes=attributes,
            )
    schedule_id = str(invoice["billing_schedule_id"])
    schedule = billing.get("billing_schedules", schedule_id, attributes)
    charges = {
        str(c["id"]): c
        for c in billing.records(
            "charges", {"billing_schedule_id": schedule_id}, attributes=attributes
        )
    }
    try:
        validate(invoice, schedule, charges)
    except ValidationFailed as exc:
        context.failed_at(exc, "validate invoice", "rejected", System.BILLING, attributes)
        raise
    checkpoint(context, message, invoice)
    try:
        posting_id = context.erp.create_posting(invoice, attributes)
    except ConnectorError as exc:
        if exc.refused:  # the ERP refuses this invoice: retrying will not post it
            context.failed_at(exc, "post invoice", "posting_failed", System.ERP, attributes)
            credit_refused(context, invoice, exc, attributes)
        raise
    return StepResult({"ar_posting_id": posting_id}, stage="posted", attributes=attributes)


def checkpoint(context: FlowContext, message: ClaimedMessage, invoice: dict[str, Any]) -> None:
    """An invoice above the approval limit waits for a person (connectors.approvals):
    returns once approved, else raises `AwaitingApproval`."""
    if context.approvals is None or context.store is None:
        return
    amount, currency = money(invoice["amount"]), str(invoice["currency"])
    reason = context.approvals.invoice_reason(amount, currency)
    if reason is None:
        return
    invoice_id = str(invoice["id"])
    wait = Checkpoint(f"invoice:{invoice_id}", "invoice", invoice_id, amount, currency, reason)
    require(context.store, message, wait, context.clock())


def credited_in_full(
    billing: Api, invoice: dict[str, Any], attributes: Mapping[str, Any]
) -> str | None:
    """The id of the last credit note that brings the invoice's credits to its amount, if
    billing has credited all of it (by us, or by finance by hand)."""
    credits = list(
        billing.records("credit_notes", {"invoice_id": str(invoice["id"])}, attributes=attributes)
    )
    credited = sum((money(c["amount"]) for c in credits), money(0))
    if credits and credited >= money(invoice["amount"]):
        return str(credits[-1]["id"])
    return None


def credit_refused(
    context: FlowContext,
    invoice: dict[str, Any],
    refusal: ConnectorError,
    attributes: Mapping[str, Any],
) -> None:
    """Compensate an invoice the ERP refused for good: a credit note for all of it in
    billing, and the `credited` stage stored with the refused attempt. A billing error
    worth retrying propagates (the retry meets the same refusal and credits again, under
    the same idempotency key); any other is added to the refusal, which dead-letters."""
    invoice_id = str(invoice["id"])
    try:
        context.api(System.BILLING).create(
            "credit_notes",
            {
                "invoice_id": invoice_id,
                "amount": str(money(invoice["amount"])),
                "reason": f"the ERP refused the AR posting: {refusal}"[:500],
            },
            key=f"credit-refused:{invoice_id}",
            attributes=attributes,
        )
    except RetryableError:
        raise
    except ConnectorError as exc:
        refusal.args = (f"{refusal}; crediting the invoice in billing failed too: {exc}",)
        return
    context.failed_at(refusal, "credit refused invoice", "credited", System.BILLING, attributes)


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {(FLOW, "post"): lambda m: post(context, m)}
