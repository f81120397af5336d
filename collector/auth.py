"""API tokens: created once and shown once, stored only as SHA-256 digests, checked per
request with a short cache so a revocation takes effect within seconds."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine, insert, select, update

from store.access import ApiToken

SCOPES = frozenset({"ingest", "read", "replay", "approve", "admin"})


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    engine: Engine,
    name: str,
    scopes: set[str],
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
) -> str:
    """Store a new token and return its only plaintext copy."""
    unknown = scopes - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {sorted(SCOPES)}, got {sorted(scopes)}")
    token = "tl_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            insert(ApiToken).values(
                name=name,
                token_sha256=digest(token),
                scopes=" ".join(sorted(scopes)),
                created_at=now,
                expires_at=expires_at,
            )
        )
    return token


def revoke_token(engine: Engine, name: str, now: dt.datetime) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(ApiToken)
            .where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return bool(result.rowcount)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TokenVerifier:
    def __init__(
        self,
        engine: Engine,
        *,
        cache_seconds: float = 5.0,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._now = now
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def scopes(self, authorization: str | None) -> frozenset[str]:
        """Scopes granted by an `Authorization: Bearer <token>` header (empty if none)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return frozenset()
        key = digest(authorization[7:].strip())
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        with self._engine.connect() as conn:
            row = conn.execute(
                select(ApiToken.scopes, ApiToken.expires_at, ApiToken.revoked_at).where(
                    ApiToken.token_sha256 == key
                )
            ).first()
        granted: frozenset[str] = frozenset()
        if row is not None and row.revoked_at is None:
            expired = row.expires_at is not None and row.expires_at <= self._now()
            granted = frozenset() if expired else frozenset(row.scopes.split())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), granted)
        return granted

    def allows(self, authorization: str | None, scope: str) -> bool:
        granted = self.scopes(authorization)
        return scope in granted or "admin" in granted
