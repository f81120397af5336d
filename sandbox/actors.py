"""The firm's people, acting once a simulated day, each only in their own system and
only on records that exist there: sales in CRM, legal in CLM, resource managers,
consultants and managers in PSA, the billing team in billing, customers in ERP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox import behaviour
from sandbox.records import Record
from sandbox.scenario import DealPlan, Firm, money
from sandbox.service import SystemService
from sandbox.world_state import WorldState

CRM_MODEL = {
    "time_and_materials": "T&M",
    "fixed_fee_milestone": "Fixed Fee",
    "retainer": "Retainer",
}


@dataclass
class Cast:
    firm: Firm
    services: Mapping[str, SystemService]
    state: WorldState

    @property
    def seed(self) -> int:
        return self.firm.seed

    def deal_of_opportunity(self, opportunity_id: str | None) -> DealPlan | None:
        key = self.state.deal_for_opportunity(opportunity_id) if opportunity_id else None
        return self.firm.deal(key) if key else None


# --- CRM: sales ---------------------------------------------------------------------------


def seed_crm_accounts(cast: Cast) -> None:
    crm = cast.services["crm"]
    for account in cast.firm.accounts:  # parents come before their children
        entity = cast.firm.entity(account.entity)
        record = crm.create(
            "accounts",
            {
                "name": account.name,
                "parentId": cast.state.account_ids.get(account.parent_key or ""),
                "industry": account.industry,
                "billingCountry": entity.country,
                "currencyIsoCode": entity.currency,
                "legalEntity": entity.code,
                "ownerName": None,
            },
        )
        cast.state.account_ids[account.key] = str(record["id"])


def _open_stage(deal: DealPlan, day: dt.date) -> str:
    progress = (day - deal.created_on).days / max(1, (deal.close_on - deal.created_on).days)
    if progress >= 0.75:
        return "Negotiation"
    if progress >= 0.4:
        return "Proposal"
    if progress >= 0.15:
        return "Qualification"
    return "Prospecting"


def sales_act(cast: Cast, day: dt.date) -> None:
    """Open the day's new opportunities, move open ones on, close the ones due."""
    crm = cast.services["crm"]
    for deal in cast.firm.deals:
        if deal.key in cast.state.closed:
            continue
        opportunity_id = cast.state.opportunity_ids.get(deal.key)
        if opportunity_id is None:
            if deal.created_on > day or deal.close_on < cast.firm.start:
                continue
            record = crm.create(
                "opportunities",
                {
                    "name": deal.name,
                    "accountId": cast.state.account_ids[deal.account_key],
                    "amount": float(deal.amount),
                    "currencyIsoCode": deal.currency,
                    "stageName": _open_stage(deal, day),
                    "closeDate": deal.close_on.isoformat(),
                    "practice": deal.practice,
                    "billingModel": CRM_MODEL[deal.billing_model],
                    "ownerName": deal.owner,
                },
            )
            cast.state.opportunity_ids[deal.key] = str(record["id"])
            continue
        if day >= deal.close_on:
            crm.update(
                "opportunities",
                opportunity_id,
                {"stageName": "Closed Won" if deal.won else "Closed Lost"},
            )
            cast.state.closed.append(deal.key)
            continue
        current = crm.get("opportunities", opportunity_id)
        stage = _open_stage(deal, day)
        if current is not None and current["stageName"] != stage:
            crm.update("opportunities", opportunity_id, {"stageName": stage})


# --- CLM: legal ---------------------------------------------------------------------------


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(money(amount)), "currency": currency}


def contract_terms(deal: DealPlan, account_terms_days: int) -> dict[str, Any]:
    """The executed terms of a deal's contract, in the CLM's shape."""
    weeks = behaviour.delivery_weeks(deal)
    end = (weeks[-1] + dt.timedelta(days=4)) if weeks else deal.project_start
    return {
        "billing_model": deal.billing_model,
        "total_value": _money(deal.amount, deal.currency),
        "rate_card": [
            {"role": role, "hourly_rate": _money(rate, deal.currency)}
            for role, rate in deal.rate_card
        ],
        "cap": _money(deal.cap, deal.currency) if deal.cap is not None else None,
        "po_number": deal.po_number,
        "milestones": [
            {
                "milestone_id": m.key,
                "name": m.name,
                "amount": _money(m.amount, deal.currency),
                "due_date": behaviour.milestone_due(deal, m.due_week).isoformat(),
            }
            for m in deal.milestones
        ],
        "monthly_fee": _money(deal.monthly_fee, deal.currency)
        if deal.monthly_fee is not None
        else None,
        "term_months": deal.term_months,
        "start_date": deal.project_start.isoformat(),
        "end_date": end.isoformat(),
        "payment_terms_days": account_terms_days,
    }


