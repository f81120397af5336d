"""The HTTP face of one system: its resources, auth, idempotent creates, faults, rate
limits, `/healthz`, the OpenAPI document, and the admin endpoints (faults, webhooks,
ground truth) behind the admin key."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from sandbox.auth import OAuth2Issuer, Unauthorized
from sandbox.faults import PROFILE_NAMES, ProfileName
from sandbox.pagination import BadPageRequest
from sandbox.ratelimit import retry_after_header
from sandbox.service import Rejected, Resource, SystemService

ADMIN_HEADER = "X-Admin-Key"
_UNFAULTED = ("/admin", "/docs", "/openapi.json", "/redoc")


def create_app(service: SystemService) -> FastAPI:
    spec = service.spec
    app = FastAPI(
        title=f"Sandbox {spec.title}",
        description=f"The sandbox firm's {spec.system.upper()} ({spec.title}).",
        version="1.0",
    )

    def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
        return JSONResponse(spec.error_body(status, code, message), status, headers=headers)

    @app.middleware("http")
    async def inject_faults(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if path.startswith(_UNFAULTED):
            return await call_next(request)
        faults = service.faults
        config = faults.config
        if faults.in_outage():
            faults.record("outage", path=path)
            return error(503, "SERVICE_UNAVAILABLE", "the service is down for maintenance")
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if faults.roll(config.timeout_rate):
            faults.record("timeout", path=path)
            await asyncio.sleep(config.timeout_seconds)
            return error(504, "GATEWAY_TIMEOUT", "upstream timed out")
        if faults.roll(config.error_rate):
            status = faults.choose([500, 502, 503])
            faults.record("error", path=path, status=status)
            return error(status, "SERVER_ERROR", "an unexpected error occurred")
        if path not in ("/healthz", "/oauth/token"):
            caller = request.headers.get("authorization") or request.headers.get(
                "x-api-key", request.client.host if request.client else "anonymous"
            )
            wait = service.limiter.take(
                caller, config.rate_limit_per_second, config.rate_limit_burst
            )
            if wait > 0:
                return error(
                    429,
                    "RATE_LIMITED",
                    "too many requests",
                    **{"Retry-After": retry_after_header(wait)},
                )
            response = await call_next(request)
            # Headroom, as most SaaS APIs report it, so health probes can warn before 429s.
            response.headers["X-RateLimit-Limit"] = str(config.rate_limit_burst)
            response.headers["X-RateLimit-Remaining"] = str(service.limiter.remaining(caller))
            return response
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "system": spec.system}

    if isinstance(service.auth, OAuth2Issuer):
        issuer = service.auth

        @app.post("/oauth/token", tags=["auth"])
        async def token(request: Request) -> Response:
            raw = (await request.body()).decode()
            form = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            try:
                issued = issuer.issue(
                    form.get("grant_type", ""),
                    form.get("client_id", ""),
                    form.get("client_secret", ""),
                )
            except Unauthorized as exc:
                return JSONResponse({"error": exc.reason}, 401)
            return JSONResponse(
                {
                    "access_token": issued.access_token,
                    "token_type": "bearer",
                    "expires_in": issued.expires_in,
                }
            )

    def authenticate(request: Request) -> JSONResponse | None:
        try:
            service.auth.check(
                request.headers.get("authorization"), request.headers.get("x-api-key")
            )
        except Unauthorized as exc:
            challenge = (
                'Bearer error="invalid_token"' if service.auth.kind == "oauth2" else "ApiKey"
            )
            return error(401, "UNAUTHORIZED", exc.reason, **{"WWW-Authenticate": challenge})
        return None

    for resource in spec.resources:
        _add_resource_routes(app, service, resource, authenticate, error)
    _add_admin_routes(app, service)
    return app


ErrorFn = Callable[..., JSONResponse]
AuthFn = Callable[[Request], JSONResponse | None]


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _filter_value(raw: str) -> str | int:
    """Query strings compare with JSON values: booleans are stored as 1 / 0."""
    return {"true": 1, "false": 0}.get(raw.lower(), raw) if raw else raw


def _parse_since(raw: str | None) -> dt.datetime | None:
    if raw is None:
        return None
    value = dt.datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _add_resource_routes(
    app: FastAPI, service: SystemService, resource: Resource, authenticate: AuthFn, error: ErrorFn
) -> None:
    spec = service.spec
    tag = resource.name

    async def list_records(request: Request) -> Response:
        if (denied := authenticate(request)) is not None:
            return denied
        query = dict(request.query_params)
        try:
            page_request = spec.paginator.parse(query)
            since = _parse_since(query.get(resource.since_param))
        except (BadPageRequest, ValueError) as exc:
            return error(400, "INVALID_QUERY", str(exc))
        filters = {
            path: _filter_value(query[param])
            for param, path in resource.filters.items()
            if param in query
        }
        page = await run_in_threadpool(
            service.list_page, resource.name, page_request, filters, since
        )
        items = [service.present(resource, r) for r in page.records]
        return JSONResponse(spec.paginator.envelope(resource.name, page_request, page, items))

    async def get_record(request: Request, record_id: str) -> Response:
        if (denied := authenticate(request)) is not None:
            return denied
        record = await run_in_threadpool(service.get, resource.name, record_id)
        if record is None:
            return error(404, "NOT_FOUND", f"{resource.name} {record_id!r} not found")
        return JSONResponse(service.present(resource, record))

    app.add_api_route(
        resource.path, list_records, methods=["GET"], tags=[tag], summary=f"List {tag}"
    )
    app.add_api_route(
        resource.path + "/{record_id}",
        get_record,
        methods=["GET"],
        tags=[tag],
        summary=f"Get one of {tag}",
    )

    if resource.create is not None:
        create_model = resource.create

        async def create_record(request: Request) -> Response:
            if (denied := authenticate(request)) is not None:
                return denied
            raw = await request.body()
            try:
                payload = json.loads(raw or b"null")
                body = create_model.model_validate(payload).model_dump(mode="json")
            except (ValueError, ValidationError) as exc:
                return error(422, "INVALID_BODY", _short(exc))
            key = request.headers.get("idempotency-key")
            return await run_in_threadpool(_create_once, service, resource, body, key, error)

        app.add_api_route(
            resource.path,
            create_record,
            methods=["POST"],
            tags=[tag],
            summary=f"Create one of {tag} (send Idempotency-Key to make it safe to retry)",
            openapi_extra=_body_schema(create_model),
            status_code=201,
        )

    if resource.update is not None:
        update_model = resource.update

        async def update_record(request: Request, record_id: str) -> Response:
            if (denied := authenticate(request)) is not None:
                return denied
            try:
                payload = json.loads(await request.body() or b"null")
                changes = update_model.model_validate(payload).model_dump(
                    mode="json", exclude_unset=True
                )
            except (ValueError, ValidationError) as exc:
                return error(422, "INVALID_BODY", _short(exc))
            try:
                record = await run_in_threadpool(service.update, resource.name, record_id, changes)
            except Rejected as exc:
                return error(exc.status, exc.code, exc.message)
            return JSONResponse(service.present(resource, record))

        app.add_api_route(
            resource.path + "/{record_id}",
            update_record,
            methods=["PATCH"],
            tags=[tag],
            summary=f"Update one of {tag}",
            openapi_extra=_body_schema(update_model),
        )


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return "body is not valid JSON"


def _create_once(
    service: SystemService,
    resource: Resource,
    body: dict[str, Any],
    key: str | None,
    error: ErrorFn,
) -> Response:
    """Create, or with an Idempotency-Key seen before: replay its first answer (same
    body) or refuse with 409 (different body)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    scope = f"POST {resource.path}"
    with service.write_lock:
        if key is not None:
            seen = service.store.remembered(scope, key)
            if seen is not None:
                if not hmac.compare_digest(seen.body_hash, digest):
                    return error(
                        409, "IDEMPOTENCY_CONFLICT", "Idempotency-Key reused with another body"
                    )
                return JSONResponse(seen.body, seen.status, headers={"Idempotent-Replayed": "true"})
        try:
            record = service.create(resource.name, body)
        except Rejected as exc:
            return error(exc.status, exc.code, exc.message)
        shown = service.present(resource, record)
        if key is not None:
            service.store.remember(scope, key, digest, 201, shown)
    return JSONResponse(shown, 201)


