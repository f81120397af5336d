"""The one small base every system client shares: auth (OAuth2 client credentials with a
cached token refreshed on 401, or an API key), a client-side rate limiter, retries with
exponential backoff and jitter that honour Retry-After, the classification of responses
into retryable and fatal errors, and an OpenTelemetry span for every call.

httpx's exceptions are translated here and nowhere else. Writes are retried only when they
carry an idempotency key. Secrets never reach a span, a log line or an error message.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    FatalError,
    NotFound,
    RateLimited,
    RetryableError,
    ServerError,
    TransportError,
)
from connectors.ratelimit import TokenBucket
from connectors.tracing import Clock, clocked_span, wall_clock
from store.states import System

logger = logging.getLogger(__name__)
IDEMPOTENCY_HEADER = "Idempotency-Key"


class Auth(Protocol):
    def headers(self) -> dict[str, str]: ...

    def invalidate(self) -> bool:
        """Forget cached credentials; True if a retry with fresh ones may succeed."""
        ...


@dataclass
class ApiKeyAuth:
    header: str
    key: str

    def headers(self) -> dict[str, str]:
        return {self.header: self.key}

    def invalidate(self) -> bool:
        return False


class OAuth2ClientCredentials:
    """Fetches a token with the client-credentials grant and reuses it until shortly
    before it expires, or until the system answers 401."""

    def __init__(
        self,
        http: httpx.Client,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._clock() >= self._expires:
                self._fetch()
            return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
        return True

    def seconds_left(self) -> float | None:
        """Seconds until the cached token expires (None before the first token)."""
        with self._lock:
            return None if self._token is None else max(0.0, self._expires - self._clock())

    def _fetch(self) -> None:
        try:
            response = self._http.post(
                self._token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._secret,
                },
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"token request failed: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerError(
                f"token endpoint answered {response.status_code}", status=response.status_code
            )
        if response.status_code != 200:
            raise AuthFailed(
                f"token endpoint refused the client credentials ({response.status_code})",
                status=response.status_code,
            )
        body = response.json()
        self._token = str(body["access_token"])
        # Renew a little early so a token never expires in flight.
        self._expires = self._clock() + max(1.0, float(body.get("expires_in", 300)) * 0.9)


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _detail(response: httpx.Response) -> str:
    """A short, secret-free description of an error body."""
    text = response.text.strip().replace("\n", " ")
    return text[:300]


def classify(response: httpx.Response) -> ConnectorError | None:
    """None for success; otherwise the error this response means."""
    status = response.status_code
    if status < 400:
        return None
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    message = (
        f"{response.request.method} {response.request.url.path} -> {status}: {_detail(response)}"
    )
    if status == 429:
        return RateLimited(message, status=status, retry_after=retry_after)
    if status == 408 or status >= 500:
        return ServerError(message, status=status, retry_after=retry_after)
    if status == 409:
        if retry_after is not None:  # the system says: busy with this key, come back
            return RetryableError(message, status=status, retry_after=retry_after)
        return Conflict(message, status=status)
    if status in (401, 403):
        return AuthFailed(message, status=status)
    if status == 404:
        return NotFound(message, status=status)
    return FatalError(message, status=status)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_seconds: float = 0.2
    max_seconds: float = 10.0


class SystemClient:
    """HTTP calls to one system. The httpx client is injected (its transport is the seam)."""

    def __init__(
        self,
        system: System,
        base_url: str,
        http: httpx.Client,
        auth: Auth,
        limiter: TokenBucket,
        tracer: Tracer,
        *,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = wall_clock,
    ) -> None:
        self.system = system
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._auth = auth
        self._limiter = limiter
        self._tracer = tracer
        self._retry = retry
        self._sleep = sleep
        self._clock = clock

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one logical request (retried on transient failures when safe) and return
        the decoded JSON body, or raise a ConnectorError."""
        safe = method.upper() in ("GET", "HEAD") or idempotency_key is not None

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            exponent: int = state.attempt_number - 1
            backoff = min(self._retry.max_seconds, self._retry.base_seconds * 2.0**exponent)
            jittered = backoff * (0.5 + random.random())
            hint = getattr(exc, "retry_after", None)
            if hint:
                return max(jittered, min(float(hint), self._retry.max_seconds))
            return jittered

        retrying = Retrying(
            stop=stop_after_attempt(self._retry.attempts if safe else 1),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, RetryableError)),
            sleep=self._sleep,
            reraise=True,
        )
        for resend, attempt in enumerate(retrying):
            with attempt:
                return self._send(method, path, json, params, idempotency_key, attributes, resend)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def check(
        self, path: str, params: Mapping[str, Any] | None = None, *, json: Any = None
    ) -> httpx.Response:
        """One request for health probes (a GET, or a POST with `json`): no retry, no
        rate-limit wait, the raw response with its headers. Raises TransportError when
        unreachable, AuthFailed when credentials fail."""
        method = "GET" if json is None else "POST"
        return self._exchange(method, f"{self.base_url}{path}", json, params, None)

    def credential_seconds_left(self) -> float | None:
        """Seconds until the current access token expires, where the auth has one."""
        seconds_left = getattr(self._auth, "seconds_left", None)
        return seconds_left() if callable(seconds_left) else None

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        params: Mapping[str, Any] | None,
        idempotency_key: str | None,
        attributes: Mapping[str, Any] | None,
        resend: int,
    ) -> Any:
        url = f"{self.base_url}{path}"
        span_attributes: dict[str, Any] = {
            "http.request.method": method.upper(),
            "url.full": url,
            "server.address": httpx.URL(url).host,
            "q2c.system": self.system.value,
            **(attributes or {}),
        }
        if resend:
            span_attributes["http.request.resend_count"] = resend
        with clocked_span(
            self._tracer,
            f"{method.upper()} {path}",
            self._clock,
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
        ) as span:
            waited = self._limiter.acquire()
            if waited:
                span.set_attribute("throughline.rate_limit.waited_ms", round(waited * 1000))
            try:
                response = self._exchange(method, url, body, params, idempotency_key)
            except ConnectorError as exc:
                span.set_attribute("error.type", exc.error_class)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                raise
            span.set_attribute("http.response.status_code", response.status_code)
            error = classify(response)
            if error is not None:
                if isinstance(error, RateLimited) and error.retry_after:
                    self._limiter.pause(error.retry_after)
                span.set_attribute("error.type", error.error_class)
                span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
                raise error
            span.set_status(Status(StatusCode.OK))
            if not response.content:
                return None
            return response.json()

    def _exchange(
        self,
        method: str,
        url: str,
        body: Any,
        params: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> httpx.Response:
        for fresh_credentials in (False, True):
            headers = dict(self._auth.headers())
            if idempotency_key:
                headers[IDEMPOTENCY_HEADER] = idempotency_key
            try:
                response = self._http.request(
                    method, url, json=body, params=params, headers=headers
                )
            except httpx.TimeoutException as exc:
                raise TransportError(f"{method} {url}: timed out") from exc
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {url}: {type(exc).__name__}") from exc
            if response.status_code == 401 and not fresh_credentials and self._auth.invalidate():
                continue  # the token expired: fetch a new one and try once more
            return response
        return response
