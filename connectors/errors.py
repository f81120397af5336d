"""Every error a connector raises, in one flat module. Outside exceptions (httpx, the
systems' error bodies) are translated at one boundary (`connectors.http`), so the outbox
decides retry or dead letter from the class alone. Messages never carry secrets."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class. `error_class` is the short name stored with attempts and dead letters."""

    error_class = "connector_error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(ConnectorError):
    """Worth another try later: transport failures, 408, 409 where the system says so,
    429, 5xx. `retry_after` is the system's own hint in seconds, when it gave one."""

    error_class = "retryable"
    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class TransportError(RetryableError):
    error_class = "transport"


class RateLimited(RetryableError):
    error_class = "rate_limited"


class ServerError(RetryableError):
    error_class = "server_error"


class Unavailable(RetryableError):
    """The system is paused because its circuit is open; nothing was sent."""

    error_class = "circuit_open"


class FatalError(ConnectorError):
    """Another try would fail the same way: 4xx other than 408/409/429."""

    error_class = "client_error"


class AuthFailed(FatalError):
    error_class = "auth_failed"


class NotFound(FatalError):
    error_class = "not_found"


class Conflict(FatalError):
    """409 for a reused idempotency key with a different body: our bug, not the system's."""

    error_class = "idempotency_conflict"


class ValidationFailed(FatalError):
    """The record breaks the contract terms (rate, cap, PO, milestone approval)."""

    error_class = "validation"


class MissingPrerequisite(RetryableError):
    """An upstream record this step needs does not exist yet (a flow ran out of order)."""

    error_class = "missing_prerequisite"
