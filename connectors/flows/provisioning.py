"""Flow 2: an executed contract in CLM provisions the customer in ERP, then the project
with its milestones in PSA and the billing schedule from the contract terms in billing.
A contract cancelled after that is compensated: the PSA project is closed and the billing
schedule cancelled (so no more time is booked or billed to it), and the deal reaches its
`cancelled` stage; a project or schedule step that runs after the cancellation (late, or
replayed) creates nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.erp import NewCustomer
from connectors.errors import MissingPrerequisite
from connectors.flows.base import FlowContext, Observation, Planned, Stream, money, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.worker import StepResult
from store.states import System

FLOW = "provisioning"
PSA_MODE = {
    "time_and_materials": "time_and_materials",
    "fixed_fee_milestone": "fixed_fee",
    "retainer": "retainer",
}
BILLING_MODEL = {
    "time_and_materials": "time_and_materials",
    "fixed_fee_milestone": "milestone",
    "retainer": "retainer",
}


def _cents(amount: Any) -> int:
    return int(money(amount) * 100)


def plan_executed_agreement(context: FlowContext, agreement: dict[str, Any]) -> Iterator[Planned]:
    agreement_id = str(agreement["id"])
    deal = str(agreement["source_ref"]["opportunity_id"])
    value = agreement["terms"]["total_value"]
    executed = parse_time(agreement.get("modified_at"), context.clock())
    yield Planned(
        Step(
            FLOW,
            "customer",
            System.ERP,
            f"{FLOW}.customer:{agreement_id}",
            {"agreement": agreement},
            deal,
        ),
        (
            Observation(
                "contract_executed",
                executed,
                {
                    "q2c.deal.id": deal,
                    "q2c.contract.id": agreement_id,
                    "q2c.system": "clm",
                    "q2c.amount": str(money(value["amount"])),
                    "q2c.currency": value["currency"],
                    "q2c.billing_model": agreement["terms"]["billing_model"],
                    "q2c.legal_entity": agreement.get("legal_entity") or "",
                },
            ),
        ),
    )


def plan_cancelled_agreement(context: FlowContext, agreement: dict[str, Any]) -> Iterator[Planned]:
    agreement_id = str(agreement["id"])
    deal = str(agreement["source_ref"]["opportunity_id"])
    cancelled = parse_time(
        agreement.get("cancelled_at") or agreement.get("modified_at"), context.clock()
    )
    yield Planned(
        Step(
            FLOW,
            "cancel",
            System.PSA,
            f"{FLOW}.cancel:{agreement_id}",
            {"agreement": agreement},
            deal,
        ),
        (
            Observation(
                "cancelled",
                cancelled,
                {"q2c.deal.id": deal, "q2c.contract.id": agreement_id, "q2c.system": "clm"},
            ),
        ),
    )


def streams(context: FlowContext) -> list[Stream]:
    return [
        Stream(
            "clm.executed_agreements",
            System.CLM,
            "agreements",
            {"status": "executed"},
            lambda record: plan_executed_agreement(context, record),
        ),
        Stream(
            "clm.cancelled_agreements",
            System.CLM,
            "agreements",
            {"status": "cancelled"},
            lambda record: plan_cancelled_agreement(context, record),
        ),
    ]


def cancelled_since(
    context: FlowContext, agreement_id: str, attributes: dict[str, Any]
) -> StepResult | None:
    """The result of a project or schedule step whose contract CLM has cancelled since
    (a step that ran late: retried past an outage, or replayed after the cancellation was
    compensated): nothing to create; None while the contract stands."""
    current = context.api(System.CLM).get("agreements", agreement_id, attributes)
    if current.get("status") != "cancelled":
        return None
    return StepResult(
        {"cancelled_at": current.get("cancelled_at"), "created": None},
        already_done=True,
        attributes=attributes,
    )


def provision_customer(context: FlowContext, message: ClaimedMessage) -> StepResult:
    agreement = message.payload["agreement"]
    terms = agreement["terms"]
    account_id = str(agreement["counterparty"]["crm_account_id"])
    attributes = {"q2c.deal.id": message.deal_id or "", "q2c.contract.id": str(agreement["id"])}
    customer_id = context.erp.find_customer(account_id, attributes)
    already = customer_id is not None
    if customer_id is None:
        customer_id = context.erp.create_customer(
            NewCustomer(
                account_id=account_id,
                name=agreement["counterparty"]["name"],
                legal_entity=agreement["legal_entity"],
                currency=terms["total_value"]["currency"],
                terms_days=int(terms["payment_terms_days"]),
            ),
            attributes,
        )
    follow = {"agreement": agreement, "customer_id": customer_id}
    agreement_id = str(agreement["id"])
    return StepResult(
        {"customer_id": customer_id},
        already_done=already,
        stage="customer_provisioned",
        attributes={**attributes, "q2c.legal_entity": agreement.get("legal_entity") or ""},
        follow_ups=(
            Step(
                FLOW,
                "project",
                System.PSA,
                f"{FLOW}.project:{agreement_id}",
                follow,
                message.deal_id,
            ),
            Step(
                FLOW,
                "schedule",
                System.BILLING,
                f"{FLOW}.schedule:{agreement_id}",
                follow,
                message.deal_id,
            ),
        ),
    )


def provision_project(context: FlowContext, message: ClaimedMessage) -> StepResult:
    agreement = message.payload["agreement"]
    terms = agreement["terms"]
    agreement_id = str(agreement["id"])
    psa = context.api(System.PSA)
    attributes = {"q2c.deal.id": message.deal_id or "", "q2c.contract.id": agreement_id}
    workspace = psa.first("workspaces", {"external_reference": agreement_id}, attributes)
    already = workspace is not None
    if workspace is None:
        if (cancelled := cancelled_since(context, agreement_id, attributes)) is not None:
            return cancelled
        workspace = psa.create(
            "workspaces",
            {
                "title": agreement["title"],
                "external_reference": agreement_id,
                "deal_reference": message.deal_id,
                "entity": agreement["legal_entity"],
                "practice": agreement.get("practice") or "General",
                "currency": terms["total_value"]["currency"],
                "billing_mode": PSA_MODE[terms["billing_model"]],
                "price_in_cents": _cents(terms["total_value"]["amount"]),
                "start_date": terms["start_date"],
                "due_date": terms.get("end_date"),
                "rate_card": [
                    {"role": r["role"], "rate_in_cents": _cents(r["hourly_rate"]["amount"])}
                    for r in terms["rate_card"]
                ],
            },
            key=f"psa-workspace:{agreement_id}",
            attributes=attributes,
        )
    for milestone in terms.get("milestones") or []:
        psa.create(
            "stories",
            {
                "workspace_id": str(workspace["id"]),
                "title": milestone["name"],
                "story_type": "milestone",
                "due_date": milestone["due_date"],
                "price_in_cents": _cents(milestone["amount"]["amount"]),
                "external_reference": milestone["milestone_id"],
            },
            key=f"psa-story:{milestone['milestone_id']}",
            attributes=attributes,
        )
    return StepResult(
        {"workspace_id": workspace["id"]},
        already_done=already,
        stage="project_activated",
        attributes={
            **attributes,
            "q2c.project.id": str(workspace["id"]),
            "q2c.practice": agreement.get("practice") or "",
        },
    )


def provision_schedule(context: FlowContext, message: ClaimedMessage) -> StepResult:
    agreement = message.payload["agreement"]
    terms = agreement["terms"]
    agreement_id = str(agreement["id"])
    billing = context.api(System.BILLING)
    attributes = {"q2c.deal.id": message.deal_id or "", "q2c.contract.id": agreement_id}
    schedule = billing.first("billing_schedules", {"contract_number": agreement_id}, attributes)
    already = schedule is not None
    if schedule is None:
        if (cancelled := cancelled_since(context, agreement_id, attributes)) is not None:
            return cancelled
        if not message.payload.get("customer_id"):
            raise MissingPrerequisite(f"no ERP customer for contract {agreement_id} yet")
        schedule = billing.create(
            "billing_schedules",
            {
                "contract_number": agreement_id,
                "deal_id": message.deal_id,
                "customer_account_number": message.payload["customer_id"],
                "bill_to_name": agreement["counterparty"]["name"],
                "currency": terms["total_value"]["currency"],
                "billing_model": BILLING_MODEL[terms["billing_model"]],
                "rate_card": [
                    {"role": r["role"], "unit_price": str(money(r["hourly_rate"]["amount"]))}
                    for r in terms["rate_card"]
                ],
                "cap_amount": str(money(terms["cap"]["amount"])) if terms.get("cap") else None,
                "po_number": terms.get("po_number"),
                "monthly_fee": str(money(terms["monthly_fee"]["amount"]))
                if terms.get("monthly_fee")
                else None,
                "term_months": terms.get("term_months"),
                "start_date": terms["start_date"],
                "payment_terms_days": terms["payment_terms_days"],
            },
            key=f"billing-schedule:{agreement_id}",
            attributes=attributes,
        )
    return StepResult(
        {"schedule_id": schedule["id"]},
        already_done=already,
        stage="billing_scheduled",
        attributes=attributes,
    )


def cancel_provisioning(context: FlowContext, message: ClaimedMessage) -> StepResult:
    """Close the contract's PSA project and cancel its billing schedule, whichever exist
    and are still open. A contract cancelled before it was provisioned has neither, and a
    project or schedule step that runs after this one creates nothing (`cancelled_since`)."""
    agreement_id = str(message.payload["agreement"]["id"])
    psa, billing = context.api(System.PSA), context.api(System.BILLING)
    attributes = {"q2c.deal.id": message.deal_id or "", "q2c.contract.id": agreement_id}
    done: dict[str, Any] = {"workspace_id": None, "schedule_id": None}
    workspace = psa.first("workspaces", {"external_reference": agreement_id}, attributes)
    if workspace is not None:
        done["workspace_id"] = workspace["id"]
        if workspace.get("status") != "closed":
            psa.update(
                "workspaces",
                str(workspace["id"]),
                {"status": "closed"},
                key=f"psa-close:{agreement_id}",
                attributes=attributes,
            )
    schedule = billing.first("billing_schedules", {"contract_number": agreement_id}, attributes)
    if schedule is not None:
        done["schedule_id"] = schedule["id"]
        if schedule.get("status") != "cancelled":
            billing.update(
                "billing_schedules",
                str(schedule["id"]),
                {"status": "cancelled"},
                key=f"billing-cancel:{agreement_id}",
                attributes=attributes,
            )
    return StepResult(done, attributes=attributes)


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {
        (FLOW, "customer"): lambda m: provision_customer(context, m),
        (FLOW, "project"): lambda m: provision_project(context, m),
        (FLOW, "schedule"): lambda m: provision_schedule(context, m),
        (FLOW, "cancel"): lambda m: cancel_provisioning(context, m),
    }
