"""Backlog and cash forecast: open receivables expected at their due date, plus the backlog
invoiced at the recent monthly rate and collected DSO days later."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Connection, select

from dashboard.data.kpi_readings import SliceFilter
from store.objects import Deal, Invoice, Project
from throughline.config import Settings

DEFAULT_TERMS = dt.timedelta(days=30)


def open_receivables(conn: Connection, settings: Settings, filters: SliceFilter) -> pd.DataFrame:
    """invoice_id, deal_id, expected_at (due date, else issue + 30 days), unpaid (reporting
    currency) of invoices issued and neither paid nor credited."""
    query = (
        select(
            Invoice.id,
            Invoice.deal_id,
            Invoice.amount,
            Invoice.amount_paid,
            Invoice.currency,
            Invoice.issued_at,
            Invoice.due_at,
        )
        .join(Deal, Deal.id == Invoice.deal_id)
        .where(Invoice.issued_at.is_not(None))
        .where(Invoice.stage.not_in(["paid", "credited"]))
    )
    for dimension, value in filters.chosen():
        if dimension == "practice":
            in_project = select(Project.deal_id).where(Project.practice == value)
            query = query.where((Deal.practice == value) | Deal.id.in_(in_project))
        else:
            query = query.where(getattr(Deal, dimension) == value)
    rows = []
    for r in conn.execute(query):
        rate = settings.kpis.fx_rates.get(r.currency or "")
        if rate is None or r.amount is None:
            continue
        unpaid = max(float(r.amount) - float(r.amount_paid or 0), 0.0) * rate
        expected = r.due_at or (r.issued_at + DEFAULT_TERMS)
        rows.append((r.id, r.deal_id, expected, round(unpaid, 2)))
    return pd.DataFrame(rows, columns=["invoice_id", "deal_id", "expected_at", "unpaid"])


def cash_forecast(
    receivables: pd.DataFrame,
    backlog: float | None,
    burn_months: float | None,
    dso_days: float | None,
    now: dt.datetime,
    months: int = 6,
) -> pd.DataFrame:
    """month (first day), source (`open AR` | `backlog`), amount for the next `months`
    months; overdue receivables count in the current month."""
    start = pd.Timestamp(now).tz_convert("UTC").normalize().replace(day=1)
    month_starts = [start + pd.DateOffset(months=k) for k in range(months)]
    rows: list[tuple[pd.Timestamp, str, float]] = []
    expected = pd.to_datetime(receivables["expected_at"], utc=True)
    for k, month in enumerate(month_starts):
        upper = month + pd.DateOffset(months=1)
        mask = expected < upper if k == 0 else (expected >= month) & (expected < upper)
        rows.append((month, "open AR", round(float(receivables.loc[mask, "unpaid"].sum()), 2)))
    if backlog and burn_months and burn_months > 0:
        monthly = backlog / burn_months
        lag = dt.timedelta(days=dso_days or 0.0)
        remaining = backlog
        for k in range(months + 24):
            if remaining <= 0:
                break
            amount = min(monthly, remaining)
            remaining -= amount
            collected = pd.Timestamp(now + dt.timedelta(days=30.4 * (k + 0.5)) + lag)
            month = collected.normalize().replace(day=1)
            if month in month_starts:
                rows.append((month, "backlog", round(amount, 2)))
    frame = pd.DataFrame(rows, columns=["month", "source", "amount"])
    return frame.groupby(["month", "source"], as_index=False)["amount"].sum()