CANCELLED_AFTER = dt.timedelta(days=14)
"""How far into its project a contract is cancelled (the `contract_cancellation` fault)."""


def legal_act(cast: Cast, day: dt.date) -> None:
    """Execute requested contracts when their deal's paperwork is done; sign amendments;
    record the cancellations customers ask for."""
    clm = cast.services["clm"]
    for agreement in clm.all("agreements", status="requested"):
        deal = cast.deal_of_opportunity(agreement["source_ref"]["opportunity_id"])
        if deal is None or not deal.won or day < deal.executed_on:
            continue
        terms = contract_terms(deal, cast.firm.account(deal.account_key).payment_terms_days)
        clm.update(
            "agreements",
            str(agreement["id"]),
            {"status": "executed", "executed_at": day.isoformat(), "terms": terms},
        )
    for agreement in clm.all("agreements", status="executed"):
        deal = cast.deal_of_opportunity(agreement["source_ref"]["opportunity_id"])
        when = behaviour.amendment_day(deal) if deal else None
        if deal is None or deal.amendment is None or when is None or day < when:
            continue
        if clm.all("amendments", agreement_id=agreement["id"]):
            continue
        terms = dict(agreement["terms"])
        changes: dict[str, Any] = {}
        if deal.amendment.cap_factor is not None and deal.cap is not None:
            changes["cap"] = _money(deal.cap * deal.amendment.cap_factor, deal.currency)
        if deal.amendment.extra_months is not None and deal.term_months is not None:
            changes["term_months"] = deal.term_months + deal.amendment.extra_months
        clm.create(
            "amendments",
            {
                "agreement_id": agreement["id"],
                "effective_date": day.isoformat(),
                "changes": changes,
                "status": "executed",
                "executed_at": day.isoformat(),
            },
        )
        terms.update(changes)
        clm.update(
            "agreements",
            str(agreement["id"]),
            {"terms": terms, "version": int(agreement["version"]) + 1},
        )
    _cancel_contracts(cast, day)


def _cancel_contracts(cast: Cast, day: dt.date) -> None:
    """Each executed contract is at risk once, on the day its project is two weeks in."""
    clm = cast.services["clm"]
    faults = clm.faults
    if not faults.config.contract_cancellation_rate:
        return
    for agreement in clm.all("agreements", status="executed"):
        deal = cast.deal_of_opportunity(agreement["source_ref"]["opportunity_id"])
        if deal is None or day != deal.project_start + CANCELLED_AFTER:
            continue
        if faults.roll(faults.config.contract_cancellation_rate):
            faults.record(
                "contract_cancellation",
                agreement_id=str(agreement["id"]),
                deal_id=agreement["source_ref"]["opportunity_id"],
            )
            clm.update(
                "agreements",
                str(agreement["id"]),
                {"status": "cancelled", "cancelled_at": day.isoformat()},
            )


# --- PSA: resource managers, consultants, managers ------------------------------------------


def seed_psa_users(cast: Cast) -> None:
    psa = cast.services["psa"]
    for person in cast.firm.consultants:
        record = psa.create(
            "users",
            {
                "full_name": person.name,
                "email_address": person.email,
                "headline": person.role,
                "practice": person.practice,
                "entity": person.entity,
                "weekly_capacity_minutes": person.weekly_capacity_hours * 60,
            },
        )
        cast.state.user_ids[person.key] = str(record["id"])


def _rate_in_cents(workspace: Record, role: str) -> int:
    for line in workspace.get("rate_card") or []:
        if line["role"] == role:
            return int(line["rate_in_cents"])
    return 0


