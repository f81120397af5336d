"""Every error a connector raises, in one flat module. Outside exceptions (httpx, the
systems' error bodies) are translated at one boundary (`connectors.http`), so the outbox
decides retry or dead letter from the class alone. Messages never carry secrets."""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base class. `error_class` is the short name stored with attempts and dead letters."""

    error_class = "connector_error"
    retryable = False
    refused: bool = False
    """The target system refused the record itself (its data), not our access to it."""

    def __init__(
        self, message: str, *, status: int | None = None, refused: bool | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        if refused is not None:
            self.refused = refused
        self.observed: tuple[Any, ...] = ()
        """Observation spans of the lifecycle stage this failure reached (e.g. `rejected`),
        stored with the failed attempt as a done step's stage is stored with it."""


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
    refused = True


class AuthFailed(FatalError):
    error_class = "auth_failed"
    refused = False


class NotFound(FatalError):
    error_class = "not_found"
    refused = False


class Conflict(FatalError):
    """409 for a reused idempotency key with a different body: our bug, not the system's."""

    error_class = "idempotency_conflict"
    refused = False


class ValidationFailed(FatalError):
    """The record breaks the contract terms (rate, cap, PO, milestone approval)."""

    error_class = "validation"


class OverCap(ValidationFailed):
    """A charge that would take a capped contract past its cap: refused, or held for
    approval where `approvals.over_cap` says a person decides (connectors.approvals)."""

    def __init__(self, message: str, *, amount: object) -> None:
        super().__init__(message)
        self.amount = amount


class MissingPrerequisite(RetryableError):
    """An upstream record this step needs does not exist yet (a flow ran out of order)."""

    error_class = "missing_prerequisite"


class AwaitingApproval(ConnectorError):
    """The step stopped at an approval checkpoint (connectors.approvals): its message waits,
    held, until a person approves or rejects; not a failure, nothing was sent."""

    error_class = "awaiting_approval"

    def __init__(self, message: str, *, approval_id: int) -> None:
        super().__init__(message)
        self.approval_id = approval_id
