"""Builds the connectors from settings: one client per system, the flows' streams and
handlers, a worker and a change-capture poller."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from opentelemetry.trace import Tracer
from sqlalchemy import Engine

from connectors.approvals import ApprovalPolicy
from connectors.capture import Capture
from connectors.circuit import CircuitBreakers
from connectors.erp import ApiErp, Erp
from connectors.flows import (
    amendments,
    billables,
    cash,
    consultants,
    intake,
    posting,
    provisioning,
)
from connectors.flows.base import FlowContext
from connectors.http import ApiKeyAuth, Auth, OAuth2ClientCredentials, SystemClient
from connectors.outbox import BackoffPolicy
from connectors.ratelimit import TokenBucket
from connectors.resources import Api
from connectors.tracing import Clock, SpanSink, wall_clock
from connectors.tryton import TrytonErp, TrytonRpc, TrytonSession
from connectors.worker import Worker
from store.states import System
from throughline.config import ApiKeyAuth as ApiKeySettings
from throughline.config import OAuth2Auth, Settings, TrytonAuth

FLOWS = (intake, provisioning, amendments, billables, posting, cash, consultants)


@dataclass
class Connectors:
    worker: Worker
    capture: Capture
    context: FlowContext
    http: httpx.Client

    def cycle(self, max_rounds: int = 1000) -> int:
        """Poll every stream, then run the outbox until nothing is due."""
        self.capture.poll_all()
        return self.worker.drain(max_rounds)

    def close(self) -> None:
        self.http.close()


def _auth(settings: Settings, system: System, http: httpx.Client) -> Auth:
    config = settings.systems.get(system)
    auth = config.auth
    base = str(config.base_url).rstrip("/")
    if isinstance(auth, OAuth2Auth):
        return OAuth2ClientCredentials(
            http, f"{base}{auth.token_path}", auth.client_id, auth.client_secret.get_secret_value()
        )
    if isinstance(auth, ApiKeySettings):
        return ApiKeyAuth(auth.header, auth.api_key.get_secret_value())
    if isinstance(auth, TrytonAuth):
        return TrytonSession(
            http, base, auth.database, auth.username, auth.password.get_secret_value()
        )
    raise ValueError(f"systems.{system.value}.auth: kind {auth.kind!r} is not supported")


def build_apis(
    settings: Settings,
    http: httpx.Client,
    tracer: Tracer,
    *,
    clock: Clock = wall_clock,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[System, Api]:
    """One client per system, each with its auth and its rate limit."""
    apis: dict[System, Api] = {}
    for system in System:
        config = settings.systems.get(system)
        limit = config.rate_limit
        client = SystemClient(
            system,
            str(config.base_url),
            http,
            _auth(settings, system, http),
            TokenBucket(limit.requests_per_second, limit.burst, sleep=sleep),
            tracer,
            clock=clock,
            sleep=sleep,
        )
        apis[system] = Api(client)
    return apis


def build_connectors(
    settings: Settings,
    engine: Engine,
    tracer: Tracer,
    *,
    clock: Clock = wall_clock,
    worker_name: str = "worker",
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    policy: BackoffPolicy = BackoffPolicy(),
    lease: dt.timedelta = dt.timedelta(minutes=5),
    span_sink: SpanSink | None = None,
) -> Connectors:
    """The flows' handlers and streams, the outbox worker and the capture, on one HTTP
    client. `span_sink` stores the spans that carry lifecycle stages with the commits that
    make them final (connectors.tracing.SpanSink); without it they reach the store only
    through the tracer's exporter."""
    timeouts = settings.systems.crm.timeouts
    http = http or httpx.Client(
        timeout=httpx.Timeout(timeouts.read_seconds, connect=timeouts.connect_seconds),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    apis = build_apis(settings, http, tracer, clock=clock, sleep=sleep)
    erp_auth = settings.systems.erp.auth
    erp: Erp = (
        TrytonErp(TrytonRpc(apis[System.ERP].client, erp_auth.database))
        if isinstance(erp_auth, TrytonAuth)
        else ApiErp(apis[System.ERP])
    )
    context = FlowContext(
        apis, tracer, clock, erp, store=engine, approvals=ApprovalPolicy.of(settings)
    )
    handlers = {}
    streams = []
    for flow in FLOWS:
        handlers.update(flow.handlers(context))
        streams.extend(flow.streams(context))
    worker = Worker(
        engine,
        handlers,
        tracer,
        name=worker_name,
        breakers=CircuitBreakers(),
        policy=policy,
        clock=clock,
        lease=lease,
        sink=span_sink,
    )
    return Connectors(worker, Capture(engine, context, streams, span_sink), context, http)