def delivery_act(cast: Cast, day: dt.date) -> None:
    """Staff new projects, log the week's time on Fridays, approve on Mondays, approve
    milestones when delivered."""
    psa = cast.services["psa"]
    workspaces = psa.all("workspaces", status="active")
    for workspace in workspaces:
        deal = cast.deal_of_opportunity(workspace.get("deal_reference"))
        if deal is None:
            continue
        workspace_id = str(workspace["id"])
        if not psa.all("assignments", workspace_id=workspace_id):
            for assignment in deal.staffing:
                psa.create(
                    "assignments",
                    {
                        "workspace_id": workspace_id,
                        "user_id": cast.state.user_ids[assignment.consultant_key],
                        "role": assignment.role,
                        "allocation_minutes_per_week": int(assignment.hours_per_week * 60),
                    },
                )
        if day.weekday() == 4:
            week = day - dt.timedelta(days=4)
            if week in behaviour.delivery_weeks(deal):
                for assignment in deal.staffing:
                    hours = behaviour.logged_hours(cast.seed, deal, assignment.consultant_key, week)
                    psa.create(
                        "time_entries",
                        {
                            "workspace_id": workspace_id,
                            "user_id": cast.state.user_ids[assignment.consultant_key],
                            "date_performed": day.isoformat(),
                            "time_in_minutes": int(hours * 60),
                            "billable": True,
                            "role": assignment.role,
                            "rate_in_cents": _rate_in_cents(workspace, assignment.role),
                            "notes": f"Week of {week.isoformat()}",
                        },
                    )
        for story in psa.all("stories", workspace_id=workspace_id, state="not started"):
            milestone = next(
                (m for m in deal.milestones if m.key == story.get("external_reference")), None
            )
            if milestone is None:
                continue
            due = behaviour.milestone_due(deal, milestone.due_week)
            if day >= behaviour.milestone_approved_on(cast.seed, deal, milestone.key, due):
                psa.update(
                    "stories",
                    str(story["id"]),
                    {
                        "state": "approved",
                        "approved_at": day.isoformat(),
                        "deal_reference": workspace["deal_reference"],
                        "currency": workspace["currency"],
                        "billable_amount_in_cents": story["price_in_cents"],
                    },
                )
    if day.weekday() == 0:
        by_id = {str(w["id"]): w for w in workspaces}
        for entry in psa.all("time_entries", approved=0):
            if entry["date_performed"] >= day.isoformat() or entry["workspace_id"] not in by_id:
                continue
            workspace = by_id[entry["workspace_id"]]
            psa.update(
                "time_entries",
                str(entry["id"]),
                {
                    "approved": True,
                    "approved_at": day.isoformat(),
                    "deal_reference": workspace["deal_reference"],
                    "currency": workspace["currency"],
                    "billable_amount_in_cents": round(
                        entry["time_in_minutes"] / 60 * entry["rate_in_cents"]
                    ),
                },
            )


# --- billing: the billing team ------------------------------------------------------------


UNKNOWN_CUSTOMER = "999999"
"""The customer number of the `unknown_customer` fault: no ERP customer has it."""


def billing_act(cast: Cast, day: dt.date) -> None:
    """On the first of the month, invoice every active schedule's due charges."""
    if not behaviour.is_billing_run(day):
        return
    billing = cast.services["billing"]
    faults = billing.faults
    for schedule in billing.all("billing_schedules", status="active"):
        schedule_id = str(schedule["id"])
        lines: list[dict[str, Any]] = []
        if schedule["billing_model"] == "retainer":
            billed = len(billing.all("invoices", billing_schedule_id=schedule_id))
            if schedule["start_date"] <= day.isoformat() and billed < (
                schedule["term_months"] or 0
            ):
                fee = Decimal(schedule["monthly_fee"])
                lines.append(_line(None, "Monthly retainer", Decimal(1), fee))
        else:
            lines = _charge_lines(cast, schedule, day)
        if not lines:
            continue
        po_number = schedule.get("po_number")
        if lines and faults.roll(faults.config.wrong_rate_rate):
            wrong = lines[0]
            right = Decimal(wrong["unit_price"])
            wrong["unit_price"] = str(money(right * Decimal("1.1")))
            wrong["amount"] = str(money(Decimal(wrong["quantity"]) * Decimal(wrong["unit_price"])))
            faults.record(
                "wrong_rate",
                billing_schedule_id=schedule_id,
                deal_id=schedule["deal_id"],
                invoice_date=day.isoformat(),
                expected_unit_price=str(right),
                invoiced_unit_price=wrong["unit_price"],
            )
        if po_number and faults.roll(faults.config.missing_po_rate):
            faults.record(
                "missing_po",
                billing_schedule_id=schedule_id,
                deal_id=schedule["deal_id"],
                invoice_date=day.isoformat(),
                expected_po=po_number,
            )
            po_number = None
        customer = schedule["customer_account_number"]
        if faults.roll(faults.config.unknown_customer_rate):
            faults.record(
                "unknown_customer",
                billing_schedule_id=schedule_id,
                deal_id=schedule["deal_id"],
                invoice_date=day.isoformat(),
                expected_customer=customer,
            )
            customer = UNKNOWN_CUSTOMER
        total = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
        invoice = billing.create(
            "invoices",
            {
                "invoice_number": f"{cast.firm.entity(_entity_of(cast, schedule)).code}-"
                f"{day:%Y%m}-{billing.store.next_number('invoice_numbers'):05d}",
                "billing_schedule_id": schedule_id,
                "deal_id": schedule["deal_id"],
                "customer_account_number": customer,
                "currency": schedule["currency"],
                "invoice_date": day.isoformat(),
                "due_date": (
                    day + dt.timedelta(days=int(schedule["payment_terms_days"]))
                ).isoformat(),
                "status": "posted",
                "amount": str(money(total)),
                "balance": str(money(total)),
                "po_number": po_number,
                "lines": lines,
            },
        )
        for line in lines:
            if line["charge_id"] is not None:
                billing.update(
                    "charges",
                    line["charge_id"],
                    {"status": "invoiced", "invoice_id": invoice["id"]},
                )


