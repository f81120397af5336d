"""The system client against real sandbox services: token expiry and refresh, 429 with
Retry-After, a client-side limit that avoids 429s, error classes, and no secret in a span."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from connectors.errors import Conflict, NotFound
from connectors.http import ApiKeyAuth, OAuth2ClientCredentials, RetryPolicy, SystemClient
from connectors.ratelimit import TokenBucket
from sandbox.services import OAUTH_CLIENT_ID, default_secret
from store.states import System
from tests.sandbox.conftest import RunningSandbox
from tests.sandbox.http import admin_put_faults

ACCOUNTS = "/services/data/v59.0/accounts"
CHARGES = "/v1/billing_schedules"


class Recorder:
    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.slept: list[float] = []
        self.token_requests = 0

    def sleep(self, seconds: float) -> None:
        """Waiting moves the sandbox's clock, as real waiting would."""
        self.slept.append(seconds)
        self.sandbox.wall.advance(dt.timedelta(seconds=seconds))

    def hook(self, request: httpx.Request) -> None:
        if request.url.path == "/oauth/token":
            self.token_requests += 1


def make_client(
    sandbox: RunningSandbox, system: System, recorder: Recorder, limiter: TokenBucket | None = None
) -> tuple[SystemClient, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    http = httpx.Client(event_hooks={"request": [recorder.hook]})
    url = sandbox.urls[system.value]
    auth = (
        OAuth2ClientCredentials(
            http, f"{url}/oauth/token", OAUTH_CLIENT_ID, default_secret(system.value)
        )
        if system in (System.CRM, System.ERP)
        else ApiKeyAuth("X-API-Key", default_secret(system.value))
    )
    client = SystemClient(
        system,
        url,
        http,
        auth,
        limiter or TokenBucket(1000, 1000),
        provider.get_tracer("t"),
        retry=RetryPolicy(attempts=6, base_seconds=0.01, max_seconds=30),
        sleep=recorder.sleep,
    )
    return client, exporter


def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(sandbox: RunningSandbox) -> None:
    recorder = Recorder(sandbox)
    client, spans = make_client(sandbox, System.CRM, recorder)
    admin_put_faults(sandbox.urls["crm"], token_ttl_seconds=60)
    assert client.request("GET", ACCOUNTS)["records"] is not None
    sandbox.wall.advance(dt.timedelta(minutes=2))  # the system's clock: the token has expired
    assert client.request("GET", ACCOUNTS)["records"] is not None
    assert recorder.token_requests == 2
    secret = default_secret("crm")
    for span in spans.get_finished_spans():
        assert all(
            secret not in str(v) and "Bearer" not in str(v)
            for v in (span.attributes or {}).values()
        )


def test_429_is_waited_out_as_retry_after_says(sandbox: RunningSandbox) -> None:
    recorder = Recorder(sandbox)
    client, spans = make_client(sandbox, System.BILLING, recorder)
    admin_put_faults(sandbox.urls["billing"], rate_limit_per_second=1, rate_limit_burst=2)
    for _ in range(6):
        client.request("GET", CHARGES)
    statuses = [s.attributes.get("http.response.status_code") for s in spans.get_finished_spans()]
    assert statuses.count(429) >= 3
    assert statuses.count(200) == 6
    assert min(w for w in recorder.slept if w > 0.05) >= 0.9  # Retry-After: 1 s, not our 10 ms


def test_a_client_side_limit_at_the_systems_rate_gets_no_429(sandbox: RunningSandbox) -> None:
    recorder = Recorder(sandbox)
    limiter = TokenBucket(1, 2, clock=lambda: sandbox.wall.now().timestamp(), sleep=recorder.sleep)
    client, spans = make_client(sandbox, System.BILLING, recorder, limiter)
    admin_put_faults(sandbox.urls["billing"], rate_limit_per_second=1, rate_limit_burst=2)
    sandbox.wall.advance(dt.timedelta(seconds=30))  # the system's bucket is full again
    for _ in range(8):
        client.request("GET", CHARGES)
    statuses = [s.attributes.get("http.response.status_code") for s in spans.get_finished_spans()]
    assert statuses == [200] * 8
    assert sum(recorder.slept) == pytest.approx(6, abs=0.01)  # 2 from the burst, then 1/s


def test_fatal_answers_are_not_retried(sandbox: RunningSandbox) -> None:
    recorder = Recorder(sandbox)
    client, spans = make_client(sandbox, System.CRM, recorder)
    with pytest.raises(NotFound):
        client.request("GET", f"{ACCOUNTS}/NO-SUCH-ACCOUNT")
    body = {"name": "Acme", "currencyIsoCode": "USD"}
    client.request("POST", ACCOUNTS, json=body, idempotency_key="acct:acme")
    again = client.request("POST", ACCOUNTS, json=body, idempotency_key="acct:acme")
    assert again["name"] == "Acme"  # same key, same body: the first answer
    with pytest.raises(Conflict):
        client.request(
            "POST", ACCOUNTS, json={**body, "name": "Other"}, idempotency_key="acct:acme"
        )
    assert recorder.slept == []
    errors = [s.attributes.get("error.type") for s in spans.get_finished_spans()]
    assert errors.count("not_found") == 1 and errors.count("idempotency_conflict") == 1
