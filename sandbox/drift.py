"""Drift between the systems, injected on purpose: what a lost sync, a double post or a hand
edit in one system leaves behind, for the reconciliation probes to find. Each function
changes one system's records through its service (so webhooks fire as for any change),
only in that system, and says which records it touched.

These are test and demo tools: the firm's own actors never call them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandbox.records import Record
from sandbox.service import SystemService

Services = Mapping[str, SystemService]


@dataclass(frozen=True)
class Drift:
    """What was injected: its kind, the system it is in and the records involved."""

    kind: str
    system: str
    records: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def _one(service: SystemService, collection: str, **filters: Any) -> Record:
    found = service.all(collection, **filters)
    if not found:
        raise LookupError(f"{service.system}: no {collection} with {filters}")
    return found[0]


def post_invoice_twice(services: Services, invoice_id: str) -> Drift:
    """ERP: a second AR posting for an invoice already posted (a retry that was not
    idempotent)."""
    erp = services["erp"]
    first = _one(erp, "ar_postings", externalId=invoice_id)
    body: dict[str, Any] = {
        k: first[k]
        for k in (
            "externalId",
            "entity",
            "tranDate",
            "dueDate",
            "currency",
            "amount",
            "otherRefNum",
            "memo",
            "custbody_deal_id",
        )
        if k in first
    }
    second = erp.create("ar_postings", body)
    return Drift(
        "posted_twice",
        "erp",
        {"invoice_id": invoice_id, "posting_id": str(first["id"]), "second": str(second["id"])},
    )


def release_invoice_unposted(
    services: Services, schedule_id: str, amount: Decimal, on: dt.date | None = None
) -> Drift:
    """Billing: an invoice released outside the bill run (a one-off fee) that nothing
    carries to the ERP."""
    billing = services["billing"]
    schedule = billing.get("billing_schedules", schedule_id)
    if schedule is None:
        raise LookupError(f"billing: no schedule {schedule_id}")
    day = on or billing.sim_clock.now().date()
    total = str(amount.quantize(Decimal("0.01")))
    number = billing.store.next_number("invoice_numbers")
    invoice = billing.create(
        "invoices",
        {
            "invoice_number": f"ADHOC-{day:%Y%m%d}-{number:05d}",
            "billing_schedule_id": schedule_id,
            "deal_id": schedule["deal_id"],
            "customer_account_number": schedule["customer_account_number"],
            "currency": schedule["currency"],
            "invoice_date": day.isoformat(),
            "due_date": (day + dt.timedelta(days=int(schedule["payment_terms_days"]))).isoformat(),
            "status": "posted",
            "amount": total,
            "balance": total,
            "po_number": schedule.get("po_number"),
            "lines": [
                {
                    "charge_id": None,
                    "description": "Expenses",
                    "quantity": "1",
                    "unit_price": total,
                    "amount": total,
                }
            ],
        },
    )
    return Drift(
        "never_posted",
        "billing",
        {"invoice_id": str(invoice["id"]), "schedule_id": schedule_id},
        {"amount": total, "currency": schedule["currency"]},
    )


def change_posting_amount(services: Services, invoice_id: str, amount: Decimal) -> Drift:
    """ERP: the receivable of an invoice edited by hand to another amount."""
    erp = services["erp"]
    posting = _one(erp, "ar_postings", externalId=invoice_id)
    erp.update(
        "ar_postings",
        str(posting["id"]),
        {"amount": float(amount), "amountRemaining": float(amount)},
    )
    return Drift(
        "amount_mismatch",
        "erp",
        {"invoice_id": invoice_id, "posting_id": str(posting["id"])},
        {"was": posting["amount"], "now": float(amount)},
    )


def change_schedule_rate(
    services: Services, contract_id: str, role: str, unit_price: Decimal
) -> Drift:
    """Billing: a schedule's rate for one role edited away from the contract's rate card."""
    billing = services["billing"]
    schedule = _one(billing, "billing_schedules", contract_number=contract_id)
    card = [dict(line) for line in schedule.get("rate_card") or []]
    before = next(line["unit_price"] for line in card if line["role"] == role)
    for line in card:
        if line["role"] == role:
            line["unit_price"] = str(unit_price.quantize(Decimal("0.01")))
    billing.update("billing_schedules", str(schedule["id"]), {"rate_card": card})
    return Drift(
        "rate_mismatch",
        "billing",
        {"contract_id": contract_id, "schedule_id": str(schedule["id"])},
        {"role": role, "was": before, "now": str(unit_price)},
    )


def shrink_charge(services: Services, item_id: str, quantity: Decimal) -> Drift:
    """Billing: the charge for approved PSA time billed at fewer hours than approved."""
    billing = services["billing"]
    charge = _one(billing, "charges", source_reference=item_id)
    price = Decimal(str(charge["unit_price"]))
    billing.update(
        "charges",
        str(charge["id"]),
        {"quantity": str(quantity), "amount": str((quantity * price).quantize(Decimal("0.01")))},
    )
    return Drift(
        "quantity_mismatch",
        "billing",
        {"item_id": item_id, "charge_id": str(charge["id"])},
        {"was": charge["quantity"], "now": str(quantity)},
    )


def bill_item_twice(services: Services, item_id: str) -> Drift:
    """Billing: a second charge for the same approved PSA item (a billable sent twice)."""
    billing = services["billing"]
    first = _one(billing, "charges", source_reference=item_id)
    body: dict[str, Any] = {
        k: first[k]
        for k in (
            "billing_schedule_id",
            "source_reference",
            "description",
            "service_date",
            "quantity",
            "unit_price",
            "role",
        )
        if k in first
    }
    second = billing.create("charges", body)
    return Drift(
        "charge_duplicated",
        "billing",
        {"item_id": item_id, "charge_id": str(first["id"]), "second": str(second["id"])},
    )


def pay_unrecorded(services: Services, invoice_id: str, amount: Decimal) -> Drift:
    """ERP: a payment applied to a receivable that nothing carries on as cash collected."""
    erp = services["erp"]
    posting = _one(erp, "ar_postings", externalId=invoice_id)
    payment = erp.create(
        "payments",
        {
            "customer": {"id": posting["entity"]["id"]},
            "arPosting": {"id": str(posting["id"])},
            "invoiceExternalId": invoice_id,
            "custbody_deal_id": posting.get("custbody_deal_id"),
            "tranDate": erp.sim_clock.now().date().isoformat(),
            "amount": float(amount),
            "currency": posting["currency"],
        },
    )
    remaining = Decimal(str(posting["amountRemaining"])) - amount
    erp.update(
        "ar_postings",
        str(posting["id"]),
        {
            "amountRemaining": float(remaining),
            "status": "paid" if remaining <= 0 else "partially_paid",
        },
    )
    return Drift(
        "payment_not_recorded",
        "erp",
        {"invoice_id": invoice_id, "posting_id": str(posting["id"]), "payment_id": payment["id"]},
    )


def win_deal_unsynced(services: Services, account_id: str, amount: Decimal) -> Drift:
    """CRM: an opportunity won that never reaches CLM (its sync lost)."""
    crm = services["crm"]
    account = crm.get("accounts", account_id)
    if account is None:
        raise LookupError(f"crm: no account {account_id}")
    opportunity = crm.create(
        "opportunities",
        {
            "name": f"{account['name']} - unsynced",
            "accountId": account_id,
            "amount": float(amount),
            "currencyIsoCode": account["currencyIsoCode"],
            "stageName": "Closed Won",
            "closeDate": crm.sim_clock.now().date().isoformat(),
            "practice": None,
            "billingModel": "T&M",
            "ownerName": None,
        },
    )
    return Drift("contract_missing", "crm", {"deal_id": str(opportunity["id"])})


__all__ = [
    "Drift",
    "bill_item_twice",
    "change_posting_amount",
    "change_schedule_rate",
    "pay_unrecorded",
    "post_invoice_twice",
    "release_invoice_unposted",
    "shrink_charge",
    "win_deal_unsynced",
]
