"""Billing, shaped like Zuora / Chargebee: snake_case, decimal strings for money,
billing schedules, charges (billable events), invoices from bill runs, credit notes,
page / per_page, an API key, errors as `reasons`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.pagination import PagePaginator
from sandbox.records import Record
from sandbox.service import Change, Resource, SystemSpec, singular

API = "/v1"
Amount = Decimal


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateLine(_Body):
    role: str
    unit_price: Amount = Field(ge=0, decimal_places=2)


class ScheduleIn(_Body):
    contract_number: str = Field(description="the CLM agreement id")
    deal_id: str = Field(description="the CRM opportunity id")
    customer_account_number: str = Field(description="the ERP customer id")
    bill_to_name: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    billing_model: Literal["time_and_materials", "milestone", "retainer"]
    rate_card: list[RateLine] = Field(default_factory=list)
    cap_amount: Amount | None = Field(default=None, ge=0, decimal_places=2)
    po_number: str | None = None
    monthly_fee: Amount | None = Field(default=None, ge=0, decimal_places=2)
    term_months: int | None = Field(default=None, ge=1)
    start_date: dt.date
    payment_terms_days: int = Field(default=30, ge=0, le=120)


class ScheduleChange(_Body):
    status: Literal["active", "cancelled"] | None = None
    rate_card: list[RateLine] | None = None
    cap_amount: Amount | None = Field(default=None, ge=0, decimal_places=2)
    term_months: int | None = Field(default=None, ge=1)


class ChargeIn(_Body):
    billing_schedule_id: str
    source_reference: str = Field(description="the PSA time entry or milestone id")
    description: str
    service_date: dt.date
    quantity: Amount = Field(gt=0, decimal_places=2)
    unit_price: Amount = Field(ge=0, decimal_places=2)
    role: str | None = None


class CreditNoteIn(_Body):
    invoice_id: str
    amount: Amount = Field(gt=0, decimal_places=2)
    reason: str


class BillingSpec(SystemSpec):
    system = "billing"
    title = "Billing (Zuora-like)"
    paginator = PagePaginator()
    resources = (
        Resource(
            "billing_schedules",
            f"{API}/billing_schedules",
            create=ScheduleIn,
            update=ScheduleChange,
            filters={"deal_id": "$.deal_id", "contract_number": "$.contract_number"},
        ),
        Resource(
            "charges",
            f"{API}/charges",
            create=ChargeIn,
            filters={
                "billing_schedule_id": "$.billing_schedule_id",
                "status": "$.status",
                "source_reference": "$.source_reference",
            },
            references={"billing_schedule_id": "billing_schedules"},
        ),
        Resource(
            "invoices",
            f"{API}/invoices",
            filters={
                "billing_schedule_id": "$.billing_schedule_id",
                "deal_id": "$.deal_id",
                "status": "$.status",
            },
        ),
        Resource(
            "credit_notes",
            f"{API}/credit_notes",
            create=CreditNoteIn,
            filters={"invoice_id": "$.invoice_id"},
            references={"invoice_id": "invoices"},
        ),
    )
    drift: ClassVar[Mapping[str, Mapping[str, str]]] = {"invoices": {"amount": "amount_total"}}

    def new_id(self, resource: Resource, number: int) -> str:
        prefix = {
            "billing_schedules": "BS",
            "charges": "CHG",
            "invoices": "INV",
            "credit_notes": "CN",
        }[resource.name]
        return f"{prefix}{number:08d}"

    def new_record(
        self, resource: Resource, record_id: str, body: dict[str, Any], now: dt.datetime
    ) -> Record:
        stamp = now.isoformat()
        record: Record = {"id": record_id, **body, "created_at": stamp, "updated_at": stamp}
        if resource.name == "billing_schedules":
            record.setdefault("status", "active")
        elif resource.name == "charges":
            quantity, price = Decimal(body["quantity"]), Decimal(body["unit_price"])
            record.setdefault("amount", str((quantity * price).quantize(Decimal("0.01"))))
            record.setdefault("status", "pending")
            record.setdefault("invoice_id", None)
        elif resource.name == "credit_notes":
            record.setdefault("status", "issued")
        return record

    def apply_update(
        self, resource: Resource, record: Record, changes: dict[str, Any], now: dt.datetime
    ) -> Record:
        return {**record, **changes, "updated_at": now.isoformat()}

    def changes(self, resource: Resource, before: Record | None, after: Record) -> list[Change]:
        kind = singular(resource.name)
        action = "created" if before is None else "updated"
        events = [Change(f"com.billing.{kind}.{action}", str(after["id"]), after)]
        if resource.name == "invoices" and before is None:
            events.append(
                Change(
                    "q2c.invoiced",
                    str(after["id"]),
                    {
                        "deal_id": after["deal_id"],
                        "amount": float(after["amount"]),
                        "currency": after["currency"],
                    },
                )
            )
        if resource.name == "credit_notes" and before is None:
            events.append(
                Change(
                    "q2c.credited",
                    str(after["invoice_id"]),
                    {"amount": float(after["amount"]), "reason": after["reason"]},
                )
            )
        return events

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"success": False, "reasons": [{"code": code, "message": message}]}
