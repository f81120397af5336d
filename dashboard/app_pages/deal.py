"""One deal's whole lifecycle: stages and SLAs, the timeline across the five systems, its
invoices, and every sync step with its span waterfall, retries and replays."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require
from dashboard.roles import Permission
from dashboard.sections import deal
from dashboard.sections.context import page_context

require(Permission.DRILL_DOWN)
ctx = page_context()
st.title("Deal")
deal_id = deal.search(ctx)
if deal_id is None:
    st.info("Search a deal, account or invoice id, or open a deal from any table.")
    st.stop()
trace = deal.read(ctx, deal_id)
if trace is None:
    st.warning(f"No deal {deal_id!r} in the store.")
    st.stop()
deal.header(ctx, trace)
deal.stages(ctx, trace)
deal.timeline(trace)
deal.objects(trace)
deal.sync_steps(trace)
