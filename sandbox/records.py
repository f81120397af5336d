"""One system's own persistence: a SQLite file of JSON records by collection, in the
system's own payload shape, plus its idempotency keys. Not the Throughline store."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (collection, id)
);
CREATE INDEX IF NOT EXISTS ix_records_updated ON records (collection, updated_at);
CREATE TABLE IF NOT EXISTS counters (collection TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Page:
    records: list[Record]
    total: int
    last_seq: int | None
    has_more: bool


@dataclass(frozen=True)
class StoredResponse:
    body_hash: str
    status: int
    body: Any


class RecordStore:
    """Thread-safe: the HTTP server's threads and the actors share it."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # A sandbox is rebuilt from its seed; durability per write is not worth an fsync.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def next_number(self, collection: str) -> int:
        with self._lock:
            row = self._db.execute(
                "INSERT INTO counters (collection, value) VALUES (?, 1) "
                "ON CONFLICT (collection) DO UPDATE SET value = value + 1 RETURNING value",
                (collection,),
            ).fetchone()
            return int(row[0])

    def insert(self, collection: str, record_id: str, body: Record, at: dt.datetime) -> Record:
        with self._lock:
            self._db.execute(
                "INSERT INTO records (collection, id, updated_at, body) VALUES (?, ?, ?, ?)",
                (collection, record_id, at.isoformat(), json.dumps(body, sort_keys=True)),
            )
        return body

    def replace(self, collection: str, record_id: str, body: Record, at: dt.datetime) -> Record:
        with self._lock:
            cur = self._db.execute(
                "UPDATE records SET body = ?, updated_at = ? WHERE collection = ? AND id = ?",
                (json.dumps(body, sort_keys=True), at.isoformat(), collection, record_id),
            )
            if cur.rowcount != 1:
                raise KeyError(f"{collection}/{record_id}")
        return body

    def get(self, collection: str, record_id: str) -> Record | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM records WHERE collection = ? AND id = ?", (collection, record_id)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def all(self, collection: str) -> list[Record]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM records WHERE collection = ? ORDER BY seq", (collection,)
            ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def find(self, collection: str, filters: Mapping[str, Any]) -> list[Record]:
        return self.page(collection, filters=filters, limit=1_000_000).records

    def page(
        self,
        collection: str,
        *,
        filters: Mapping[str, Any] | None = None,
        updated_since: dt.datetime | None = None,
        after_seq: int = 0,
        offset: int = 0,
        limit: int = 100,
    ) -> Page:
        """Records in insertion order. `filters` map JSON paths (`$.status`) to values."""
        where = ["collection = ?"]
        args: list[Any] = [collection]
        for path, value in (filters or {}).items():
            where.append("json_extract(body, ?) = ?")
            args.extend([path, value])
        if updated_since is not None:
            where.append("updated_at >= ?")
            args.append(updated_since.isoformat())
        clause = " AND ".join(where)
        with self._lock:
            counted = self._db.execute(f"SELECT count(*) FROM records WHERE {clause}", args)
            total = int(counted.fetchone()[0])
            rows = self._db.execute(
                f"SELECT seq, body FROM records WHERE {clause} AND seq > ? "
                "ORDER BY seq LIMIT ? OFFSET ?",
                [*args, after_seq, limit + 1, offset],
            ).fetchall()
        has_more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            records=[dict(json.loads(r[1])) for r in rows],
            total=total,
            last_seq=int(rows[-1][0]) if rows else None,
            has_more=has_more,
        )

    def remembered(self, scope: str, key: str) -> StoredResponse | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body_hash, status, response FROM idempotency_keys "
                "WHERE scope = ? AND key = ?",
                (scope, key),
            ).fetchone()
        if row is None:
            return None
        return StoredResponse(str(row[0]), int(row[1]), json.loads(row[2]))

    def remember(self, scope: str, key: str, body_hash: str, status: int, body: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO idempotency_keys VALUES (?, ?, ?, ?, ?)",
                (scope, key, body_hash, status, json.dumps(body, sort_keys=True)),
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def dump(self) -> dict[str, list[Record]]:
        """Every record by collection, for comparing two worlds record for record."""
        with self._lock:
            rows = self._db.execute("SELECT collection, body FROM records ORDER BY seq").fetchall()
        out: dict[str, list[Record]] = {}
        for collection, body in rows:
            out.setdefault(str(collection), []).append(dict(json.loads(body)))
        return out
