"""The money funnel: deals and value that reached each step (from the KPI module's funnel
counts by current stage, which only ever moves forward), the conversion from the step
before, and the median days between steps for deals that reached a step in the window."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
from sqlalchemy import Connection, func, select

from dashboard.data.kpi_readings import KpiBoard, SliceFilter
from store.objects import Deal, Project
from store.states import DealStage
from store.telemetry import LifecycleEvent

FUNNEL_STEPS: tuple[tuple[str, str], ...] = (
    ("bookings", "closed_won"),
    ("contracted", "contract_executed"),
    ("activated", "project_activated"),
    ("billed", "first_invoiced"),
    ("posted", "first_posted"),
    ("collected", "first_cash"),
)
_ORDER = [s.value for s in DealStage]


def funnel_table(board: KpiBoard) -> pd.DataFrame:
    """step, stage, deals, value, conversion (share of the previous step's deals)."""
    rows = []
    for step, stage in FUNNEL_STEPS:
        at_or_after = _ORDER[_ORDER.index(stage) :]
        deals = sum(int(board.value(f"funnel_count_{s}") or 0) for s in at_or_after)
        value = sum(float(board.value(f"funnel_value_{s}") or 0.0) for s in at_or_after)
        rows.append({"step": step, "stage": stage, "deals": deals, "value": round(value, 2)})
    frame = pd.DataFrame(rows)
    previous = frame["deals"].shift(1)
    frame["conversion"] = (frame["deals"] / previous).where(previous > 0)
    return frame


def stage_days(
    conn: Connection, since: dt.datetime, until: dt.datetime, filters: SliceFilter
) -> pd.DataFrame:
    """step, median_days from the previous step, timed_deals: over deals that reached the step
    in (since, until]."""
    stages = [stage for _, stage in FUNNEL_STEPS]
    # Only deals that reached a step in the window (the stage/time index finds them).
    recent = (
        select(LifecycleEvent.deal_id)
        .where(LifecycleEvent.stage.in_(stages[1:]))
        .where(LifecycleEvent.occurred_at > since)
        .where(LifecycleEvent.occurred_at <= until)
        .where(LifecycleEvent.object_type == "deal")
    )
    query = (
        select(LifecycleEvent.deal_id, LifecycleEvent.stage, func.min(LifecycleEvent.occurred_at))
        .where(LifecycleEvent.object_type == "deal")
        .where(LifecycleEvent.stage.in_(stages))
        .where(LifecycleEvent.deal_id.in_(recent))
        .group_by(LifecycleEvent.deal_id, LifecycleEvent.stage)
    )
    chosen = filters.chosen()
    if chosen:
        deals = select(Deal.id)
        for dimension, value in chosen:
            if dimension == "practice":
                in_project = select(Project.deal_id).where(Project.practice == value)
                deals = deals.where((Deal.practice == value) | Deal.id.in_(in_project))
            else:
                deals = deals.where(getattr(Deal, dimension) == value)
        query = query.where(LifecycleEvent.deal_id.in_(deals))
    result = conn.execute(query)
    events = pd.DataFrame(result.fetchall(), columns=["deal_id", "stage", "at"])
    out = []
    if events.empty:
        return pd.DataFrame(columns=["step", "median_days", "timed_deals"])
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    wide = events.pivot(index="deal_id", columns="stage", values="at")
    lo, hi = pd.Timestamp(since), pd.Timestamp(until)
    for (_, before), (step, stage) in itertools.pairwise(FUNNEL_STEPS):
        if before not in wide or stage not in wide:
            out.append({"step": step, "median_days": None, "timed_deals": 0})
            continue
        reached = wide[(wide[stage] > lo) & (wide[stage] <= hi) & wide[before].notna()]
        days = (reached[stage] - reached[before]).dt.total_seconds() / 86400
        out.append(
            {
                "step": step,
                "median_days": round(float(days.median()), 2) if len(days) else None,
                "timed_deals": len(days),
            }
        )
    return pd.DataFrame(out)
