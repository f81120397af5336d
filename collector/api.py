"""The collector's HTTP server: REST API under /api/v1, /metrics and /healthz."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collector.store_metrics import StoreCollector
from store import migrate


def create_app(engine: Engine, registry: CollectorRegistry | None = None) -> FastAPI:
    """Build the app around an engine and a registry owned by the caller (never globals)."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(StoreCollector(engine))
    app = FastAPI(
        title="Throughline",
        summary="Quote-to-cash integration monitoring",
        version="0.1.0",
    )

    @app.get("/healthz", tags=["ops"])
    def healthz() -> JSONResponse:
        """200 when the store answers and its schema is at the head revision."""
        head = migrate.head_revision()
        try:
            current = migrate.current_revision(engine)
        except SQLAlchemyError as exc:
            body: dict[str, Any] = {"status": "fail", "store": f"unreachable: {type(exc).__name__}"}
            return JSONResponse(body, status_code=503)
        if current != head:
            body = {
                "status": "fail",
                "store": f"schema at {current}, expected {head}: run `throughline migrate`",
            }
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "store": "ok", "schema": current})

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
