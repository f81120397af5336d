"""The collector's HTTP server: OTLP/HTTP and CloudEvents ingest, the REST API under
/api/v1, /metrics and /healthz. One FastAPI app, so the API has an OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from collector.approvals_api import build_approvals_router
from collector.auth import TokenVerifier, is_loopback
from collector.dead_letters_api import build_dead_letters_router
from collector.deals_api import build_deals_router, read_guard
from collector.metrics import CollectorMetrics
from collector.receivers import IngestPolicy, build_ingest_router
from collector.span_writer import SpanWriter
from collector.store_metrics import StoreCollector
from kpis.api import kpis_router
from kpis.prometheus import KpiCollector
from store import migrate
from store.engine import make_engine
from throughline.config import ServerSettings, Settings


def ingest_policy(settings: Settings) -> IngestPolicy:
    server: ServerSettings = settings.server
    secrets = {
        name: system.webhook_secret.get_secret_value()
        for name, system in settings.systems
        if system.webhook_secret is not None
    }
    return IngestPolicy(
        max_body_bytes=server.max_body_bytes,
        token_required=not (server.demo_mode and is_loopback(server.host)),
        webhook_secrets=secrets,
    )


def create_app(
    engine: Engine,
    registry: CollectorRegistry | None = None,
    settings: Settings | None = None,
    *,
    writer: SpanWriter | None = None,
) -> FastAPI:
    """Build the app around an engine and a registry owned by the caller (never globals).
    The span writer starts and stops with the app."""
    settings = settings if settings is not None else Settings()
    registry = registry if registry is not None else CollectorRegistry()
    metrics = CollectorMetrics(registry)
    if writer is None:
        # Writes read before they write (lifecycle derivation): on SQLite they take the
        # write lock at BEGIN, so another process's writer makes them wait, not fail.
        write_engine = (
            make_engine(engine.url, immediate=True) if engine.dialect.name == "sqlite" else engine
        )
        writer = SpanWriter(write_engine, metrics, max_queued=settings.server.queue_max_spans)
    Gauge(
        "throughline_ingest_queue_spans",
        "Spans and events waiting to be written",
        registry=registry,
    ).set_function(lambda: writer.queued)
    registry.register(StoreCollector(engine))
    registry.register(KpiCollector(engine))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        try:
            yield
        finally:
            writer.stop()

    app = FastAPI(
        title="Throughline",
        summary="Quote-to-cash integration monitoring: ingest, API, metrics",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.writer = writer
    app.state.metrics = metrics
    verifier = TokenVerifier(engine)
    policy = ingest_policy(settings)
    app.include_router(build_ingest_router(writer, metrics, verifier, policy))
    app.include_router(build_deals_router(engine, verifier, policy.token_required))
    app.include_router(
        build_dead_letters_router(
            engine, verifier, policy.token_required, read_guard(verifier, policy.token_required)
        )
    )
    app.include_router(
        build_approvals_router(
            engine, verifier, policy.token_required, read_guard(verifier, policy.token_required)
        )
    )
    app.include_router(
        kpis_router(engine, settings),
        prefix="/api/v1",
        dependencies=[Depends(read_guard(verifier, policy.token_required))],
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
    def metrics_endpoint() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
