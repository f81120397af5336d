"""Stuck-work probes: deals and invoices past their stage SLA, with money at risk and the
blocking cause (a dead letter, a validation error, a failing system, or no activity)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Connection, func, select

from probes.base import Finding, Outcome, ProbeContext
from probes.stuck_work import stuck_work
from store.monitoring import ProbeResult
from store.states import ProbeKind, ProbeStatus
from throughline.config import Settings


def failing_systems(conn: Connection) -> dict[str, str]:
    """system -> what its latest health probe said, for systems whose latest run failed."""
    latest = (
        select(ProbeResult.probe, func.max(ProbeResult.started_at).label("at"))
        .where(ProbeResult.kind == ProbeKind.HEALTH)
        .group_by(ProbeResult.probe)
        .subquery()
    )
    rows = conn.execute(
        select(ProbeResult.system, ProbeResult.observed)
        .join(
            latest,
            (latest.c.probe == ProbeResult.probe) & (latest.c.at == ProbeResult.started_at),
        )
        .where(ProbeResult.status == ProbeStatus.FAIL)
    )
    return {str(system): str(observed) for system, observed in rows if system}


def _money(value: Any) -> Decimal | None:
    if value is None or pd.isna(value):
        return None
    return Decimal(str(round(float(value), 2)))


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


class StuckWorkProbe:
    kind = ProbeKind.STUCK
    system = None
    flow = None

    def __init__(self, object_type: str, settings: Settings) -> None:
        self.object_type = object_type
        self.name = f"stuck.{object_type}s"
        self.description = (
            f"{object_type}s past their stage SLA, with money at risk "
            f"({settings.kpis.reporting_currency}) and the blocking cause"
        )
        self._settings = settings

    def run(self, ctx: ProbeContext) -> Outcome:
        now = ctx.now()
        with ctx.engine.connect() as conn:
            frame = stuck_work(conn, self._settings, now)
            failing = failing_systems(conn)
        frame = frame[frame["object_type"] == self.object_type]
        findings: list[Finding] = []
        at_risk = 0.0
        for row in frame.to_dict("records"):
            cause = str(row["cause"])
            system = row["system"] if isinstance(row["system"], str) else None
            if cause.startswith("no activity") and system in failing:
                cause = f"{system} failing: {failing[system]}"
            risk = float(row["money_at_risk"]) if pd.notna(row["money_at_risk"]) else 0.0
            at_risk += risk
            findings.append(
                Finding(
                    f"{self.object_type}_past_sla",
                    self.object_type,
                    str(row["object_id"]),
                    deal_id=str(row["deal_id"]),
                    system=system,
                    amount=_money(row["amount"]),
                    currency=row["currency"] if isinstance(row["currency"], str) else None,
                    detail={
                        "stage": row["stage"],
                        "waiting_for": row["waiting_for"],
                        "cause": cause,
                        "clock_started_at": _iso(row["clock_started_at"]),
                        "due_at": _iso(row["due_at"]),
                        "overdue_hours": float(row["overdue_hours"]),
                        "money_at_risk": round(risk, 2),
                        "legal_entity": row["legal_entity"],
                    },
                )
            )
        currency = self._settings.kpis.reporting_currency
        return Outcome(
            ProbeStatus.WARN if findings else ProbeStatus.OK,
            value=round(at_risk, 2),
            observed=(
                f"{len(findings)} {self.object_type}(s) past SLA, {currency} {at_risk:,.0f} at risk"
                if findings
                else f"no {self.object_type} past its SLA"
            ),
            expected="every stage within its SLA",
            detail={
                "count": len(findings),
                "money_at_risk": round(at_risk, 2),
                "currency": currency,
            },
            findings=findings,
        )
