"""PSA users become our `consultants` (id = the PSA user id that time entries carry as
`user_id`, so approved hours join to the capacity they are measured against: utilization).

The PSA (Kantata-like) pages users with `page` / `per_page` and answers `updated_since`;
each changed user is one `capture` step keyed by its id and change time, whose handler
writes the row into the store (an upsert: a repeated step, a replay or a re-read page
changes nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from connectors.errors import FatalError
from connectors.flows.base import FlowContext, Planned, Stream, parse_time
from connectors.outbox import ClaimedMessage, Step
from connectors.worker import StepResult
from store.objects import Consultant
from store.states import System

FLOW = "consultants"


def consultant_row(user: dict[str, Any], fallback: dt.datetime) -> dict[str, Any]:
    """Our `consultants` row for a PSA user (capacity from minutes to hours)."""
    minutes = user.get("weekly_capacity_minutes")
    hours = (Decimal(str(minutes or 0)) / 60).quantize(Decimal("0.01"))
    created = parse_time(user.get("created_at"), fallback)
    return {
        "id": str(user["id"]),
        "name": user.get("full_name"),
        "email": user.get("email_address"),
        "role": user.get("headline"),
        "practice": user.get("practice"),
        "legal_entity": user.get("entity"),
        "weekly_capacity_hours": hours,
        "created_at": created,
        "updated_at": parse_time(user.get("updated_at"), created),
    }


def _plan(user: dict[str, Any]) -> Iterator[Planned]:
    user_id = str(user["id"])
    changed = str(user.get("updated_at") or user.get("created_at") or "")
    yield Planned(
        Step(FLOW, "capture", System.PSA, f"{FLOW}.capture:{user_id}:{changed}", {"user": user})
    )


def streams(context: FlowContext) -> list[Stream]:
    return [Stream("psa.users", System.PSA, "users", {}, _plan)]


class NoStore(FatalError):
    error_class = "no_store"


def capture(context: FlowContext, message: ClaimedMessage) -> StepResult:
    """Upsert the user as a consultant; an older change never overwrites a newer one."""
    if context.store is None:
        raise NoStore("the flow context has no store to write consultants into")
    row = consultant_row(message.payload["user"], context.clock())
    changes = {k: v for k, v in row.items() if k not in ("id", "created_at")}
    with context.store.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(Consultant).values(**row)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["id"],
                set_=changes,
                where=Consultant.updated_at <= row["updated_at"],
            )
        )
    return StepResult(
        {
            "consultant_id": row["id"],
            "weekly_capacity_hours": str(row["weekly_capacity_hours"]),
        }
    )


def handlers(context: FlowContext) -> dict[tuple[str, str], Any]:
    return {(FLOW, "capture"): lambda m: capture(context, m)}
