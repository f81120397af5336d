"""Reading the store into columnar frames: the objects the collector maintains
(docs/lifecycle.md) and the outbox and probe tables, with timestamps as UTC epoch seconds
and money as floats; for an incremental refresh, only the rows of the deals whose
lifecycle events were recorded after a watermark. The whole object tables are read into
typed pandas frames; the changed deals' rows, the outbox, probe and consultant tables
(few rows each) come straight from the driver as typed numpy columns, the same values
without a frame's fixed cost."""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, text

_EPOCH = pd.Timestamp(0, tz="UTC")
Columns = dict[str, npt.NDArray[Any]]
_CHUNK = 2000

DEAL_COLUMNS = "id, legal_entity, region, practice, currency, amount, stage, closed_won_at"
PROJECT_COLUMNS = "id, deal_id, practice, activated_at"
CONTRACT_COLUMNS = "id, deal_id, currency, value, executed_at"
INVOICE_COLUMNS = (
    "id, deal_id, legal_entity, currency, amount, amount_paid, stage, has_exception, "
    "issued_at, posted_at, paid_at"
)
ITEM_COLUMNS = (
    "id, deal_id, invoice_id, kind, quantity, rate, amount, invoiced_amount, currency, stage, "
    "approved_at, invoiced_at, consultant"
)
CONSULTANT_COLUMNS = "id, practice, legal_entity, weekly_capacity_hours, created_at"
CONSULTANT_NAMES = tuple(c.strip() for c in CONSULTANT_COLUMNS.split(","))

_TIMES = {
    "closed_won_at",
    "activated_at",
    "executed_at",
    "issued_at",
    "posted_at",
    "paid_at",
    "approved_at",
    "invoiced_at",
    "created_at",
    "updated_at",
    "started_at",
    "dead_at",
    "requested_at",
    "finished_at",
}
_NUMBERS = {
    "amount",
    "amount_paid",
    "value",
    "quantity",
    "rate",
    "invoiced_amount",
    "attempt_no",
    "duration_ms",
    "weekly_capacity_hours",
}

OBJECT_TABLES: dict[str, tuple[str, str]] = {
    # frame name -> (table, columns); every table here has a deal key
    "deals": ("deals", DEAL_COLUMNS),
    "projects": ("projects", PROJECT_COLUMNS),
    "contracts": ("contracts", CONTRACT_COLUMNS),
    "invoices": ("invoices", INVOICE_COLUMNS),
    "items": ("billable_items", ITEM_COLUMNS),
}


def epoch_seconds(values: pd.Series) -> pd.Series:
    """Timestamps as read from either backend (SQLite text in UTC, PostgreSQL aware
    datetimes) as float seconds since the epoch, NaN for none."""
    if values.empty:
        return pd.Series([], index=values.index, dtype="float64")
    if values.dtype == object and isinstance(
        values.dropna().iloc[0] if values.notna().any() else None, str
    ):
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    else:
        stamps = pd.to_datetime(values, utc=True)
    return (stamps - _EPOCH).dt.total_seconds()


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if column in _TIMES:
            frame[column] = epoch_seconds(frame[column])
        elif column in _NUMBERS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        elif column == "has_exception":
            frame[column] = frame[column].fillna(False).astype(bool)
    return frame


def _fetch(conn: Connection, statement: Any, params: dict[str, Any]) -> pd.DataFrame:
    """Rows straight from the DBAPI cursor: a frame built from plain tuples is several
    times faster than one built from SQLAlchemy rows."""
    result = conn.execute(statement, params)
    columns = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame(rows, columns=columns, dtype=object)


def read_frame(conn: Connection, sql: str, **params: object) -> pd.DataFrame:
    return _typed(_fetch(conn, text(sql), dict(params)))


SMALL = 100_000
"""Up to this many rows, columns are typed in plain Python and numpy (the rows of the deals
of an incremental refresh): pandas' fixed cost per column is more than the conversion."""


def _epoch(value: Any) -> float:
    """One timestamp as `epoch_seconds` reads it (naive means UTC), NaN for none."""
    if value is None:
        return math.nan
    stamp = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def _epochs(values: Sequence[Any]) -> npt.NDArray[np.float64]:
    """Timestamps as `epoch_seconds` reads them: SQLite's zone-less text parsed by numpy
    (exact to the microsecond, as pandas), anything else one by one."""
    if all(v is None or isinstance(v, str) for v in values):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a zone in the text: parsed below instead
                stamps = np.array(values, dtype="datetime64[us]")
        except (ValueError, Warning):
            pass
        else:
            micros = stamps.astype(np.int64)
            return np.where(np.isnat(stamps), np.nan, micros / 1e6)
    return np.array([_epoch(v) for v in values], dtype=np.float64)


def _column(name: str, values: Sequence[Any]) -> npt.NDArray[Any]:
    """One column of a few rows typed as `_typed` types a frame's."""
    if name in _TIMES:
        return _epochs(values)
    if name in _NUMBERS:
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    if name == "has_exception":
        return np.array([bool(v) for v in values], dtype=bool)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def typed_columns(
    names: Sequence[str], rows: Sequence[Sequence[Any]], small: int = SMALL
) -> Columns:
    """Driver rows as typed numpy columns: in plain Python up to `small` rows, through a
    typed frame for more (the same values either way)."""
    if len(rows) > small:
        frame = _typed(pd.DataFrame(rows, columns=list(names), dtype=object))
        return {name: frame[name].to_numpy() for name in names}
    values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return {name: _column(name, column) for name, column in zip(names, values, strict=True)}


