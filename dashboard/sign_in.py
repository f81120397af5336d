"""The sign-in gate of the entry point: a local account (bcrypt) form, and single sign-on
through `st.login` (OIDC) when an `[auth]` section is configured in Streamlit's secrets."""

from __future__ import annotations

import logging

import streamlit as st
from sqlalchemy import Engine

from dashboard.accounts import SignedInUser, audit, authenticate, sso_user, user_count
from dashboard.resources import USER_KEY, current_user, now

logger = logging.getLogger(__name__)


def sso_configured() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def _sign_in_as(engine: Engine, user: SignedInUser) -> None:
    st.session_state[USER_KEY] = user
    audit(engine, user.username, "dashboard.sign_in", now(), note=f"via {user.via}")


def signed_in_user(engine: Engine) -> SignedInUser | None:
    """The session's user; draws the sign-in page and returns None while there is none."""
    user = current_user()
    if user is not None:
        return user
    if sso_configured() and st.user.is_logged_in:
        email = st.user.get("email")
        found = sso_user(engine, str(email) if email else None)
        if found is not None:
            _sign_in_as(engine, found)
            return found
        st.error(
            f"{email} signed in with the identity provider but has no dashboard account. "
            f"An admin can add it: `throughline users add {email} --role ROLE --sso`."
        )
        st.button("Sign out of single sign-on", on_click=st.logout)
        return None
    st.title("Throughline")
    st.caption("Quote-to-cash: from won deal to collected cash, across five systems.")
    if user_count(engine) == 0:
        st.info(
            "No dashboard accounts yet. Create the first one on the command line: "
            "`throughline users add NAME --role admin` (it asks for the password)."
        )
    with st.form("sign_in"):
        username = st.text_input("User name", key="sign_in_username")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        found = authenticate(engine, username, password)
        if found is None:
            audit(engine, username.strip()[:128] or "?", "dashboard.sign_in_failed", now())
            st.error("Unknown user name or wrong password.")
        else:
            _sign_in_as(engine, found)
            st.rerun()
    if sso_configured():
        st.divider()
        st.button("Sign in with single sign-on", on_click=st.login, key="sso_login")
    return None


def sign_out(engine: Engine, user: SignedInUser) -> None:
    audit(engine, user.username, "dashboard.sign_out", now())
    st.session_state.pop(USER_KEY, None)
    if user.via == "sso":
        st.logout()
