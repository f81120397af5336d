"""Flow 5: a payment applied in ERP is cash collected: the invoice is paid (in part or in
full) and the CRM account's cash status follows. A customer's dispute of an AR posting is
captured too: the invoice reaches its `disputed` exception stage and the CRM account's
cash status becomes `disputed`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.flows.base import FlowContext, Observation, Planned, Stream, money, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.worker import StepResult
from store.states import System

FLOW = "cash_collected"


def plan_payment(context: FlowContext, payment: dict[str, Any]) -> Iterator[Planned]:
    payment_id = str(payment["id"])
    yield Planned(
        Step(
            FLOW,
            "update_account",
            System.CRM,
            f"{FLOW}.account:{payment_id}",
            {"payment": payment},
            payment.get("custbody_deal_id"),
        ),
        (
            Observation(
                "paid",
                parse_time(payment.get("tranDate"), context.clock()),
                {
                    "q2c.deal.id": str(payment.get("custbody_deal_id") or ""),
                    "q2c.invoice.id": str(payment["invoiceExternalId"]),
                    "q2c.payment.id": payment_id,
                    "q2c.system": "erp",
                    "q2c.amount": str(money(payment["amount"])),
                    "q2c.currency": payment["currency"]["refName"],
                },
            ),
        ),
    )


def plan_dispute(context: FlowContext, posting: dict[str, Any]) -> Iterator[Planned]:
    """A posting the customer disputed (it keeps `disputedOn` once paid, so a dispute read
    late is still seen); every other changed posting asks for nothing."""
    if not posting.get("disputedOn"):
        return
    posting_id = str(posting["id"])
    deal_id = posting.get("custbody_deal_id")
    yield Planned(
        Step(
            FLOW,
            "dispute_account",
            System.CRM,
            f"{FLOW}.dispute:{posting_id}",
            {"posting": posting},
            deal_id,
        ),
        (
            Observation(
                "disputed",
                parse_time(posting["disputedOn"], context.clock()),
                {
                    "q2c.deal.id": str(deal_id or ""),
                    "q2c.invoice.id": str(posting["externalId"]),
                    "q2c.system": "erp",
                },
            ),
        ),
    )


def streams(context: FlowContext) -> list[Stream]:
    found = [
        Stream(
            "erp.payments",
            System.ERP,
            "payments",
            {},
            lambda r: plan_payment(context, r),
            read=context.erp.payments,
        )
    ]
    if context.erp.has_disputes:
        # every posting changed since the cursor, not `status=disputed`: one disputed
        # and paid between two polls is `paid` by then
        found.append(
            Stream(
                "erp.disputes", System.ERP, "ar_postings", {}, lambda r: plan_dispute(context, r)
            )
        )
    return found


def update_account(context: FlowContext, message: ClaimedMessage) -> StepResult:
    payment = message.payload["payment"]
    crm = context.api(System.CRM)
    attributes = {
        "q2c.deal.id": message.deal_id or "",
        "q2c.invoice.id": str(payment["invoiceExternalId"]),
    }
    account_id, status = context.erp.cash_status(payment, attributes)
    crm.update(
        "accounts",
        account_id,
        {"cashStatus": status},
        key=f"crm-cash:{payment['id']}",
        attributes=attributes,
    )
    return StepResult({"account_id": account_id, "cash_status": status}, attributes=attributes)


def dispute_account(context: FlowContext, message: ClaimedMessage) -> StepResult:
    posting = message.payload["posting"]
    attributes = {
        "q2c.deal.id": message.deal_id or "",
        "q2c.invoice.id": str(posting["externalId"]),
    }
    account_id = context.erp.account_of(posting, attributes)
    context.api(System.CRM).update(
        "accounts",
        account_id,
        {"cashStatus": "disputed"},
        key=f"crm-dispute:{posting['id']}",
        attributes=attributes,
    )
    return StepResult({"account_id": account_id, "cash_status": "disputed"}, attributes=attributes)


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {
        (FLOW, "update_account"): lambda m: update_account(context, m),
        (FLOW, "dispute_account"): lambda m: dispute_account(context, m),
    }