class FaultChange(BaseModel):
    profile: ProfileName | None = None
    settings: dict[str, Any] = {}


class Subscription(BaseModel):
    url: str | None
    secret: str | None = None


def _add_admin_routes(app: FastAPI, service: SystemService) -> None:
    def require_admin(request: Request) -> None:
        given = request.headers.get(ADMIN_HEADER.lower(), "")
        if not hmac.compare_digest(given, service.admin_key):
            raise HTTPException(401, f"missing or wrong {ADMIN_HEADER}")

    admin = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

    @admin.get("/faults")
    def get_faults() -> Response:
        return JSONResponse(
            {
                "config": service.faults.config.model_dump(mode="json"),
                "profiles": list(PROFILE_NAMES),
                "injected": service.faults.injected(),
            }
        )

    @admin.put("/faults")
    def put_faults(change: FaultChange) -> Response:
        """Switch to a named profile and/or change single settings, effective at once."""
        if change.profile is not None:
            service.faults.use_profile(change.profile)
        try:
            config = service.faults.apply(change.settings)
        except ValidationError as exc:
            return JSONResponse({"error": _short(exc)}, 422)
        if change.settings.get("schema_drift"):
            service.faults.record("schema_drift", renamed=dict(service.spec.drift))
        return JSONResponse({"config": config.model_dump(mode="json")})

    @admin.put("/webhooks")
    def put_webhooks(subscription: Subscription) -> Response:
        service.webhooks.subscribe(subscription.url, subscription.secret)
        return JSONResponse({"url": subscription.url, "signed": subscription.secret is not None})

    @admin.post("/webhooks/flush")
    def flush_webhooks() -> Response:
        sent = service.webhooks.deliver_pending()
        return JSONResponse({"delivered": sent, "pending": service.webhooks.pending()})

    @admin.get("/ground-truth")
    def ground_truth() -> Response:
        """What this system should hold if every sync were perfect, and every fault it
        injected."""
        expected = service.ground_truth() if service.ground_truth is not None else {}
        return JSONResponse(
            {
                "system": service.system,
                "as_of": service.sim_clock.now().isoformat(),
                "expected": expected,
                "faults_injected": service.faults.injected(),
            }
        )

    @admin.get("/clock")
    def clock() -> Response:
        return JSONResponse(
            {
                "simulated": service.sim_clock.now().isoformat(),
                "wall": service.wall_clock.now().isoformat(),
            }
        )

    app.include_router(admin)
