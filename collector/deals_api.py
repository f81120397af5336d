"""REST API for deals and traces, under /api/v1 (scope `read`, or any request in demo mode)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlalchemy import Engine

from collector.auth import TokenVerifier
from store import deal_queries


def scope_guard(
    verifier: TokenVerifier, token_required: bool, scope: str, refusal: str
) -> Callable[[Request], None]:
    """A dependency that asks for a token with `scope` (or `admin`) when required, and
    answers 401 with `refusal` without one."""

    def require(request: Request) -> None:
        if token_required and not verifier.allows(request.headers.get("authorization"), scope):
            raise HTTPException(401, refusal, headers={"WWW-Authenticate": "Bearer"})

    return require


def read_guard(verifier: TokenVerifier, token_required: bool) -> Callable[[Request], None]:
    """A dependency that asks for a token with scope `read` (or `admin`) when required."""
    return scope_guard(
        verifier,
        token_required,
        "read",
        "missing or invalid token: send Authorization: Bearer <token with scope read>",
    )


def build_deals_router(engine: Engine, verifier: TokenVerifier, token_required: bool) -> APIRouter:
    guard = read_guard(verifier, token_required)
    router = APIRouter(prefix="/api/v1", tags=["deals"], dependencies=[Depends(guard)])

    @router.get("/deals", summary="Deals, paged by cursor; filter by stage, entity or an id")
    def list_deals(
        stage: str | None = None,
        legal_entity: str | None = None,
        q: Annotated[str | None, Query(description="a deal, account or invoice id")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        try:
            with engine.connect() as conn:
                page = deal_queries.list_deals(
                    conn,
                    stage=stage,
                    legal_entity=legal_entity,
                    search=q,
                    limit=limit,
                    cursor=cursor,
                )
        except deal_queries.BadCursor as exc:
            raise HTTPException(400, str(exc)) from None
        return {"deals": [asdict(d) for d in page.deals], "next_cursor": page.next_cursor}

    @router.get("/deals/{deal_id}", summary="One deal: lifecycle, objects and every sync step")
    def get_deal(deal_id: str) -> dict[str, Any]:
        with engine.connect() as conn:
            detail = deal_queries.deal_detail(conn, deal_id)
        if detail is None:
            raise HTTPException(404, f"no deal {deal_id!r}")
        return asdict(detail)

    @router.get("/traces/{trace_id}", summary="Every span of one trace, in start order")
    def get_trace(trace_id: str) -> dict[str, Any]:
        with engine.connect() as conn:
            spans = deal_queries.trace_spans(conn, trace_id)
        if not spans:
            raise HTTPException(404, f"no spans for trace {trace_id!r}")
        return {"trace_id": trace_id.lower(), "spans": [asdict(s) for s in spans]}

    return router
