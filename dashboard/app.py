"""The dashboard's entry point: sign-in, the shared filters and the pages a role may open.

Run with `throughline dashboard` (or `streamlit run dashboard/app.py`)."""

from __future__ import annotations

import streamlit as st

from dashboard.cached_queries import dimension_values
from dashboard.filters import sidebar_filters
from dashboard.resources import app_settings, engine
from dashboard.routes import pages_for
from dashboard.sign_in import sign_out, signed_in_user
from dashboard.store_check import require_migrated_store

st.set_page_config(page_title="Throughline", page_icon=":material/account_tree:", layout="wide")

settings = app_settings()
store = engine()
require_migrated_store(settings.database.url)
user = signed_in_user(store)
if user is None:
    st.stop()
assert user is not None

st.sidebar.caption(f"Signed in as **{user.username}** ({user.role.value})")
st.sidebar.button("Sign out", on_click=sign_out, args=(store, user), key="sign_out")
sidebar_filters(settings, dimension_values(settings.database.url))
st.navigation(pages_for(user.role)).run()
