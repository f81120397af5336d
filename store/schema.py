"""The whole schema in one import: every table registered on `store.base.metadata`."""

from __future__ import annotations

from store.access import ApiToken, AuditEntry, User
from store.base import Base, metadata
from store.monitoring import (
    Alert,
    AlertNotification,
    KpiRefresh,
    KpiSnapshot,
    ProbeFinding,
    ProbeResult,
    Silence,
)
from store.objects import BillableItem, Consultant, Contract, Deal, Invoice, Payment
from store.outbox import DeadLetter, Replay, SyncAttempt, SyncCursor, SyncMessage
from store.scheduling import JobRun, SchedulerJob
from store.telemetry import LifecycleEvent, Span, WebhookSource

__all__ = [
    "Alert",
    "AlertNotification",
    "ApiToken",
    "AuditEntry",
    "Base",
    "BillableItem",
    "Consultant",
    "Contract",
    "DeadLetter",
    "Deal",
    "Invoice",
    "JobRun",
    "KpiRefresh",
    "KpiSnapshot",
    "LifecycleEvent",
    "Payment",
    "ProbeFinding",
    "ProbeResult",
    "Replay",
    "SchedulerJob",
    "Silence",
    "Span",
    "SyncAttempt",
    "SyncCursor",
    "SyncMessage",
    "User",
    "WebhookSource",
    "metadata",
]
