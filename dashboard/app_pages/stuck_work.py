"""Stuck work: which deals and invoices are past their stage SLA, why, and for how much."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require
from dashboard.roles import Permission
from dashboard.sections import stuck
from dashboard.sections.context import page_context

require(Permission.DRILL_DOWN)
ctx = page_context()
st.title("Stuck work")
items = stuck.stuck_items(ctx)
stuck.summary(ctx, items)
if items.empty:
    st.success("Nothing is past its stage SLA for these filters.")
else:
    table = stuck.sorted_table(ctx, items)
    stuck.open_a_deal(table)
    stuck.export_csv(table)
stuck.approvals(ctx)
stuck.reconciliation(ctx)