def _read_for_deals(conn: Connection, table: str, columns: str, deal_ids: Sequence[str]) -> Columns:
    key = "id" if table == "deals" else "deal_id"
    mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
    names = [c.strip() for c in columns.split(",")]
    rows: list[Any] = []
    for start in range(0, len(deal_ids), _CHUNK):
        chunk = tuple(deal_ids[start : start + _CHUNK])
        marks = ", ".join([mark] * len(chunk))
        result = conn.exec_driver_sql(
            f"SELECT {columns} FROM {table} WHERE {key} IN ({marks})", chunk
        )
        rows += result.fetchall()
    return typed_columns(names, rows)


@dataclass(frozen=True)
class StoreFrames:
    """The object tables as read at one moment; `events_seen` is the highest
    lifecycle_events.id folded in, the watermark of the next incremental read."""

    deals: pd.DataFrame
    projects: pd.DataFrame
    contracts: pd.DataFrame
    invoices: pd.DataFrame
    items: pd.DataFrame
    events_seen: int
    consultants: Columns = field(default_factory=lambda: typed_columns(CONSULTANT_NAMES, []))
    """PSA consultants and their weekly capacity (not per deal: read whole)"""


def max_event_id(conn: Connection) -> int:
    return int(conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM lifecycle_events")).scalar_one())


def load_store_frames(conn: Connection) -> StoreFrames:
    """Every object row, and the event watermark read first (so nothing recorded while
    reading is missed by the next incremental refresh; at worst it is read twice)."""
    seen = max_event_id(conn)
    frames = {
        name: read_frame(conn, f"SELECT {columns} FROM {table}")
        for name, (table, columns) in OBJECT_TABLES.items()
    }
    return StoreFrames(events_seen=seen, consultants=load_consultants(conn), **frames)


def load_consultants(conn: Connection) -> Columns:
    """Every consultant (a few per practice and entity: read whole at every refresh)."""
    return read_columns(conn, f"SELECT {CONSULTANT_COLUMNS} FROM consultants")


def changed_deals(conn: Connection, after_event_id: int) -> tuple[list[str], int]:
    """Deals with lifecycle events recorded after the watermark, and the new watermark."""
    seen = max_event_id(conn)
    rows = conn.execute(
        text(
            "SELECT DISTINCT deal_id FROM lifecycle_events "
            "WHERE id > :after AND id <= :upto AND deal_id IS NOT NULL"
        ),
        {"after": after_event_id, "upto": seen},
    ).all()
    return [str(r[0]) for r in rows], seen


@dataclass(frozen=True)
class DealRows:
    """The object rows of some deals (those with new lifecycle events), as typed numpy
    columns: what `build_facts` reads, like the frames of `StoreFrames`."""

    deals: Columns
    projects: Columns
    contracts: Columns
    invoices: Columns
    items: Columns


def load_deal_rows(conn: Connection, deal_ids: Sequence[str]) -> DealRows:
    """The rows of `deal_ids` from every object table, one query per table (per 2,000
    deals), straight from the driver."""
    return DealRows(
        **{
            name: _read_for_deals(conn, table, columns, deal_ids)
            for name, (table, columns) in OBJECT_TABLES.items()
        }
    )


def read_columns(conn: Connection, sql: str) -> Columns:
    """A whole (small) table as typed numpy columns, straight from the driver."""
    result = conn.exec_driver_sql(sql)
    names = list(result.keys())
    return typed_columns(names, result.fetchall())


@dataclass(frozen=True)
class IntegrationFrames:
    """The outbox and probe tables as typed numpy columns."""

    messages: Columns
    attempts: Columns
    dead_letters: Columns
    replays: Columns
    probes: Columns


def _headroom_sql(conn: Connection) -> str:
    """remaining / limit from a health result's detail, read by the database (NULL where
    the system sent no rate-limit headers)."""
    if conn.dialect.name == "postgresql":
        remaining = "(detail->>'rate_limit_remaining')::float"
        limit = "(detail->>'rate_limit_limit')::float"
    else:
        remaining = "CAST(json_extract(detail, '$.rate_limit_remaining') AS REAL)"
        limit = "CAST(json_extract(detail, '$.rate_limit_limit') AS REAL)"
    return f"{remaining} / NULLIF({limit}, 0)"


def load_integration_frames(conn: Connection) -> IntegrationFrames:
    """The outbox and probe tables (kept short by retention), read whole."""
    return IntegrationFrames(
        messages=read_columns(
            conn,
            "SELECT id, flow, step, system, idempotency_key, state, created_at FROM sync_messages",
        ),
        attempts=read_columns(
            conn, "SELECT id, message_id, attempt_no, outcome, started_at FROM sync_attempts"
        ),
        dead_letters=read_columns(
            conn, "SELECT id, message_id, flow, system, dead_at FROM dead_letters"
        ),
        replays=read_columns(
            conn,
            "SELECT id, message_id, dead_letter_id, outcome, requested_at, finished_at "
            "FROM replays",
        ),
        probes=read_columns(
            conn,
            "SELECT id, probe, kind, system, flow, status, duration_ms, started_at, "
            f"{_headroom_sql(conn)} AS headroom FROM probe_results",
        ),
    )
