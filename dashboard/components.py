"""Pieces several pages draw: links into a deal, empty states, the page's user guard."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from dashboard.resources import allowed
from dashboard.roles import Permission
from dashboard.routes import DEAL_PAGE


def deal_link(deal_id: str | None, label: str | None = None) -> None:
    """A link to the deal's page for roles that may drill down; the id as text otherwise."""
    if not deal_id:
        return
    if allowed(Permission.DRILL_DOWN):
        st.page_link(DEAL_PAGE, label=label or f"Deal {deal_id}", query_params={"deal": deal_id})
    else:
        st.write(label or deal_id)


def deal_picker(deal_ids: Iterable[object], key: str, label: str = "Open a deal") -> None:
    """Open any deal of a table: pick it, follow the link (drill-down roles only)."""
    if not allowed(Permission.DRILL_DOWN):
        return
    deals = list(dict.fromkeys(str(d) for d in deal_ids if d is not None and str(d) != "nan"))
    if not deals:
        return
    chosen = st.selectbox(label, deals, key=key)
    deal_link(chosen)


def require(permission: Permission) -> None:
    """Stop a page its user may not open (navigation does not list it, this is the lock)."""
    if not allowed(permission):
        st.error("Your role cannot open this page.")
        st.stop()


def empty_store() -> None:
    st.info(
        "No deals in the store yet. To see the dashboard with months of history, start the "
        "demo: `make run` (or `throughline demo`). To watch your own systems, point "
        "`systems.*` in throughline.yaml at them and send telemetry to the collector "
        "(README: *Sending us your telemetry*).",
        icon=":material/info:",
    )
