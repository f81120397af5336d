"""Who may do what, and what they did: API tokens, dashboard users, the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, IdPk, Timestamp
from store.states import Role, enum_column


class ApiToken(Base):
    """An API token, kept only as its SHA-256 digest; `scopes` is space-separated
    (`ingest`, `read`, `replay`, `admin`)."""

    __tablename__ = "api_tokens"

    id: Mapped[IdPk]
    name: Mapped[str] = mapped_column(String(128))
    token_sha256: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[Timestamp]
    expires_at: Mapped[Timestamp | None]
    last_used_at: Mapped[Timestamp | None]
    revoked_at: Mapped[Timestamp | None]

    __table_args__ = (UniqueConstraint("token_sha256"), UniqueConstraint("name"))


class User(Base):
    """A local dashboard account; the password is kept only as a bcrypt hash."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(128), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(enum_column(Role, 16))
    created_at: Mapped[Timestamp]
    disabled_at: Mapped[Timestamp | None]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[IdPk]
    at: Mapped[Timestamp]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None]
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "at"), Index(None, "actor", "at"))
