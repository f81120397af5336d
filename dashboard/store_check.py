"""Refuse to draw pages over a store whose schema is not at head, saying what to run."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard.resources import store_engine
from store import migrate


@st.cache_data(ttl=dt.timedelta(seconds=30), show_spinner=False)
def _revision_gap(url: str) -> tuple[str | None, str]:
    return migrate.current_revision(store_engine(url)), migrate.head_revision()


def require_migrated_store(url: str) -> None:
    current, head = _revision_gap(url)
    if current != head:
        st.error(
            f"The store is at schema revision {current or 'empty'}, not {head}: run "
            "`throughline migrate` (the demo, `make run`, migrates by itself)."
        )
        st.stop()
