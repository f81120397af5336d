"""What every page shares within a session: the settings (read once per session from the
same file and THROUGHLINE_* environment as the command line), the store engine (created on
first use and shared through `st.cache_resource`, never at import), the clock, the user."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import streamlit as st
from sqlalchemy import Engine

from dashboard.accounts import SignedInUser
from dashboard.roles import Permission, can
from throughline.config import ConfigError, Settings, find_config_file, load_settings

SETTINGS_KEY = "settings"
USER_KEY = "user"
CLOCK_KEY = "clock"
"""A fixed `now` (aware datetime) in session state; tests inject time through it."""


def app_settings() -> Settings:
    if SETTINGS_KEY not in st.session_state:
        try:
            st.session_state[SETTINGS_KEY] = load_settings(find_config_file(None, os.environ))
        except ConfigError as exc:
            st.error(f"The configuration has {len(exc.problems)} problem(s):")
            st.code("\n".join(str(p) for p in exc.problems))
            st.stop()
    settings: Settings = st.session_state[SETTINGS_KEY]
    return settings


def settings_fingerprint(settings: Settings) -> str:
    """A cache key standing for the settings (cached queries take the settings unhashed)."""
    return hashlib.sha1(settings.model_dump_json().encode()).hexdigest()


@st.cache_resource(show_spinner=False)
def store_engine(url: str) -> Engine:
    """One engine (and connection pool) per database URL for the server's lifetime."""
    from store.engine import make_engine

    return make_engine(url)


def engine() -> Engine:
    return store_engine(app_settings().database.url)


def now() -> dt.datetime:
    fixed = st.session_state.get(CLOCK_KEY)
    return fixed if isinstance(fixed, dt.datetime) else dt.datetime.now(dt.UTC)


def minute(moment: dt.datetime) -> dt.datetime:
    """`moment` to the minute: the time cached queries are keyed by."""
    return moment.replace(second=0, microsecond=0)


def current_user() -> SignedInUser | None:
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, SignedInUser) else None


def allowed(permission: Permission) -> bool:
    user = current_user()
    return user is not None and can(user.role, permission)
