"""REST API for dead letters: list them by filter, and replay them (scope `replay`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from collector.auth import TokenVerifier
from collector.deals_api import scope_guard
from connectors.dead_letters import DeadLetterFilter, find_dead_letters
from connectors.replay import replay_statuses, request_replay


class ReplayBody(BaseModel):
    ids: list[int] = Field(default_factory=list, description="dead letter ids; or use filters")
    all: bool = Field(default=False, description="every open dead letter matching the filters")
    flow: str | None = None
    system: str | None = None
    error_class: str | None = None
    deal_id: str | None = None
    reason: str = Field(min_length=1, description="why: recorded with each replay")
    actor: str = Field(min_length=1, description="who asks: recorded with each replay")


def build_dead_letters_router(
    engine: Engine,
    verifier: TokenVerifier,
    token_required: bool,
    read_guard: Callable[[Request], None],
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> APIRouter:
    require_replay = scope_guard(
        verifier, token_required, "replay", "replay needs a token with scope replay"
    )
    router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

    @router.get("", summary="Open dead letters, oldest first", dependencies=[Depends(read_guard)])
    def list_letters(
        flow: str | None = None,
        system: str | None = None,
        error_class: str | None = None,
        deal_id: str | None = None,
        limit: int = 500,
    ) -> dict[str, Any]:
        where = DeadLetterFilter(flow=flow, system=system, error_class=error_class, deal_id=deal_id)
        with engine.connect() as conn:
            rows = find_dead_letters(conn, where, limit=min(max(limit, 1), 1000))
        return {
            "dead_letters": [
                {
                    "id": letter.id,
                    "flow": letter.flow,
                    "step": step,
                    "system": str(letter.system),
                    "deal_id": letter.deal_id,
                    "error_class": letter.error_class,
                    "error": letter.error,
                    "dead_at": letter.dead_at.isoformat(),
                    "idempotency_key": key,
                    "attempts": attempts,
                }
                for letter, step, key, attempts in rows
            ]
        }

    @router.post(
        "/replay",
        status_code=202,
        summary="Replay dead letters, exactly once",
        dependencies=[Depends(require_replay)],
    )
    def replay(body: ReplayBody) -> dict[str, Any]:
        filtered = any(
            v is not None for v in (body.flow, body.system, body.error_class, body.deal_id)
        )
        if not body.ids and not body.all and not filtered:
            raise HTTPException(422, "name dead letter ids, give a filter, or set all")
        where = DeadLetterFilter(
            flow=body.flow, system=body.system, error_class=body.error_class, deal_id=body.deal_id
        )
        with engine.connect() as conn:
            rows = find_dead_letters(conn, where)
        chosen = [letter.id for letter, *_ in rows if not body.ids or letter.id in body.ids]
        requests = request_replay(engine, chosen, body.actor, body.reason, now())
        return {
            "replays": [
                {"replay_id": r.replay_id, "dead_letter_id": r.dead_letter_id} for r in requests
            ]
        }

    @router.get(
        "/replays/{replay_id}", summary="One replay's outcome", dependencies=[Depends(read_guard)]
    )
    def replay_status(replay_id: int) -> dict[str, Any]:
        found = replay_statuses(engine, [replay_id])
        if not found:
            raise HTTPException(404, f"no replay {replay_id}")
        status = found[0]
        return {
            "replay_id": status.replay_id,
            "dead_letter_id": status.dead_letter_id,
            "outcome": status.outcome.value,
            "detail": status.detail,
            "requested_by": status.requested_by,
        }

    return router
