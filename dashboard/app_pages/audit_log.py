"""The audit log: who signed in, replayed or exported what, and when."""

from __future__ import annotations

import streamlit as st

from dashboard import cached_queries as cq
from dashboard.components import require
from dashboard.roles import Permission
from dashboard.sections.context import page_context

require(Permission.VIEW_AUDIT)
ctx = page_context()
st.title("Audit log")
entries = cq.audit_log(ctx.url)
if entries.empty:
    st.info("Nothing audited yet.")
else:
    st.dataframe(entries, hide_index=True, key="audit_table")
