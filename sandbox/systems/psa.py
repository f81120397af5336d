"""PSA, shaped like Kantata: workspaces, users, stories (milestones), assignments and
time entries; money in cents, time in minutes; Kantata's `results` + keyed-map envelope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.pagination import KantataPaginator
from sandbox.records import Record
from sandbox.service import Change, Resource, SystemSpec, singular

API = "/api/v1"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateIn(_Body):
    role: str
    rate_in_cents: int = Field(ge=0)


class WorkspaceIn(_Body):
    title: str = Field(min_length=1)
    external_reference: str = Field(description="the CLM agreement id")
    deal_reference: str = Field(description="the CRM opportunity id")
    entity: str
    practice: str
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    billing_mode: Literal["time_and_materials", "fixed_fee", "retainer"]
    price_in_cents: int = Field(ge=0)
    start_date: dt.date
    due_date: dt.date | None = None
    rate_card: list[RateIn] = Field(default_factory=list)


class WorkspaceChange(_Body):
    status: Literal["active", "closed"] | None = None
    rate_card: list[RateIn] | None = None
    price_in_cents: int | None = Field(default=None, ge=0)
    due_date: dt.date | None = None


class StoryIn(_Body):
    workspace_id: str
    title: str = Field(min_length=1)
    story_type: Literal["milestone", "task"] = "milestone"
    due_date: dt.date
    price_in_cents: int = Field(default=0, ge=0)
    external_reference: str | None = Field(default=None, description="the CLM milestone id")


class TimeEntryIn(_Body):
    workspace_id: str
    user_id: str
    date_performed: dt.date
    time_in_minutes: int = Field(gt=0, le=7 * 24 * 60)
    billable: bool = True
    notes: str | None = None


class PsaSpec(SystemSpec):
    system = "psa"
    title = "PSA (Kantata-like)"
    paginator = KantataPaginator()
    resources = (
        Resource(
            "workspaces",
            f"{API}/workspaces",
            create=WorkspaceIn,
            update=WorkspaceChange,
            filters={
                "external_reference": "$.external_reference",
                "deal_reference": "$.deal_reference",
                "status": "$.status",
            },
            since_param="updated_after",
        ),
        Resource("users", f"{API}/users", filters={"practice": "$.practice"}),
        Resource(
            "stories",
            f"{API}/stories",
            create=StoryIn,
            filters={"workspace_id": "$.workspace_id", "state": "$.state"},
            since_param="updated_after",
            references={"workspace_id": "workspaces"},
        ),
        Resource(
            "assignments",
            f"{API}/assignments",
            filters={"workspace_id": "$.workspace_id", "user_id": "$.user_id"},
            since_param="updated_after",
        ),
        Resource(
            "time_entries",
            f"{API}/time_entries",
            create=TimeEntryIn,
            filters={
                "workspace_id": "$.workspace_id",
                "user_id": "$.user_id",
                "approved": "$.approved",
            },
            since_param="updated_after",
            references={"workspace_id": "workspaces", "user_id": "users"},
        ),
    )
    drift: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "time_entries": {"time_in_minutes": "minutes"}
    }

    def new_id(self, resource: Resource, number: int) -> str:
        base = {"workspaces": 4, "users": 1, "stories": 7, "assignments": 3, "time_entries": 9}
        return str(base[resource.name] * 10_000_000 + number)

    def new_record(
        self, resource: Resource, record_id: str, body: dict[str, Any], now: dt.datetime
    ) -> Record:
        stamp = now.isoformat()
        record: Record = {"id": record_id, **body, "created_at": stamp, "updated_at": stamp}
        defaults: dict[str, dict[str, Any]] = {
            "workspaces": {"status": "active"},
            "stories": {"state": "not started", "approved_at": None},
            "time_entries": {"approved": False, "approved_at": None},
        }
        for key, value in defaults.get(resource.name, {}).items():
            record.setdefault(key, value)
        return record

    def apply_update(
        self, resource: Resource, record: Record, changes: dict[str, Any], now: dt.datetime
    ) -> Record:
        return {**record, **changes, "updated_at": now.isoformat()}

    def changes(self, resource: Resource, before: Record | None, after: Record) -> list[Change]:
        kind = singular(resource.name)
        action = "created" if before is None else "updated"
        events = [Change(f"com.psa.{kind}.{action}", str(after["id"]), after)]
        if resource.name == "workspaces" and before is None:
            events.append(
                Change(
                    "q2c.project_activated",
                    str(after["id"]),
                    {
                        "deal_id": after["deal_reference"],
                        "amount": after["price_in_cents"] / 100,
                        "currency": after["currency"],
                    },
                )
            )
        approved_now = (
            resource.name == "time_entries"
            and after.get("approved")
            and not (before or {}).get("approved")
        ) or (
            resource.name == "stories"
            and after.get("state") == "approved"
            and (before or {}).get("state") != "approved"
        )
        if approved_now:
            events.append(
                Change(
                    "q2c.billable_approved",
                    str(after["id"]),
                    {
                        "deal_id": after.get("deal_reference"),
                        "amount": after.get("billable_amount_in_cents", 0) / 100,
                        "currency": after.get("currency"),
                        "workspace_id": after["workspace_id"],
                    },
                )
            )
        return events

    def error_body(self, status: int, code: str, message: str) -> Any:
        return {"errors": [{"type": "error", "message": message}]}
