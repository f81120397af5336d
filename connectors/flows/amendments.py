"""Flow 6: an executed contract amendment in CLM updates the billing schedule (cap, term,
rate card) and the PSA project's rate card."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.errors import MissingPrerequisite
from connectors.flows.base import FlowContext, Planned, Stream, money
from connectors.outbox import ClaimedMessage, Step
from connectors.worker import StepResult
from store.states import System

FLOW = "amendments"


def plan_amendment(context: FlowContext, amendment: dict[str, Any]) -> Iterator[Planned]:
    yield Planned(
        Step(
            FLOW,
            "apply",
            System.BILLING,
            f"{FLOW}.apply:{amendment['id']}",
            {"amendment": amendment},
        )
    )


def streams(context: FlowContext) -> list[Stream]:
    return [
        Stream(
            "clm.executed_amendments",
            System.CLM,
            "amendments",
            {"status": "executed"},
            lambda r: plan_amendment(context, r),
        )
    ]


def apply_amendment(context: FlowContext, message: ClaimedMessage) -> StepResult:
    amendment = message.payload["amendment"]
    agreement_id = str(amendment["agreement_id"])
    changes: dict[str, Any] = amendment.get("changes") or {}
    billing, psa = context.api(System.BILLING), context.api(System.PSA)
    attributes = {"q2c.contract.id": agreement_id}
    schedule = billing.first("billing_schedules", {"contract_number": agreement_id}, attributes)
    if schedule is None:
        raise MissingPrerequisite(f"no billing schedule for contract {agreement_id} yet")
    attributes["q2c.deal.id"] = str(schedule.get("deal_id") or "")
    update: dict[str, Any] = {}
    if changes.get("cap"):
        update["cap_amount"] = str(money(changes["cap"]["amount"]))
    if changes.get("term_months"):
        update["term_months"] = int(changes["term_months"])
    if changes.get("rate_card"):
        update["rate_card"] = [
            {"role": r["role"], "unit_price": str(money(r["hourly_rate"]["amount"]))}
            for r in changes["rate_card"]
        ]
    if update:
        billing.update(
            "billing_schedules",
            str(schedule["id"]),
            update,
            key=f"billing-amendment:{amendment['id']}",
            attributes=attributes,
        )
    if changes.get("rate_card"):
        workspace = psa.first("workspaces", {"external_reference": agreement_id}, attributes)
        if workspace is None:
            raise MissingPrerequisite(f"no PSA project for contract {agreement_id} yet")
        psa.update(
            "workspaces",
            str(workspace["id"]),
            {
                "rate_card": [
                    {
                        "role": r["role"],
                        "rate_in_cents": int(money(r["hourly_rate"]["amount"]) * 100),
                    }
                    for r in changes["rate_card"]
                ]
            },
            key=f"psa-amendment:{amendment['id']}",
            attributes=attributes,
        )
    return StepResult(
        {"schedule_id": schedule["id"], "changed": sorted(update)}, attributes=attributes
    )


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {(FLOW, "apply"): lambda m: apply_amendment(context, m)}
