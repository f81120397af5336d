"""Flow 5: a payment applied in ERP is cash collected: the invoice is paid (in part or in
full) and the CRM account's cash status follows."""

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


def streams(context: FlowContext) -> list[Stream]:
    return [
        Stream(
            "erp.payments",
            System.ERP,
            "payments",
            {},
            lambda r: plan_payment(context, r),
            read=context.erp.payments,
        )
    ]


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


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {(FLOW, "update_account"): lambda m: update_account(context, m)}
