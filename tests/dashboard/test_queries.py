"""The dashboard's own reads on the seeded store, with answers worked out by hand from
tests/dashboard/seed.py (now = 2026-06-30 12:00 UTC)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from dashboard.data.funnel import stage_days
from dashboard.data.kpi_readings import SliceFilter, kpi_history, previous_value
from store.monitoring import KpiSnapshot
from tests.dashboard.seed import NOW


def test_days_between_funnel_steps_over_deals_that_reached_a_step_in_the_window(
    seeded: Engine,
) -> None:
    with seeded.connect() as conn:
        days = stage_days(conn, NOW - dt.timedelta(days=30), NOW, SliceFilter())
    table = {r.step: (r.median_days, r.timed_deals) for r in days.itertuples()}
    assert table["contracted"] == (1.0, 2)  # D1 and D2: executed a day after winning
    assert table["activated"] == (1.0, 1)  # D1 (D4 activated 37 days ago)
    # D1 invoiced 3 days after activation; D4 35 days 4 hours after: median of the two
    assert table["billed"][1] == 2
    assert table["billed"][0] == pytest.approx((3.0 + 35 + 4 / 24) / 2, abs=0.01)
    assert table["posted"] == (0.0, 1)  # D1: posted 6 minutes after invoicing
    assert table["collected"] == (4.0, 1)  # D1: paid 4 days (less 6 minutes) after posting


def test_days_between_steps_follow_the_slice_filters(seeded: Engine) -> None:
    with seeded.connect() as conn:
        days = stage_days(conn, NOW - dt.timedelta(days=30), NOW, SliceFilter(legal_entity="uk"))
    table = {r.step: (r.median_days, r.timed_deals) for r in days.itertuples()}
    assert table["contracted"] == (1.0, 1)  # D2 only
    median, timed = table["activated"]
    assert pd.isna(median) and timed == 0


def test_kpi_history_has_one_point_per_change_and_reaches_the_latest_refresh(
    seeded: Engine,
) -> None:
    """Snapshots are stored as changes: a value that changed between the two seeded
    refreshes has both points; one that did not is still a line up to the latest."""
    with seeded.connect() as conn:
        history = kpi_history(conn, ["backlog", "unbilled_wip"], "30d", "all", "all")
        stored = conn.execute(
            select(func.count()).where(
                KpiSnapshot.kpi == "unbilled_wip", KpiSnapshot.dimension == "all"
            )
        ).scalar()
    earlier = NOW - dt.timedelta(days=30)
    for kpi in ("backlog", "unbilled_wip"):
        points = history[history["kpi"] == kpi]
        assert list(points["as_of"]) == [earlier, NOW]
    backlog = history[history["kpi"] == "backlog"]["value"].tolist()
    assert backlog[0] != backlog[1]  # changed: two stored rows
    assert stored == 1  # unchanged: one stored row, drawn to the latest refresh
    assert history[history["kpi"] == "unbilled_wip"]["value"].tolist() == [0.0, 0.0]
    assert previous_value(history, "backlog", NOW - dt.timedelta(days=1)) == backlog[0]
    assert previous_value(history, "backlog", NOW) == backlog[1]
