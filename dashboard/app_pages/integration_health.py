"""Integration health: which integration is broken, since when, and is it fixed yet."""

from __future__ import annotations

import streamlit as st

from dashboard.components import require
from dashboard.roles import Permission
from dashboard.sections import health
from dashboard.sections.context import page_context

require(Permission.VIEW_HEALTH)
ctx = page_context()
st.title("Integration health")
health.system_flow_matrix(ctx)
health.probe_states(ctx)
health.dead_letter_groups(ctx)
health.recent_replays(ctx)
health.failed_traces(ctx)
health.findings(ctx)
