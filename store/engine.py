"""Engines and sessions for the embedded SQLite default and for PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str | URL) -> URL:
    """Pick the drivers we ship: psycopg 3 for PostgreSQL, the stdlib for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database or "")


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level, so SQLAlchemy's BEGIN (below) is the only one issued
    # and PRAGMAs run outside a transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str | URL, *, immediate: bool = False, **kwargs: Any) -> Engine:
    """Create an engine; on SQLite with WAL, foreign keys on and the parent folder made.

    `immediate=True` (for processes that read then write, such as outbox workers) makes
    SQLite take the write lock at BEGIN, so concurrent writers wait on busy_timeout instead
    of failing with "database is locked" when a read transaction upgrades to a write.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _begin_immediate if immediate else _begin_deferred)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
