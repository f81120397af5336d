"""The systems' own auth: OAuth2 client-credentials tokens that expire (CRM, ERP) and
static API keys in a header (CLM, PSA, billing)."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.clock import Clock


class Unauthorized(Exception):
    """No valid credentials; `reason` is safe to show (it never holds a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


class OAuth2Issuer:
    """Client-credentials grant: one client, tokens valid for `ttl()` seconds of wall time."""

    kind = "oauth2"

    def __init__(
        self, client_id: str, client_secret: str, clock: Clock, ttl: Callable[[], int]
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._ttl = ttl
        self._tokens: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def issue(self, grant_type: str, client_id: str, client_secret: str) -> IssuedToken:
        if grant_type != "client_credentials":
            raise Unauthorized("unsupported_grant_type")
        if client_id != self.client_id or not hmac.compare_digest(client_secret, self._secret):
            raise Unauthorized("invalid_client")
        ttl = self._ttl()
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self._clock.now() + dt.timedelta(seconds=ttl)
        return IssuedToken(token, ttl)

    def check(self, authorization: str | None, api_key: str | None) -> str:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("missing bearer token")
        token = authorization[7:].strip()
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            raise Unauthorized("invalid_token")
        if self._clock.now() >= expires:
            raise Unauthorized("token expired")
        return token


class ApiKeyAuth:
    """A static key in a header (`X-API-Key` by default)."""

    kind = "api_key"

    def __init__(self, api_key: str, header: str = "X-API-Key") -> None:
        self.header = header
        self._key = api_key

    def check(self, authorization: str | None, api_key: str | None) -> str:
        if api_key is None:
            raise Unauthorized(f"missing {self.header}")
        if not hmac.compare_digest(api_key, self._key):
            raise Unauthorized("invalid API key")
        return api_key


Authenticator = OAuth2Issuer | ApiKeyAuth
