"""Dashboard sign-in: local accounts from the `users` table (bcrypt hashes) and single
sign-on identities mapped to the same table by e-mail; every action audited with its user."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import bcrypt
from sqlalchemy import Engine, func, insert, select

from store.access import AuditEntry, User
from store.states import Role


@dataclass(frozen=True)
class SignedInUser:
    username: str
    role: Role
    via: Literal["password", "sso"]


def _active(engine: Engine, username: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(User.username, User.password_hash, User.role)
            .where(User.username == username)
            .where(User.disabled_at.is_(None))
        ).first()


def authenticate(engine: Engine, username: str, password: str) -> SignedInUser | None:
    """The user if the password matches their bcrypt hash; None for anything else (unknown
    user, disabled, SSO-only account, wrong password) so the form says one thing."""
    row = _active(engine, username.strip())
    if row is None or not row.password_hash or not password:
        return None
    if not bcrypt.checkpw(password.encode(), row.password_hash.encode()):
        return None
    return SignedInUser(row.username, Role(row.role), "password")


def sso_user(engine: Engine, email: str | None) -> SignedInUser | None:
    """An identity the OIDC provider vouched for, if an active account has that name."""
    if not email:
        return None
    row = _active(engine, email)
    return SignedInUser(row.username, Role(row.role), "sso") if row is not None else None


def user_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(User)).scalar_one())


def audit(
    engine: Engine,
    actor: str,
    action: str,
    now: dt.datetime,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    detail: dict[str, Any] | None = None,
    note: str | None = None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(AuditEntry).values(
                at=now,
                actor=actor,
                action=action,
                object_type=object_type,
                object_id=object_id,
                detail=detail,
                note=note,
            )
        )
