"""The ground truth: what each system should hold on a given day if every sync were
perfect and immediate, worked out from the script and the behaviour functions alone
(never from what the systems hold), plus the firm-level figures tests check."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from sandbox import behaviour
from sandbox.scenario import DealPlan, Firm, money
from sandbox.world_state import WorldState


def _deal_id(state: WorldState, deal: DealPlan) -> str:
    return state.opportunity_ids.get(deal.key, deal.key)


def expected(firm: Firm, state: WorldState, as_of: dt.date) -> dict[str, dict[str, Any]]:
    """Per system, the records it should hold at the end of `as_of`."""
    seed = firm.seed
    out: dict[str, dict[str, list[dict[str, Any]]]] = {
        "crm": {"opportunities": []},
        "clm": {"agreements": []},
        "psa": {"projects": [], "time_entries": [], "milestones": []},
        "billing": {"schedules": [], "invoices": []},
        "erp": {"customers": [], "ar_postings": [], "payments": []},
    }
    customers: set[str] = set()
    for deal in firm.deals:
        if deal.created_on > as_of or deal.close_on < firm.start:
            continue
        closed = as_of >= deal.close_on
        stage = ("Closed Won" if deal.won else "Closed Lost") if closed else "open"
        deal_id = _deal_id(state, deal)
        out["crm"]["opportunities"].append(
            {
                "deal_id": deal_id,
                "deal_key": deal.key,
                "stage": stage,
                "amount": str(deal.amount),
                "currency": deal.currency,
                "close_date": deal.close_on.isoformat(),
            }
        )
        if not (deal.won and closed):
            continue
        executed = deal.executed_on <= as_of
        amended_on = behaviour.amendment_day(deal)
        out["clm"]["agreements"].append(
            {
                "deal_id": deal_id,
                "status": "executed" if executed else "requested",
                "executed_on": deal.executed_on.isoformat() if executed else None,
                "billing_model": deal.billing_model,
                "total_value": str(deal.amount),
                "currency": deal.currency,
                "cap": str(deal.cap) if deal.cap is not None else None,
                "po_number": deal.po_number,
                "milestones": len(deal.milestones),
                "amended_on": amended_on.isoformat()
                if amended_on and executed and amended_on <= as_of
                else None,
            }
        )
        if not executed:
            continue
        if deal.account_key not in customers:
            customers.add(deal.account_key)
            out["erp"]["customers"].append(
                {
                    "account_key": deal.account_key,
                    "crm_account_id": state.account_ids.get(deal.account_key),
                }
            )
        out["psa"]["projects"].append(
            {
                "deal_id": deal_id,
                "start_date": deal.project_start.isoformat(),
                "consultants": [a.consultant_key for a in deal.staffing],
            }
        )
        out["billing"]["schedules"].append(
            {"deal_id": deal_id, "billing_model": deal.billing_model, "currency": deal.currency}
        )
        charges = _deal_charges(seed, deal, deal_id, as_of, out["psa"])
        for invoice in _invoices(deal, deal_id, charges, as_of):
            out["billing"]["invoices"].append(invoice)
            out["erp"]["ar_postings"].append(
                {k: invoice[k] for k in ("deal_id", "invoice_date", "amount", "currency")}
            )
            plan = behaviour.payment_plan(
                seed,
                firm.account(deal.account_key),
                dt.date.fromisoformat(invoice["invoice_date"]),
                Decimal(invoice["amount"]),
            )
            invoice["expected_paid_on"] = plan.paid_in_full_on.isoformat()
            invoice["disputed_on"] = plan.disputed_on.isoformat() if plan.disputed_on else None
            for when, part in plan.installments:
                if when <= as_of:
                    out["erp"]["payments"].append(
                        {
                            "deal_id": deal_id,
                            "invoice_date": invoice["invoice_date"],
                            "paid_on": when.isoformat(),
                            "amount": str(part),
                            "currency": deal.currency,
                        }
                    )
    return {system: dict(records) for system, records in out.items()}


def _deal_charges(
    seed: int, deal: DealPlan, deal_id: str, as_of: dt.date, psa: dict[str, list[dict[str, Any]]]
) -> list[tuple[dt.date, Decimal]]:
    """(approved on, amount) of the deal's billable items up to `as_of`; the time entries
    and milestones are recorded under `psa` on the way."""
    charges: list[tuple[dt.date, Decimal]] = []
    for week in behaviour.delivery_weeks(deal):
        submitted = behaviour.timesheet_day(week)
        if submitted > as_of:
            break
        approved = behaviour.approval_day(submitted)
        for a in deal.staffing:
            hours = behaviour.logged_hours(seed, deal, a.consultant_key, week)
            psa["time_entries"].append(
                {
                    "deal_id": deal_id,
                    "consultant": a.consultant_key,
                    "week": week.isoformat(),
                    "hours": hours,
                    "approved_on": approved.isoformat() if approved <= as_of else None,
                }
            )
            if deal.billing_model == "time_and_materials" and approved <= as_of:
                amount = money(Decimal(str(hours)) * deal.rate(a.role))
                charges.append((approved, amount))
    for milestone in deal.milestones:
        due = behaviour.milestone_due(deal, milestone.due_week)
        approved = behaviour.milestone_approved_on(seed, deal, milestone.key, due)
        if approved <= as_of:
            psa["milestones"].append(
                {
                    "deal_id": deal_id,
                    "milestone": milestone.key,
                    "approved_on": approved.isoformat(),
                }
            )
            charges.append((approved, milestone.amount))
    return charges


def _invoices(
    deal: DealPlan, deal_id: str, charges: list[tuple[dt.date, Decimal]], as_of: dt.date
) -> list[dict[str, Any]]:
    invoices: list[dict[str, Any]] = []
    amended_on = behaviour.amendment_day(deal)
    billed = Decimal(0)
    pending = sorted(charges, key=lambda c: c[0])
    months = deal.term_months or 0
    for run in behaviour.billing_runs(deal.executed_on + dt.timedelta(days=1), as_of):
        amended = amended_on is not None and deal.amendment is not None and amended_on < run
        amount = Decimal(0)
        if deal.billing_model == "retainer":
            term = months + (deal.amendment.extra_months or 0 if amended and deal.amendment else 0)
            if deal.project_start <= run and len(invoices) < term:
                amount = deal.monthly_fee or Decimal(0)
        else:
            cap = deal.cap
            if cap is not None and amended and deal.amendment and deal.amendment.cap_factor:
                cap = money(cap * deal.amendment.cap_factor)
            kept = []
            for approved, value in pending:
                if approved >= run or (cap is not None and billed + amount + value > cap):
                    kept.append((approved, value))
                    continue
                amount += value
            pending = kept
        if amount > 0:
            billed += amount
            invoices.append(
                {
                    "deal_id": deal_id,
                    "invoice_date": run.isoformat(),
                    "amount": str(money(amount)),
                    "currency": deal.currency,
                    "po_number": deal.po_number,
                }
            )
    return invoices


def firm_figures(firm: Firm, truth: dict[str, dict[str, Any]], as_of: dt.date) -> dict[str, Any]:
    """What an executive would ask of the quarter: deals won, their sizes and contract
    mix, hours per consultant per week, and DSO."""
    window_start = firm.start
    won = [
        firm.deal(o["deal_key"])
        for o in truth["crm"]["opportunities"]
        if o["stage"] == "Closed Won" and o["close_date"] >= window_start.isoformat()
    ]
    lost = [o for o in truth["crm"]["opportunities"] if o["stage"] == "Closed Lost"]
    weekly: dict[tuple[str, str], float] = defaultdict(float)
    for entry in truth["psa"]["time_entries"]:
        weekly[(entry["consultant"], entry["week"])] += entry["hours"]
    invoices = [
        i for i in truth["billing"]["invoices"] if i["invoice_date"] >= window_start.isoformat()
    ]
    fx = {"USD": Decimal("1"), "GBP": Decimal("1.27"), "EUR": Decimal("1.08")}
    weighted = sum(
        (
            Decimal(i["amount"])
            * fx[i["currency"]]
            * (
                dt.date.fromisoformat(i["expected_paid_on"])
                - dt.date.fromisoformat(i["invoice_date"])
            ).days
            for i in invoices
        ),
        Decimal(0),
    )
    invoiced = sum((Decimal(i["amount"]) * fx[i["currency"]] for i in invoices), Decimal(0))
    paid: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for p in truth["erp"]["payments"]:
        paid[(p["deal_id"], p["invoice_date"])] += Decimal(p["amount"])
    open_ar = sum(
        (
            (Decimal(i["amount"]) - paid[(i["deal_id"], i["invoice_date"])]) * fx[i["currency"]]
            for i in truth["billing"]["invoices"]
        ),
        Decimal(0),
    )
    last_90 = [
        i
        for i in truth["billing"]["invoices"]
        if i["invoice_date"] > (as_of - dt.timedelta(days=90)).isoformat()
    ]
    revenue_90 = sum((Decimal(i["amount"]) * fx[i["currency"]] for i in last_90), Decimal(0))
    sizes = [float(d.amount * fx[d.currency]) for d in won]
    return {
        "as_of": as_of.isoformat(),
        "deals_won": len(won),
        "deals_lost": len(lost),
        "deal_size_usd": {
            "min": min(sizes, default=0.0),
            "median": statistics.median(sizes) if sizes else 0.0,
            "max": max(sizes, default=0.0),
        },
        "contract_mix": dict(Counter(d.billing_model for d in won)),
        "hours_per_consultant_week": {
            "consultant_weeks": len(weekly),
            "min": min(weekly.values(), default=0.0),
            "mean": statistics.fmean(weekly.values()) if weekly else 0.0,
            "max": max(weekly.values(), default=0.0),
        },
        "invoices": len(invoices),
        "invoiced_usd": float(invoiced),
        "days_to_pay_weighted": float(weighted / invoiced) if invoiced else None,
        "dso_days": float(open_ar / revenue_90 * 90) if revenue_90 else None,
    }
