"""Flow 1: a closed-won opportunity in CRM becomes a contract request in CLM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.flows.base import FlowContext, Observation, Planned, Stream, money, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.worker import StepResult
from store.states import System

FLOW = "deal_intake"


def plan_won_opportunity(context: FlowContext, opportunity: dict[str, Any]) -> Iterator[Planned]:
    deal = str(opportunity["id"])
    won_at = parse_time(opportunity.get("lastModifiedDate"), context.clock())
    yield Planned(
        Step(
            FLOW,
            "request_contract",
            System.CLM,
            f"{FLOW}:{deal}",
            {"opportunity": opportunity},
            deal,
        ),
        (
            Observation(
                "closed_won",
                won_at,
                {
                    "q2c.deal.id": deal,
                    "q2c.system": "crm",
                    "q2c.amount": str(money(opportunity["amount"])),
                    "q2c.currency": opportunity["currencyIsoCode"],
                    "q2c.practice": opportunity.get("practice") or "",
                    "q2c.account.id": str(opportunity["accountId"]),
                    "q2c.deal.name": opportunity.get("name") or "",
                },
            ),
        ),
    )


def streams(context: FlowContext) -> list[Stream]:
    return [
        Stream(
            "crm.won_opportunities",
            System.CRM,
            "opportunities",
            {"isWon": "true"},
            lambda record: plan_won_opportunity(context, record),
        )
    ]


def request_contract(context: FlowContext, message: ClaimedMessage) -> StepResult:
    opportunity = message.payload["opportunity"]
    deal = str(opportunity["id"])
    clm, crm = context.api(System.CLM), context.api(System.CRM)
    attributes = {"q2c.deal.id": deal}
    existing = clm.first("agreements", {"opportunity_id": deal}, attributes)
    if existing is not None:
        return StepResult({"agreement_id": existing["id"]}, already_done=True)
    account = crm.get("accounts", str(opportunity["accountId"]), attributes)
    created = clm.create(
        "agreements",
        {
            "title": opportunity["name"],
            "source_ref": {"opportunity_id": deal},
            "counterparty": {"name": account["name"], "crm_account_id": str(account["id"])},
            "legal_entity": account["legalEntity"],
            "practice": opportunity.get("practice"),
            "estimated_value": {
                "amount": f"{money(opportunity['amount'])}",
                "currency": opportunity["currencyIsoCode"],
            },
        },
        key=f"clm-agreement:{deal}",
        attributes=attributes,
    )
    return StepResult(
        {"agreement_id": created["id"]},
        attributes={
            "q2c.contract.id": str(created["id"]),
            "q2c.legal_entity": account.get("legalEntity") or "",
            "q2c.account.name": account.get("name") or "",
        },
    )


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {(FLOW, "request_contract"): lambda m: request_contract(context, m)}