def _entity_of(cast: Cast, schedule: Record) -> str:
    deal = cast.deal_of_opportunity(schedule.get("deal_id"))
    return deal.entity if deal else cast.firm.entities[0].code


def _line(
    charge_id: str | None, description: str, quantity: Decimal, price: Decimal
) -> dict[str, Any]:
    return {
        "charge_id": charge_id,
        "description": description,
        "quantity": str(quantity),
        "unit_price": str(money(price)),
        "amount": str(money(quantity * price)),
    }


def _charge_lines(cast: Cast, schedule: Record, day: dt.date) -> list[dict[str, Any]]:
    """Pending charges filed before the run day, within the schedule's cap."""
    billing = cast.services["billing"]
    schedule_id = str(schedule["id"])
    cap = Decimal(schedule["cap_amount"]) if schedule.get("cap_amount") else None
    billed = sum(
        (Decimal(i["amount"]) for i in billing.all("invoices", billing_schedule_id=schedule_id)),
        Decimal(0),
    )
    lines = []
    for charge in billing.all("charges", billing_schedule_id=schedule_id, status="pending"):
        if charge["created_at"] >= dt.datetime.combine(day, dt.time(), dt.UTC).isoformat():
            continue
        line = _line(
            str(charge["id"]),
            str(charge["description"]),
            Decimal(charge["quantity"]),
            Decimal(charge["unit_price"]),
        )
        if cap is not None and billed + Decimal(line["amount"]) > cap:
            continue
        billed += Decimal(line["amount"])
        lines.append(line)
    return lines


# --- ERP: customers paying ------------------------------------------------------------------


def customers_act(cast: Cast, day: dt.date) -> None:
    """Customers pay their receivables on their habits' days; some dispute first."""
    erp = cast.services["erp"]
    for status in ("open", "partially_paid", "disputed"):
        for posting in erp.all("ar_postings", status=status):
            customer = erp.get("customers", str(posting["entity"]["id"]))
            account_key = (
                cast.state.account_for_crm_id(str(customer["externalId"])) if customer else None
            )
            account = cast.firm.account(account_key) if account_key else None
            issued = dt.date.fromisoformat(posting["tranDate"])
            amount = money(Decimal(str(posting["amount"])))
            plan = behaviour.payment_plan(cast.seed, account, issued, amount)
            posting_id = str(posting["id"])
            if plan.disputed_on and day >= plan.disputed_on and not posting.get("disputedOn"):
                posting = erp.update(
                    "ar_postings", posting_id, {"status": "disputed", "disputedOn": day.isoformat()}
                )
            made = len(erp.store.find("payments", {"$.arPosting.id": posting_id}))
            remaining = Decimal(str(posting["amountRemaining"]))
            for when, part in plan.installments[made:]:
                if when > day:
                    break
                erp.create(
                    "payments",
                    {
                        "customer": {"id": posting["entity"]["id"]},
                        "arPosting": {"id": posting_id},
                        "invoiceExternalId": posting["externalId"],
                        "custbody_deal_id": posting.get("custbody_deal_id"),
                        "tranDate": day.isoformat(),
                        "amount": float(part),
                        "currency": posting["currency"],
                    },
                )
                remaining -= part
                erp.update(
                    "ar_postings",
                    posting_id,
                    {
                        "amountRemaining": float(money(remaining)),
                        "status": "paid" if remaining <= 0 else "partially_paid",
                    },
                )
