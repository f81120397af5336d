"""ERP, shaped like NetSuite's REST records: customers, AR postings (receivables) and
payments; reference objects (`{"id": ...}`), `externalId`, `custbody_` custom fields,
limit / offset pages, OAuth2 client credentials, `o:errorDetails` errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sandbox.pagination import OffsetPaginator
from sandbox.records import Record
from sandbox.service import Change, Resource, SystemSpec

API = "/services/rest/record/v1"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Ref(_Body):
    id: str


class NamedRef(_Body):
    refName: str


class CustomerIn(_Body):
    companyName: str = Field(min_length=1)
    externalId: str = Field(description="the CRM account id")
    subsidiary: Ref
    currency: NamedRef
    terms: NamedRef = NamedRef(refName="Net 30")
    email: str | None = None
    parent: Ref | None = None


class ArPostingIn(_Body):
    externalId: str = Field(description="the billing invoice id")
    entity: Ref
    tranDate: dt.date
    dueDate: dt.date
    currency: NamedRef
    amount: float = Field(gt=0)
    otherRefNum: str | None = Field(default=None, description="the customer's PO")
    memo: str | None = None
    custbody_deal_id: str | None = None


class ErpSpec(SystemSpec):
    system = "erp"
    title = "ERP (NetSuite-like)"
    paginator = OffsetPaginator()
    resources = (
        Resource(
            "customers",
            f"{API}/customers",
            create=CustomerIn,
            filters={"externalId": "$.externalId", "subsidiary": "$.subsidiary.id"},
            since_param="lastModifiedDate",
            references={"parent.id": "customers"},
        ),
        Resource(
            "ar_postings",
            f"{API}/ar_postings",
            create=ArPostingIn,
            filters={
                "externalId": "$.externalId",
                "entity": "$.entity.id",
                "status": "$.status",
            },
            since_param="lastModifiedDate",
            references={"entity.id": "customers"},
        ),
        Resource(
            "payments",
            f"{API}/payments",
            filters={"customer": "$.customer.id", "arPosting": "$.arPosting.id"},
            since_param="lastModifiedDate",
        ),
    )
    drift: ClassVar[Mapping[str, Mapping[str, str]]] = {"ar_postings": {"tranDate": "trandate"}}

    def new_id(self, resource: Resource, number: int) -> str:
        base = {"customers": 1000, "ar_postings": 50000, "payments": 90000}[resource.name]
        return str(base + number)

    def new_record(
        self, resource: Resource, record_id: str, body: dict[str, Any], now: dt.datetime
    ) -> Record:
        stamp = now.isoformat()
        record: Record = {
            "id": record_id,
            **body,
            "dateCreated": stamp,
            "lastModifiedDate": stamp,
        }
        if resource.name == "ar_postings":
            record.setdefault("status", "open")
            record.setdefault("amountRemaining", body["amount"])
        elif resource.name == "customers":
            record.setdefault("isInactive", False)
        return record

    def apply_update(
        self, resource: Resource, record: Record, changes: dict[str, Any], now: dt.datetime
    ) -> Record:
        return {**record, **changes, "lastModifiedDate": now.isoformat()}

    def changes(self, resource: Resource, before: Record | None, after: Record) -> list[Change]:
        kind = {"customers": "customer", "ar_postings": "arposting", "payments": "payment"}
        action = "create" if before is None else "update"
        events = [Change(f"com.erp.{kind[resource.name]}.{action}", str(after["id"]), after)]
        if resource.name == "customers" and before is None:
            events.append(
                Change(
                    "q2c.customer_provisioned", str(after["id"]), {"account": after["externalId"]}
                )
            )
        if resource.name == "ar_postings":
            data = {
                "deal_id": after.get("custbody_deal_id"),
                "amount": after["amount"],
                "currency": after["currency"]["refName"],
            }
            if before is None:
                events.append(Change("q2c.posted", str(after["externalId"]), data))
            if after["status"] == "disputed" and before and before["status"] != "disputed":
                events.append(Change("q2c.disputed", str(after["externalId"]), data))
        if resource.name == "payments" and before is None:
            events.append(
                Change(
                    "q2c.paid",
                    str(after.get("invoiceExternalId") or after["id"]),
                    {
                        "deal_id": after.get("custbody_deal_id"),
                        "amount": after["amount"],
                        "currency": after["currency"]["refName"],
                    },
                )
            )
        return events

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {
            "type": "https://www.rfc-editor.org/rfc/rfc9110.html",
            "title": code.replace("_", " ").title(),
            "status": status,
            "o:errorDetails": [{"detail": message, "o:errorCode": code}],
        }
