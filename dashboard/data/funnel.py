"""The money funnel: deals and value that reached each step (from the KPI module's funnel
counts by current stage, which only ever moves forward), the conversion from the step
before, and the median days between steps for deals that reached a step in the window."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
from sqlalchemy import Connection, func, select

from dashboard.data.frames import raw_frame, utc_times
from dashboard.data.kpi_readings import KpiBoard, SliceFilter
from store.objects import Contract, Deal, Invoice, Project
from store.states import DEAL_PATH

FUNNEL_STEPS: tuple[tuple[str, str], ...] = (
    ("bookings", "closed_won"),
    ("contracted", "contract_executed"),
    ("activated", "project_activated"),
    ("billed", "first_invoiced"),
    ("posted", "first_posted"),
    ("collected", "first_cash"),
)
_ORDER = list(DEAL_PATH)  # a cancelled deal has left the funnel's path


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


def _step_times(conn: Connection, filters: SliceFilter) -> pd.DataFrame:
    """Per deal, when it reached each funnel step: the objects' own timestamps (each the
    earliest of its stage, docs/lifecycle.md rule 5), the first invoice's for the last three."""
    deals_query = select(Deal.id, Deal.closed_won_at)
    for dimension, value in filters.chosen():
        if dimension == "practice":
            in_project = select(Project.deal_id).where(Project.practice == value)
            deals_query = deals_query.where((Deal.practice == value) | Deal.id.in_(in_project))
        else:
            deals_query = deals_query.where(getattr(Deal, dimension) == value)
    frame = raw_frame(conn, deals_query, ["deal_id", "closed_won"]).set_index("deal_id")
    for model, columns in (
        (Contract, {"contract_executed": Contract.executed_at}),
        (Project, {"project_activated": Project.activated_at}),
        (
            Invoice,
            {
                "first_invoiced": Invoice.issued_at,
                "first_posted": Invoice.posted_at,
                "first_cash": Invoice.paid_at,
            },
        ),
    ):
        names = list(columns)
        rows = conn.execute(
            select(model.deal_id, *(func.min(c) for c in columns.values())).group_by(model.deal_id)
        )
        part = pd.DataFrame([tuple(r) for r in rows], columns=["deal_id", *names])
        frame = frame.join(part.set_index("deal_id"), how="left")
    for column in frame.columns:
        frame[column] = utc_times(frame[column])
    return frame


def stage_days(
    conn: Connection, since: dt.datetime, until: dt.datetime, filters: SliceFilter
) -> pd.DataFrame:
    """step, median_days from the previous step, timed_deals: over deals that reached the step
    in (since, until]."""
    wide = _step_times(conn, filters)
    lo, hi = pd.Timestamp(since), pd.Timestamp(until)
    out = []
    for (_, before), (step, stage) in itertools.pairwise(FUNNEL_STEPS):
        reached = wide[(wide[stage] > lo) & (wide[stage] <= hi) & wide[before].notna()]
        days = (reached[stage] - reached[before]).dt.total_seconds() / 86400
        out.append(
            {
                "step": step,
                "median_days": round(float(days.median()), 2) if len(days) else None,
                "timed_deals": len(days),
            }
        )
    return pd.DataFrame(out, columns=["step", "median_days", "timed_deals"])
