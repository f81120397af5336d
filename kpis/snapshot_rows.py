"""Writing KPI values as `kpi_snapshots` rows, through the driver's executemany.

A refresh writes a row per value (about 1,300 for the default windows and slices), and
through SQLAlchemy's ORM insert the per-row bind processing and JSON encoding cost more
than computing the values. Here the metadata JSON is assembled from pieces that do not
change between refreshes (formula, window, unit, member type: encoded once per KPI and
window) and member lists encoded once per list shared by several values; the rows go to
the driver as plain tuples. What is stored is what `KpiValue.metadata()` describes, plus
the first members and whether the list was cut."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete

from kpis.definitions import DEFINITIONS
from kpis.values import KpiValue
from store.monitoring import KpiSnapshot

MEMBERS_KEPT = 50
"""Members stored with a snapshot; the API lists all of them by recomputing."""

Record = tuple[str, str, str, str, Any, float | None, str, int, str]


def _insert_sql(conn: Connection) -> str:
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
    meta = f"CAST({mark} AS jsonb)" if postgres else mark
    return (
        'INSERT INTO kpi_snapshots (kpi, "window", dimension, dimension_value, as_of, value, '
        f"unit, member_count, meta) VALUES ({', '.join([mark] * 8)}, {meta})"
    )


def encode_ids(ids: list[str]) -> str:
    """`json.dumps(ids)`, joined directly where no id needs escaping (ids are plain
    printable ASCII: the common case, and several times faster)."""
    every = "".join(ids)
    if every.isascii() and every.isprintable() and '"' not in every and "\\" not in every:
        return '["' + '", "'.join(ids) + '"]' if ids else "[]"
    return json.dumps(ids)


class SnapshotWriter:
    """Turns values into rows and stores them; keeps the encoded per-KPI metadata between
    refreshes (it is static)."""

    def __init__(self) -> None:
        self._heads: dict[tuple[str, str, str], str] = {}

    def _head(self, value: KpiValue) -> str:
        """`{"formula": ..., "window": ..., "unit": ..., "member_type": ...` (open)."""
        key = (value.kpi, value.window, value.unit)
        head = self._heads.get(key)
        if head is None:
            definition = DEFINITIONS[value.kpi]
            fixed = {
                "formula": definition.formula,
                "window": value.window,
                "unit": value.unit,
                "member_type": definition.member_type,
            }
            head = self._heads[key] = json.dumps(fixed)[:-1]
        return head

    def records(self, values: Sequence[KpiValue], as_of: Any) -> list[Record]:
        """One row per value, `as_of` as the driver takes it."""
        # per members object (shared by several values): its count and the end of the meta
        listed: dict[int, tuple[int, str]] = {}
        heads = self._heads
        rows: list[Record] = []
        for v in values:
            found = listed.get(id(v.members))
            if found is None:
                count = v.member_count
                ids = encode_ids(v.member_ids(MEMBERS_KEPT))
                cut = "true" if count > MEMBERS_KEPT else "false"
                found = listed[id(v.members)] = (
                    count,
                    f'"members": {ids}, "members_truncated": {cut}}}',
                )
            count, tail = found
            head = heads.get((v.kpi, v.window, v.unit)) or self._head(v)
            meta = f"{head}, {json.dumps(v.meta)[1:-1]}, {tail}" if v.meta else f"{head}, {tail}"
            value = None if v.value is None else float(v.value)
            rows.append(
                (
                    v.kpi,
                    v.window,
                    v.dimension,
                    v.dimension_value[:128],
                    as_of,
                    value,
                    v.unit,
                    count,
                    meta,
                )
            )
        return rows

    def write(self, conn: Connection, values: Sequence[KpiValue], as_of: dt.datetime) -> None:
        """Store the values as of `as_of`, replacing any stored for the same moment (in the
        caller's transaction)."""
        as_of_type = KpiSnapshot.__table__.c.as_of.type
        bind = as_of_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        bound = bind(as_of) if bind is not None else as_of
        conn.execute(delete(KpiSnapshot).where(KpiSnapshot.as_of == as_of))
        rows = self.records(values, bound)
        if rows:
            conn.exec_driver_sql(_insert_sql(conn), rows)
