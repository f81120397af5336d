"""Reading a statement straight into a frame: rows from the DBAPI cursor, skipping the
per-value result processing that costs seconds over a hundred thousand rows. Timestamps
arrive as text on SQLite and as datetimes on PostgreSQL; `utc_times` reads both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection


def raw_frame(conn: Connection, statement: Any, columns: Sequence[str]) -> pd.DataFrame:
    result = conn.execute(statement)
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame(rows, columns=list(columns))


def utc_times(values: pd.Series) -> pd.Series:
    present = values.dropna()
    if len(present) and isinstance(present.iloc[0], str):
        return pd.to_datetime(values, utc=True, format="ISO8601")
    return pd.to_datetime(values, utc=True)
