"""CRM, shaped like Salesforce: camelCase fields, 15-character ids with a key prefix,
cursor pages, OAuth2 client credentials, errors as a list of `errorCode`s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.pagination import CursorPaginator
from sandbox.records import Record
from sandbox.service import Change, Resource, SystemSpec, singular

API = "/services/data/v59.0"
OPEN_STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation")
WON, LOST = "Closed Won", "Closed Lost"
StageName = Literal[
    "Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(_Body):
    name: str = Field(min_length=1)
    parentId: str | None = None
    industry: str | None = None
    billingCountry: str | None = None
    currencyIsoCode: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    legalEntity: str | None = None
    ownerName: str | None = None


class AccountChange(_Body):
    name: str | None = None
    industry: str | None = None
    cashStatus: Literal["current", "paid", "overdue", "disputed"] | None = None


class OpportunityIn(_Body):
    name: str = Field(min_length=1)
    accountId: str
    amount: float = Field(ge=0)
    currencyIsoCode: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    stageName: StageName = "Prospecting"
    closeDate: dt.date
    practice: str | None = None
    billingModel: Literal["T&M", "Fixed Fee", "Retainer"] | None = None
    ownerName: str | None = None


class OpportunityChange(_Body):
    stageName: StageName | None = None
    amount: float | None = Field(default=None, ge=0)
    closeDate: dt.date | None = None


class CrmSpec(SystemSpec):
    system = "crm"
    title = "CRM (Salesforce-like)"
    paginator = CursorPaginator()
    resources = (
        Resource(
            "accounts",
            f"{API}/accounts",
            create=AccountIn,
            update=AccountChange,
            filters={"parentId": "$.parentId", "legalEntity": "$.legalEntity"},
            since_param="modifiedSince",
            references={"parentId": "accounts"},
        ),
        Resource(
            "opportunities",
            f"{API}/opportunities",
            create=OpportunityIn,
            update=OpportunityChange,
            filters={
                "stageName": "$.stageName",
                "accountId": "$.accountId",
                "isWon": "$.isWon",
            },
            since_param="modifiedSince",
            references={"accountId": "accounts"},
        ),
    )
    drift: ClassVar[Mapping[str, Mapping[str, str]]] = {"opportunities": {"amount": "totalAmount"}}

    def new_id(self, resource: Resource, number: int) -> str:
        prefix = "001" if resource.name == "accounts" else "006"
        return f"{prefix}5g{number:010d}"

    def new_record(
        self, resource: Resource, record_id: str, body: dict[str, Any], now: dt.datetime
    ) -> Record:
        stamp = now.isoformat()
        record: Record = {"id": record_id, **body, "createdDate": stamp, "lastModifiedDate": stamp}
        if resource.name == "accounts":
            record["cashStatus"] = "current"
        else:
            record.update(_closed_flags(str(record["stageName"])))
        return record

    def apply_update(
        self, resource: Resource, record: Record, changes: dict[str, Any], now: dt.datetime
    ) -> Record:
        updated = {**record, **changes, "lastModifiedDate": now.isoformat()}
        if resource.name == "opportunities":
            updated.update(_closed_flags(str(updated["stageName"])))
        return updated

    def changes(self, resource: Resource, before: Record | None, after: Record) -> list[Change]:
        action = "created" if before is None else "updated"
        events = [Change(f"com.crm.{singular(resource.name)}.{action}", str(after["id"]), after)]
        was_won = before is not None and before.get("stageName") == WON
        if resource.name == "opportunities" and after["stageName"] == WON and not was_won:
            events.append(
                Change(
                    "q2c.closed_won",
                    str(after["id"]),
                    {
                        "deal_id": after["id"],
                        "amount": after["amount"],
                        "currency": after["currencyIsoCode"],
                        "account_id": after["accountId"],
                    },
                )
            )
        return events

    def error_body(self, status: int, code: str, message: str) -> Any:
        return [{"errorCode": code, "message": message}]


def _closed_flags(stage: str) -> dict[str, Any]:
    return {"isClosed": stage in (WON, LOST), "isWon": stage == WON}
