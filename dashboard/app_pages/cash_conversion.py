"""Cash conversion: how fast won deals turn into cash, and where money is stuck."""

from __future__ import annotations

import streamlit as st

from dashboard.components import empty_store, require
from dashboard.roles import Permission
from dashboard.sections import cash
from dashboard.sections.context import page_context

require(Permission.VIEW_KPIS)
ctx = page_context()
st.title("Cash conversion")
board = cash.read_board(ctx)
if not cash.has_deals(board):
    empty_store()
    st.stop()
cash.source_caption(board)
cash.kpi_tiles(ctx, board)
cash.money_funnel(ctx, board)
cash.blockers(ctx)
cash.backlog_forecast(ctx, board)
