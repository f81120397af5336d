"""What Throughline concludes: probe results and their findings, KPI snapshots, alerts,
their notifications, and silences."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, BigId, IdPk, Money, Timestamp, TraceId
from store.states import (
    AlertState,
    NotificationStatus,
    ProbeKind,
    ProbeStatus,
    Severity,
    enum_column,
)


class ProbeResult(Base):
    __tablename__ = "probe_results"

    id: Mapped[IdPk]
    probe: Mapped[str] = mapped_column(String(128))
    kind: Mapped[ProbeKind] = mapped_column(enum_column(ProbeKind, 16))
    system: Mapped[str | None] = mapped_column(String(16))
    flow: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[ProbeStatus] = mapped_column(enum_column(ProbeStatus, 8))
    value: Mapped[float | None] = mapped_column(Float)
    observed: Mapped[str | None] = mapped_column(Text)
    expected: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
    started_at: Mapped[Timestamp]
    duration_ms: Mapped[int] = mapped_column(Integer)
    trace_id: Mapped[TraceId | None]

    __table_args__ = (Index(None, "probe", "started_at"), Index(None, "status", "started_at"))


class ProbeFinding(Base):
    """One record a probe found wrong (a mismatch, a stuck deal), so finance can open it."""

    __tablename__ = "probe_findings"

    id: Mapped[IdPk]
    probe_result_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("probe_results.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(16))
    object_id: Mapped[str | None] = mapped_column(String(128))
    deal_id: Mapped[str | None] = mapped_column(String(128))
    system: Mapped[str | None] = mapped_column(String(16))
    amount: Mapped[Money | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    detail: Mapped[dict[str, Any] | None]

    __table_args__ = (Index(None, "probe_result_id"), Index(None, "deal_id"))


class KpiSnapshot(Base):
    """One KPI value for one window and one slice, from the refresh that computed it
    (`as_of`) until a later refresh computed something else for it or no longer had it
    (`superseded_at`; NULL while it is current). Refreshes store changes only
    (kpis/snapshot_rows.py); `kpi_refreshes` lists the refreshes themselves."""

    __tablename__ = "kpi_snapshots"

    id: Mapped[IdPk]
    kpi: Mapped[str] = mapped_column(String(64))
    window: Mapped[str] = mapped_column(String(8))
    dimension: Mapped[str] = mapped_column(String(32))
    dimension_value: Mapped[str] = mapped_column(String(128))
    as_of: Mapped[Timestamp]
    superseded_at: Mapped[Timestamp | None]
    value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any] | None]

    __table_args__ = (
        UniqueConstraint("kpi", "window", "dimension", "dimension_value", "as_of"),
        Index(None, "as_of"),
        Index(None, "superseded_at"),
    )


class KpiRefresh(Base):
    """One stored KPI refresh: the moment every current snapshot row was last confirmed,
    how many values it computed and how many rows it had to write."""

    __tablename__ = "kpi_refreshes"

    id: Mapped[IdPk]
    as_of: Mapped[Timestamp]
    values: Mapped[int] = mapped_column(Integer)
    changed: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("as_of"),)


class Alert(Base):
    """A rule firing for one subject; the fingerprint groups repeats of the same problem."""

    __tablename__ = "alerts"

    id: Mapped[IdPk]
    rule: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(128))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, 16))
    state: Mapped[AlertState] = mapped_column(enum_column(AlertState, 16))
    subject_type: Mapped[str | None] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(String(128))
    deal_id: Mapped[str | None] = mapped_column(String(128))
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None]
    money_at_risk: Mapped[Decimal | None]
    started_at: Mapped[Timestamp]
    last_seen_at: Mapped[Timestamp]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[Timestamp | None]
    resolved_at: Mapped[Timestamp | None]

    __table_args__ = (
        Index(None, "state", "rule"),
        Index(None, "fingerprint", "state"),
        Index(None, "deal_id"),
    )


class AlertNotification(Base):
    __tablename__ = "alert_notifications"

    id: Mapped[IdPk]
    alert_id: Mapped[int] = mapped_column(BigId, ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[NotificationStatus] = mapped_column(enum_column(NotificationStatus, 16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[Timestamp]
    sent_at: Mapped[Timestamp | None]

    __table_args__ = (Index(None, "alert_id"), Index(None, "status", "created_at"))


class Silence(Base):
    """Mutes alerts whose labels match `matchers` between `starts_at` and `ends_at`."""

    __tablename__ = "silences"

    id: Mapped[IdPk]
    matchers: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[Timestamp]
    starts_at: Mapped[Timestamp]
    ends_at: Mapped[Timestamp]

    __table_args__ = (Index(None, "ends_at"),)
