"""Writing KPI values as `kpi_snapshots` rows: only the values that changed since the
previous refresh, through the driver's executemany.

A refresh computes a value per KPI, window and slice (about 1,300 for the default
windows and slices) every minute, and most are what they were a minute before: storing
them all again would cost ~850 KB per refresh at 10k deals (over 1 GB a day). So a row
holds a value from the refresh that computed it (`as_of`) until one that computed
something else or no longer had it (`superseded_at`), and `kpi_refreshes` lists the
refreshes: the value of a key at moment T is its row with `as_of <= T` and no
`superseded_at <= T`; the current values are the rows not superseded.

The metadata JSON is assembled from pieces that do not change between refreshes
(formula, window, unit, member type: encoded once per KPI and window) and member lists
encoded once per list shared by several values; the rows go to the driver as plain
tuples. What is stored is what `KpiValue.metadata()` describes, plus the first members
and whether the list was cut."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from kpis.definitions import DEFINITIONS
from kpis.slicing import Members, heads
from kpis.values import KpiValue
from store.monitoring import KpiRefresh, KpiSnapshot

MEMBERS_KEPT = 50
"""Members stored with a snapshot; the API lists all of them by recomputing."""

Record = tuple[str, str, str, str, Any, float | None, str, int, str]


def _insert_sql(conn: Connection) -> str:
    postgres = conn.dialect.name == "postgresql"
    mark = _mark(conn)
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
        self._current: dict[Key, Current] | None = None
        """the rows current after this writer's last write (None: read them back)"""
        self._signatures: dict[Key, Signature] = {}
        """per key, what the value written or confirmed last was made of: a value made of
        the same is not encoded again to be compared"""
        self._written_at: dt.datetime | None = None

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

    def _record(self, v: KpiValue, as_of: Any, count: int, tail: str) -> Record:
        """The row of one value, `as_of` as the driver takes it, `tail` its members."""
        head = self._heads.get((v.kpi, v.window, v.unit)) or self._head(v)
        meta = f"{head}, {json.dumps(v.meta)[1:-1]}, {tail}" if v.meta else f"{head}, {tail}"
        value = None if v.value is None else float(v.value)
        key = (v.kpi, v.window, v.dimension, v.dimension_value[:128])
        return (*key, as_of, value, v.unit, count, meta)

    def write(self, conn: Connection, values: Sequence[KpiValue], as_of: dt.datetime) -> int:
        """Store the values as of `as_of` as changes (in the caller's transaction): a row
        for each value that differs from the current one for its key (or is new), the
        current rows of changed or vanished keys superseded at `as_of`, and the refresh
        listed in `kpi_refreshes`. A refresh at the moment of the latest one replaces it;
        one before it is refused (history is only appended). Returns the rows written."""
        latest = latest_refresh(conn)
        if latest is not None and as_of < latest:
            raise SnapshotOrderError(
                f"a KPI refresh as of {as_of.isoformat()} would go before the latest stored "
                f"one ({latest.isoformat()}): snapshots are stored as changes over time, so "
                "refresh at or after it"
            )
        if latest is not None and as_of == latest:
            _undo(conn, as_of)
            self._current, latest = None, latest_refresh(conn)
        if self._current is None or self._written_at != latest:
            self._current, self._signatures = _current_rows(conn), {}
        current, signatures = self._current, self._signatures
        bound = _bind_as_of(conn, as_of)
        fresh: dict[Key, Current] = {}
        seen: dict[Key, Signature] = {}
        changed: list[Record] = []
        listed = _listed(values)
        tails: dict[int, str] = {}
        for v in values:
            key = (v.kpi, v.window, v.dimension, v.dimension_value[:128])
            count, head = listed[id(v.members)]
            signature = (v.value, v.unit, count, head, v.meta)
            before = current.get(key)
            seen[key] = signature
            if before is not None and signatures.get(key) == signature:
                fresh[key] = before  # what this writer stored for it, unchanged
                continue
            tail = tails.get(id(v.members))
            if tail is None:
                tail = tails[id(v.members)] = _members_tail(count, head)
            record = self._record(v, bound, count, tail)
            if before is not None and _same(before, (record[5], record[6], record[7], record[8])):
                fresh[key] = before
            else:
                changed.append(record)
        gone = [entry[0] for k, entry in current.items() if fresh.get(k) is not entry]
        for start in range(0, len(gone), _CHUNK):
            chunk = gone[start : start + _CHUNK]
            conn.exec_driver_sql(_supersede_sql(conn, len(chunk)), (bound, *chunk))
        if changed:
            conn.exec_driver_sql(_insert_sql(conn), changed)
            written = conn.exec_driver_sql(
                'SELECT id, kpi, "window", dimension, dimension_value FROM kpi_snapshots '
                f"WHERE as_of = {_mark(conn)}",
                (bound,),
            ).all()
            new_ids = {(r[1], r[2], r[3], r[4]): r[0] for r in written}
            for r in changed:
                fresh[r[:4]] = (new_ids[r[:4]], r[5], r[6], r[7], r[8])
        conn.execute(
            insert(KpiRefresh).values(as_of=as_of, values=len(values), changed=len(changed))
        )
        self._current, self._signatures, self._written_at = fresh, seen, as_of
        return len(changed)


