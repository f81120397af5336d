"""REST API for approval checkpoints: list them (scope `read`), approve or reject them
(scope `approve`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from collector.auth import TokenVerifier
from collector.deals_api import scope_guard
from connectors.approvals import DecisionError, decide, list_approvals
from store.states import ApprovalState


class DecisionBody(BaseModel):
    ids: list[int] = Field(min_length=1, description="approval ids")
    decision: Literal["approve", "reject"]
    actor: str = Field(min_length=1, description="who decides: audited")
    note: str | None = Field(default=None, description="why (required to reject)")


def build_approvals_router(
    engine: Engine,
    verifier: TokenVerifier,
    token_required: bool,
    read_guard: Callable[[Request], None],
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> APIRouter:
    require_approve = scope_guard(
        verifier, token_required, "approve", "deciding approvals needs a token with scope approve"
    )
    router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])

    @router.get(
        "",
        summary="Approval checkpoints, the longest waiting first",
        dependencies=[Depends(read_guard)],
    )
    def list_all(
        state: ApprovalState | Literal["all"] = ApprovalState.OPEN,
        limit: int = Query(50, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> dict[str, Any]:
        wanted = None if state == "all" else ApprovalState(state)
        rows, total = list_approvals(engine, wanted, limit=limit, offset=offset)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "approvals": [r.as_json() for r in rows],
        }

    @router.post(
        "/decisions",
        summary="Approve or reject approvals, all or none",
        dependencies=[Depends(require_approve)],
    )
    def decide_all(body: DecisionBody) -> dict[str, Any]:
        if body.decision == "reject" and not (body.note or "").strip():
            raise HTTPException(422, "note: say why the approval is rejected")
        try:
            decisions = decide(
                engine,
                body.ids,
                approve=body.decision == "approve",
                actor=body.actor,
                note=body.note,
                now=now(),
            )
        except DecisionError as exc:
            raise HTTPException(409, f"nothing decided: {exc}") from None
        return {
            "decisions": [
                {"id": d.approval_id, "state": d.state.value, "message_id": d.message_id}
                for d in decisions
            ]
        }

    return router
