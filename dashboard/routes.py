"""The pages of the app, by role, and the paths other pages link to them by."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.roles import Permission, can
from store.states import Role

CASH_PAGE = "app_pages/cash_conversion.py"
HEALTH_PAGE = "app_pages/integration_health.py"
STUCK_PAGE = "app_pages/stuck_work.py"
DEAL_PAGE = "app_pages/deal.py"
AUDIT_PAGE = "app_pages/audit_log.py"


def pages_for(role: Role) -> dict[str, list[Any]]:
    """The navigation a role sees; a page it may not open is not listed at all."""
    sections: dict[str, list[Any]] = {
        "Money": [
            st.Page(CASH_PAGE, title="Cash conversion", icon=":material/payments:", default=True)
        ]
    }
    operations = []
    if can(role, Permission.VIEW_HEALTH):
        operations.append(
            st.Page(HEALTH_PAGE, title="Integration health", icon=":material/monitor_heart:")
        )
    if can(role, Permission.DRILL_DOWN):
        operations.append(st.Page(STUCK_PAGE, title="Stuck work", icon=":material/hourglass_top:"))
        operations.append(st.Page(DEAL_PAGE, title="Deal", icon=":material/timeline:"))
    if operations:
        sections["Operations"] = operations
    if can(role, Permission.VIEW_AUDIT):
        sections["Admin"] = [st.Page(AUDIT_PAGE, title="Audit log", icon=":material/policy:")]
    return sections