def _listed(values: Sequence[KpiValue]) -> dict[int, tuple[int, list[str]]]:
    """Per members object (several values share one, keyed by its id()): its count and
    first members."""
    owners = {id(v.members): v for v in values}
    members = [v.members for v in owners.values() if isinstance(v.members, Members)]
    listed = {
        id(m): (len(m), head) for m, head in zip(members, heads(members, MEMBERS_KEPT), strict=True)
    }
    for key, v in owners.items():
        if key not in listed:  # a plain list of ids
            listed[key] = (v.member_count, v.member_ids(MEMBERS_KEPT))
    return listed


def _members_tail(count: int, head: list[str]) -> str:
    """The end of a value's meta JSON: its first members and whether the list was cut."""
    # sorted: which rows come first differs between a full and an incremental computation,
    # and a new order alone is not a change worth a new row
    cut = "true" if count > MEMBERS_KEPT else "false"
    return f'"members": {encode_ids(sorted(head))}, "members_truncated": {cut}}}'


class SnapshotOrderError(ValueError):
    """A refresh before the latest stored one: snapshot history is only appended."""


Key = tuple[str, str, str, str]
Signature = tuple[Any, str, int, list[str], dict[str, Any]]
"""value, unit, member count, first members (in listed order) and meta of a KpiValue"""
Current = tuple[int, float | None, str, int, "str | dict[str, Any]"]
"""A current row: its id, value, unit, member count and meta (the JSON text this writer
stored, or what the driver read back: text on SQLite, an object from PostgreSQL's
jsonb)."""
_CHUNK = 5000
"""ids per UPDATE (SQLite binds at most 32,766 parameters)"""

_T = KpiSnapshot.__table__.c
CURRENT = KpiSnapshot.superseded_at.is_(None)
"""The rows of the latest refresh: those no later refresh superseded."""


def _mark(conn: Connection) -> str:
    return "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"


def _supersede_sql(conn: Connection, count: int) -> str:
    m = _mark(conn)
    return f"UPDATE kpi_snapshots SET superseded_at = {m} WHERE id IN ({', '.join([m] * count)})"


def latest_refresh(conn: Connection) -> dt.datetime | None:
    """The moment of the latest stored refresh (None before the first)."""
    value: dt.datetime | None = conn.execute(select(func.max(KpiRefresh.as_of))).scalar()
    return value


def _bind_as_of(conn: Connection, as_of: dt.datetime) -> Any:
    """`as_of` as the driver takes it (the raw insert skips SQLAlchemy's processing)."""
    bind = _T.as_of.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return bind(as_of) if bind is not None else as_of


def _undo(conn: Connection, as_of: dt.datetime) -> None:
    """Take back the refresh stored at `as_of`: its rows go, the rows it superseded are
    current again."""
    conn.execute(delete(KpiSnapshot).where(_T.as_of == as_of))
    conn.execute(update(KpiSnapshot).where(_T.superseded_at == as_of).values(superseded_at=None))
    conn.execute(delete(KpiRefresh).where(KpiRefresh.as_of == as_of))


def _current_rows(conn: Connection) -> dict[Key, Current]:
    """The rows no refresh has superseded, straight from the driver."""
    rows = conn.exec_driver_sql(
        'SELECT kpi, "window", dimension, dimension_value, id, value, unit, member_count, '
        "meta FROM kpi_snapshots WHERE superseded_at IS NULL"
    )
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5], r[6], r[7], r[8] or "{}") for r in rows}


def _same(before: Current, now: tuple[float | None, str, int, str]) -> bool:
    """Whether a value's new (value, unit, member count, meta text) is what is current."""
    if before[1:4] != now[:3]:
        return False
    meta = before[4]
    return meta == now[3] if isinstance(meta, str) else meta == json.loads(now[3])
