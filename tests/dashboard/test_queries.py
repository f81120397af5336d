"""The dashboard's own reads on the seeded store, with answers worked out by hand from
tests/dashboard/seed.py (now = 2026-06-30 12:00 UTC)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine

from dashboard.data.funnel import stage_days
from dashboard.data.kpi_readings import SliceFilter
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
