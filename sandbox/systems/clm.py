"""CLM, shaped like DocuSign CLM / Ironclad: agreements with nested terms and money
objects, amendments, page tokens, an API key, errors as a list of `detail`s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.pagination import PageTokenPaginator
from sandbox.records import Record
from sandbox.service import Change, Resource, SystemSpec

API = "/clm/v2"
BillingModel = Literal["time_and_materials", "fixed_fee_milestone", "retainer"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(_Body):
    amount: str = Field(pattern=r"^\d+(\.\d{1,2})?$")
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class SourceRef(_Body):
    system: Literal["crm"] = "crm"
    opportunity_id: str


class Counterparty(_Body):
    name: str
    crm_account_id: str | None = None


class AgreementRequest(_Body):
    """A contract request, as a connector files it for a closed-won deal."""

    title: str = Field(min_length=1)
    source_ref: SourceRef
    counterparty: Counterparty
    legal_entity: str
    practice: str | None = None
    estimated_value: Money


class AgreementChange(_Body):
    status: Literal["cancelled"]


class ClmSpec(SystemSpec):
    system = "clm"
    title = "CLM (DocuSign CLM-like)"
    paginator = PageTokenPaginator()
    resources = (
        Resource(
            "agreements",
            f"{API}/agreements",
            create=AgreementRequest,
            update=AgreementChange,
            filters={"status": "$.status", "opportunity_id": "$.source_ref.opportunity_id"},
            since_param="modified_after",
        ),
        Resource(
            "amendments",
            f"{API}/amendments",
            filters={"agreement_id": "$.agreement_id", "status": "$.status"},
            since_param="modified_after",
        ),
    )
    drift: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "agreements": {"legal_entity": "contracting_entity"}
    }

    def new_id(self, resource: Resource, number: int) -> str:
        return f"{'AGR' if resource.name == 'agreements' else 'AMD'}-{number:06d}"

    def new_record(
        self, resource: Resource, record_id: str, body: dict[str, Any], now: dt.datetime
    ) -> Record:
        stamp = now.isoformat()
        record: Record = {"id": record_id, **body, "created_at": stamp, "modified_at": stamp}
        if resource.name == "agreements":
            record.setdefault("status", "requested")
            record.setdefault("version", 1)
            record.setdefault("terms", None)
            record.setdefault("executed_at", None)
        return record

    def apply_update(
        self, resource: Resource, record: Record, changes: dict[str, Any], now: dt.datetime
    ) -> Record:
        return {**record, **changes, "modified_at": now.isoformat()}

    def changes(self, resource: Resource, before: Record | None, after: Record) -> list[Change]:
        if resource.name == "amendments":
            if after.get("status") == "executed" and (before or {}).get("status") != "executed":
                return [Change("com.clm.amendment.executed", str(after["id"]), after)]
            return []
        events = [Change(f"com.clm.agreement.{after['status']}", str(after["id"]), after)]
        newly_executed = after["status"] == "executed" and (before or {}).get("status") not in (
            "executed",
        )
        if newly_executed and after.get("terms"):
            value = after["terms"]["total_value"]
            events.append(
                Change(
                    "q2c.contract_executed",
                    str(after["id"]),
                    {
                        "deal_id": after["source_ref"]["opportunity_id"],
                        "amount": float(value["amount"]),
                        "currency": value["currency"],
                    },
                )
            )
        return events

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"errors": [{"status": str(status), "code": code, "detail": message}]}
