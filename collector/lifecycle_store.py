"""Applying observations to the store in bulk: one round of reads, the rules of
`collector.lifecycle` in memory, one round of writes, all in the caller's transaction.

A batch of a few thousand spans with a few hundred stage changes costs a dozen statements,
not a dozen per event, which keeps lifecycle derivation off the ingest critical path.

The statements go through the raw DB-API connection (as the span insert does), with each
row's parameters made by one generated function per table instead of SQLAlchemy's
per-parameter processing: on SQLite prepared statements run by the sqlite3 executemany
(events one by one, so `rowcount` tells which were new); on PostgreSQL one
`INSERT ... SELECT FROM unnest(<binary arrays>)` per table (events with ON CONFLICT DO
NOTHING RETURNING the keys that went in) and the updates pipelined in id order. Lookups
take the ids as one parameter (`json_each` / `= ANY`). A batch with no new event stops
after the event insert.

The values stored are the ones SQLAlchemy stores for the same rows (timestamps as UTC text
on SQLite, money as a float there, JSON as its text, the JSON `null` for a JSON column set
to None), so every reader of these tables sees what it saw before;
tests/collector/test_lifecycle_store.py checks it. One difference: a redelivered event now
goes to ON CONFLICT instead of being looked up first, and on PostgreSQL that spends a value
of the id sequence, so event ids can have gaps.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Dialect,
    Enum,
    Integer,
    Numeric,
    Table,
    case,
)
from sqlalchemy.dialects import postgresql, sqlite

from collector import lifecycle as rules
from collector.lifecycle import Observation, Row
from store.base import UTCDateTime
from store.objects import BillableItem, Contract, Deal, Invoice, Payment, Project
from store.states import ObjectType
from store.telemetry import LifecycleEvent, WebhookSource

# Insert order respects the foreign keys.
MODELS: dict[ObjectType, Any] = {
    ObjectType.DEAL: Deal,
    ObjectType.CONTRACT: Contract,
    ObjectType.PROJECT: Project,
    ObjectType.INVOICE: Invoice,
    ObjectType.BILLABLE_ITEM: BillableItem,
    ObjectType.PAYMENT: Payment,
}
_EVENTS: Table = LifecycleEvent.__table__  # type: ignore[assignment]
_UTC = dt.UTC

Convert = Callable[[Any], Any]


# -- values in and out, per backend -------------------------------------------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
    return value if value.tzinfo is _UTC else value.astimezone(_UTC)


def _sqlite_time(value: dt.datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME text, of the UTC time (store.base.UTCDateTime).
    if value is None:
        return None
    if value.tzinfo is _UTC:  # the common case: no conversion, drop "+00:00"
        return value.isoformat(" ", "microseconds")[:26]
    return _utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _pg_time(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _float(value: Any) -> float | None:
    # SQLite has no decimal type: SQLAlchemy binds Numeric as a float there.
    return None if value is None else float(value)


def _decimal(value: Any) -> Decimal:
    # One element type per PostgreSQL array: an int (an amount of 0) becomes a Decimal.
    return value if type(value) is Decimal else Decimal(value if type(value) is int else str(value))


def _enum(allowed: frozenset[str]) -> Convert:
    def convert(value: Any) -> str:
        # A plain str (psycopg would dump an Enum member by its name), refused if it is not
        # one of the enum's values, as SQLAlchemy's Enum refuses it.
        text = str(value)
        if text not in allowed:
            raise LookupError(f"{value!r} is not among the defined enum values")
        return text

    return convert


def _json(value: Any) -> str:
    # SQLAlchemy's JSON binds None as the JSON `null` (none_as_null=False).
    return "null" if value is None else json.dumps(value)


def _bind(column: Column[Any], dialect: str) -> Convert | None:
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return _sqlite_time if dialect == "sqlite" else _pg_time
    if isinstance(kind, JSON):
        return _json
    if isinstance(kind, Enum):
        return _enum(frozenset(kind.enums))
    if isinstance(kind, Numeric):
        return _float if dialect == "sqlite" else _decimal
    return None


def _pg_result_time(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(_UTC)


def _result(column: Column[Any], dialect: Dialect) -> Convert | None:
    if dialect.name == "sqlite":
        # SQLAlchemy's own result processing: timestamps, decimals, booleans, JSON.
        process: Convert | None = column.type.dialect_impl(dialect).result_processor(dialect, None)
        return process
    # psycopg returns Decimal, bool and parsed JSON already; timestamps in the session's
    # time zone.
    return _pg_result_time if isinstance(column.type, UTCDateTime) else None


def _placeholder(column: Column[Any], dialect: str) -> str:
    if dialect == "sqlite":
        return "?"
    return "%s::jsonb" if isinstance(column.type, JSON) else "%s"


def _pg_array(column: Column[Any]) -> tuple[str, str]:
    """The element type of a PostgreSQL array carrying the column's values, and the cast
    from it (JSON travels as its text)."""
    kind = column.type
    if isinstance(kind, JSON):
        return "text", "::jsonb"
    if isinstance(kind, UTCDateTime):
        return "timestamptz", ""
    if isinstance(kind, Boolean):
        return "boolean", ""
    if isinstance(kind, Numeric):
        return "numeric", ""
    if isinstance(kind, Integer):
        return "bigint", ""
    return "text", ""


def _pg_insert_many(table: Table, columns: Sequence[Column[Any]]) -> str:
    """One INSERT of many rows on PostgreSQL: one array parameter per column, unnested in
    order (one statement and one round trip instead of one per row)."""
    arrays = [_pg_array(c) for c in columns]
    names = [c.name for c in columns]
    return (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"SELECT {', '.join(f'v.{n}{cast}' for n, (_, cast) in zip(names, arrays, strict=True))} "
        f"FROM unnest({', '.join(f'%b::{kind}[]' for kind, _ in arrays)}) AS v({', '.join(names)})"
    )


def _id_in(dialect: str) -> str:
    """`IN` a list of ids given as one parameter."""
    return "IN (SELECT value FROM json_each(?))" if dialect == "sqlite" else "= ANY(%b)"


@dataclass(frozen=True)
class _Statements:
    """The raw statements and value conversions of one table on one backend."""

    columns: tuple[str, ...]
    binds: tuple[Convert | None, ...]
    results: tuple[tuple[int, Convert], ...]
    select: str  # one parameter: the ids (a JSON array on SQLite, a list on PostgreSQL)
    deal_of: str  # id, deal_id; the same parameter
    insert: str
    insert_many: str  # SQLite: `insert` by executemany; PostgreSQL: arrays, one execute
    update: str | None  # every column but the id, then the id
    # A row's parameters for `insert` and `update`; `now` (converted) is the time stamp.
    insert_values: Callable[[Row, Any], tuple[Any, ...]]
    update_values: Callable[[Row, Any], tuple[Any, ...]]

    def read(self, record: Sequence[Any]) -> Row:
        values = list(record)
        for i, process in self.results:
            values[i] = process(values[i])
        return dict(zip(self.columns, values, strict=True))


def _row_function(
    columns: Sequence[str], binds: Sequence[Convert | None], stamped: set[str], id_last: bool
) -> Callable[[Row, Any], tuple[Any, ...]]:
    """`(row, now) -> parameters`: one generated function per table and statement, so a row
    costs one call with each conversion inline (absent keys are NULL; a JSON column always
    goes through `_json`, which makes None the JSON null as SQLAlchemy does)."""
    order = [*columns[1:], columns[0]] if id_last else list(columns)
    env: dict[str, Any] = {"_json": _json}
    parts = []
    for name in order:
        bind = binds[columns.index(name)]
        if name in stamped:
            parts.append("now")
        elif bind is None:
            parts.append(f"get({name!r})")
        elif bind is _json:
            parts.append(f"_json(get({name!r}))")
        else:
            env[f"_{name}"] = bind
            parts.append(f"(None if (v := get({name!r})) is None else _{name}(v))")
    source = f"def values(row, now):\n    get = row.get\n    return ({', '.join(parts)},)\n"
    exec(compile(source, f"<lifecycle_store values {len(columns)}>", "exec"), env)
    function: Callable[[Row, Any], tuple[Any, ...]] = env["values"]
    return function


def _statements(table: Table, dialect: Dialect, *, skip: tuple[str, ...] = ()) -> _Statements:
    name = dialect.name
    columns = [c for c in table.columns if c.name not in skip]
    names = tuple(c.name for c in columns)
    marks = [_placeholder(c, name) for c in columns]
    key = "id" if "id" in names else "dedup_key"
    insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(marks)})"
    update = None
    if key == "id":
        assert names[0] == "id", table.name  # _persist moves it last for WHERE
        sets = ", ".join(f"{n} = {m}" for n, m in zip(names, marks, strict=True) if n != "id")
        update = f"UPDATE {table.name} SET {sets} WHERE id = {'?' if name == 'sqlite' else '%s'}"
    results = tuple(
        (i, process)
        for i, column in enumerate(columns)
        if (process := _result(column, dialect)) is not None
    )
    binds = tuple(_bind(c, name) for c in columns)
    return _Statements(
        columns=names,
        binds=binds,
        results=results,
        select=f"SELECT {', '.join(names)} FROM {table.name} WHERE {key} {_id_in(name)}",
        deal_of=f"SELECT id, deal_id FROM {table.name} WHERE id {_id_in(name)}",
        insert=insert,
        insert_many=insert if name == "sqlite" else _pg_insert_many(table, columns),
        update=update,
        insert_values=_row_function(
            names, binds, {"created_at", "updated_at", "recorded_at"}, id_last=False
        ),
        update_values=_row_function(names, binds, {"updated_at"}, id_last=key == "id"),
    )


@dataclass(frozen=True)
class _Backend:
    objects: dict[ObjectType, _Statements]
    events: _Statements  # lifecycle_events without its id
    insert_event: str  # ... ON CONFLICT DO NOTHING
    derived: str  # id, dedup_key, occurred_at by dedup_key
    move_derived: str
    time: Convert
    read_time: Convert
    ids: Callable[[Sequence[str]], Any]


_BACKENDS: dict[str, _Backend] = {}


def _backend(dialect: Dialect) -> _Backend:
    backend = _BACKENDS.get(dialect.name)
    if backend is None:
        sqlite = dialect.name == "sqlite"
        events = _statements(_EVENTS, dialect, skip=("id",))
        mark = "?" if sqlite else "%s"
        backend = _Backend(
            objects={t: _statements(m.__table__, dialect) for t, m in MODELS.items()},
            events=events,
            insert_event=events.insert_many
            + " ON CONFLICT DO NOTHING"
            + ("" if sqlite else " RETURNING dedup_key"),
            derived=(
                "SELECT id, dedup_key, occurred_at FROM lifecycle_events "
                f"WHERE dedup_key {_id_in(dialect.name)}"
            ),
            move_derived=(
                f"UPDATE lifecycle_events SET occurred_at = {mark}, trace_id = {mark}, "
                f"span_id = {mark} WHERE id = {mark}"
            ),
            time=_sqlite_time if sqlite else _pg_time,
            read_time=_result(_EVENTS.c.occurred_at, dialect) or _pg_result_time,
            ids=json.dumps if sqlite else list,
        )
        _BACKENDS[dialect.name] = backend
    return backend


class LifecycleApplier:
    def __init__(self, conn: Connection, now: dt.datetime) -> None:
        self.conn = conn
        self.now = now
        self.rows: dict[ObjectType, dict[str, Row]] = {t: {} for t in MODELS}
        self.new: dict[ObjectType, set[str]] = {t: set() for t in MODELS}
        self.dirty: dict[ObjectType, set[str]] = {t: set() for t in MODELS}
        self._sql = _backend(conn.dialect)
        self._now = self._sql.time(now)
        self._sqlite = conn.dialect.name == "sqlite"
        self._dbapi: Any = None

    def _cursor(self) -> Any:
        if self._dbapi is None:
            self._dbapi = self.conn.connection.dbapi_connection
        return self._dbapi.cursor()

    def _select(self, statement: str, ids: Iterable[str]) -> list[Any]:
        wanted = sorted(ids)
        if not wanted:
            return []
        cursor = self._cursor()
        try:
            cursor.execute(statement, (self._sql.ids(wanted),))
            rows: list[Any] = cursor.fetchall()
        finally:
            cursor.close()
        return rows

    def _executemany(self, statement: str, params: Sequence[Sequence[Any]]) -> None:
        if not params:
            return
        cursor = self._cursor()
        try:
            cursor.executemany(statement, params)
        finally:
            cursor.close()

    def _insert_many(self, statement: str, params: Sequence[Sequence[Any]]) -> None:
        """Rows in order: by executemany on SQLite, as arrays of columns on PostgreSQL."""
        if not params or self._sqlite:
            self._executemany(statement, params)
            return
        cursor = self._cursor()
        try:
            cursor.execute(statement, [list(c) for c in zip(*params, strict=True)])
        finally:
            cursor.close()

    def apply(self, observations: Iterable[Observation]) -> int:
        """Store each new lifecycle event and move its objects; return how many were new."""
        pending = sorted(observations, key=lambda o: o.occurred_at)
        if not pending:
            return 0
        pending = self._resolve_deals(pending)
        events, work = self._event_rows(pending)
        fresh = self._insert_new_events(events)
        if not fresh:
            return 0
        work = [(key, obs, t, oid) for key, obs, t, oid in work if key in fresh]
        self._load(work)
        derived = self._load_derived({obs.deal_id for _, obs, _, _ in work if obs.deal_id})
        for _, obs, object_type, object_id in work:
            if obs.deal_id is None:
                continue
            self._touch(ObjectType.DEAL, obs.deal_id, obs)
            if object_type is ObjectType.DEAL:
                rules.apply_deal(self.rows[ObjectType.DEAL][obs.deal_id], obs)
                continue
            row = self._touch(object_type, object_id, obs)
            if object_type is ObjectType.CONTRACT:
                rules.apply_contract(row, obs)
            elif object_type is ObjectType.PROJECT:
                contract = obs.ids.get("contract")
                rules.apply_project(
                    row, obs, contract is not None and self._exists(ObjectType.CONTRACT, contract)
                )
            elif object_type is ObjectType.BILLABLE_ITEM:
                rules.apply_billable(row, obs)
                invoice = obs.ids.get("invoice")
                if invoice:
                    # The invoice's own event may come later: hold its place until then.
                    self._touch(ObjectType.INVOICE, invoice, obs)
                    row["invoice_id"] = invoice
            elif object_type is ObjectType.INVOICE:
                if rules.apply_invoice(row, obs):
                    self._first(obs, derived)
            elif object_type is ObjectType.PAYMENT and row.get("amount") is None:
                row.update(
                    invoice_id=obs.ids["invoice"],
                    amount=obs.amount or 0,
                    currency=obs.currency or "USD",
                    received_at=obs.occurred_at,
                )
        self._persist(derived)
        return len(fresh)

    # -- reading -----------------------------------------------------------------------------

    def _resolve_deals(self, pending: list[Observation]) -> list[Observation]:
        """Fill in the deal of observations that name only their invoice or item."""
        if all(o.deal_id is not None for o in pending):
            return pending
        found: dict[tuple[str, str], str] = {}
        for kind, object_type in (
            ("invoice", ObjectType.INVOICE),
            ("billable_item", ObjectType.BILLABLE_ITEM),
        ):
            wanted = {o.ids[kind] for o in pending if o.deal_id is None and kind in o.ids}
            for object_id, deal_id in self._select(self._sql.objects[object_type].deal_of, wanted):
                found[(kind, object_id)] = deal_id
        out = []
        for obs in pending:
            if obs.deal_id is None:
                deal = next(
                    (
                        found[(k, obs.ids[k])]
                        for k in ("invoice", "billable_item")
                        if k in obs.ids and (k, obs.ids[k]) in found
                    ),
                    None,
                )
                if deal is not None:
                    obs = Observation(**{**obs.__dict__, "deal_id": deal})
            out.append(obs)
        return out

    def _event_rows(
        self, pending: list[Observation]
    ) -> tuple[list[Row], list[tuple[str, Observation, ObjectType, str]]]:
        events: dict[str, Row] = {}
        work = []
        for obs in pending:
            for object_type, object_id in rules.targets(obs):
                key = f"{obs.dedup_key}:{object_type.value}"
                if key in events:
                    continue
                events[key] = {
                    "dedup_key": key,
                    "object_type": object_type,
                    "object_id": object_id,
                    "deal_id": obs.deal_id,
                    "stage": obs.stage,
                    "occurred_at": obs.occurred_at,
                    "source_system": obs.source_system,
                    "trace_id": obs.trace_id,
                    "span_id": obs.span_id,
                    "amount": obs.amount,
                    "currency": obs.currency,
                    "attributes": dict(obs.details) or None,
                }
                work.append((key, obs, object_type, object_id))
        return list(events.values()), work

    def _insert_new_events(self, events: list[Row]) -> set[str]:
        """Insert the events not stored yet, in order; return the keys of those inserted.

        ON CONFLICT DO NOTHING decides, so an event another collector process stores at the
        same time is new for exactly one of them."""
        if not events:
            return set()
        make, now = self._sql.events.insert_values, self._now
        params = [make(e, now) for e in events]
        fresh: set[str] = set()
        cursor = self._cursor()
        try:
            if self._sqlite:
                # One prepared statement (the sqlite3 module caches it); rowcount says
                # whether the row went in.
                execute = cursor.execute
                insert = self._sql.insert_event
                for event, values in zip(events, params, strict=True):
                    execute(insert, values)
                    if cursor.rowcount == 1:
                        fresh.add(event["dedup_key"])
            else:
                cursor.execute(self._sql.insert_event, [list(c) for c in zip(*params, strict=True)])
                fresh.update(key for (key,) in cursor.fetchall())
        finally:
            cursor.close()
        return fresh

    def _load(self, work: list[tuple[str, Observation, ObjectType, str]]) -> None:
        ids: dict[ObjectType, set[str]] = {t: set() for t in MODELS}
        for _, obs, object_type, object_id in work:
            if obs.deal_id:
                ids[ObjectType.DEAL].add(obs.deal_id)
            ids[object_type].add(object_id)
            for kind, object_type_ in (
                ("contract", ObjectType.CONTRACT),
                ("invoice", ObjectType.INVOICE),
            ):
                if kind in obs.ids:
                    ids[object_type_].add(obs.ids[kind])
        for object_type, wanted in ids.items():
            statements = self._sql.objects[object_type]
            rows = self.rows[object_type]
            for record in self._select(statements.select, wanted):
                row = statements.read(record)
                rows[row["id"]] = row

    def _load_derived(self, deals: set[str]) -> dict[str, Row]:
        keys = [f"derived:{d}:{s}" for d in deals for s in rules.FIRST_OF.values()]
        read_time = self._sql.read_time
        return {
            key: {"id": id_, "dedup_key": key, "occurred_at": read_time(occurred_at)}
            for id_, key, occurred_at in self._select(self._sql.derived, keys)
        }

    # -- in memory ---------------------------------------------------------------------------

    def _exists(self, object_type: ObjectType, object_id: str) -> bool:
        return object_id in self.rows[object_type]

    def _touch(self, object_type: ObjectType, object_id: str, obs: Observation) -> Row:
        rows = self.rows[object_type]
        if object_id not in rows:
            row: Row = {"id": object_id}
            if object_type is not ObjectType.DEAL:
                row["deal_id"] = obs.deal_id
            if object_type is ObjectType.INVOICE:
                row.update(has_exception=False, amount_paid=0)
            if object_type is ObjectType.BILLABLE_ITEM:
                row.update(rules.new_billable(obs))
            rows[object_id] = row
            self.new[object_type].add(object_id)
        self.dirty[object_type].add(object_id)
        return rows[object_id]

    def _first(self, obs: Observation, derived: dict[str, Row]) -> None:
        """The deal's first_invoiced / first_posted / first_cash, at the earliest invoice."""
        stage = rules.FIRST_OF[obs.stage]
        key = f"derived:{obs.deal_id}:{stage}"
        existing = derived.get(key)
        if existing is not None and existing["occurred_at"] <= obs.occurred_at:
            return
        derived[key] = {
            **(existing or {}),
            "dedup_key": key,
            "occurred_at": obs.occurred_at,
            "trace_id": obs.trace_id,
            "span_id": obs.span_id,
            "source_system": obs.source_system,
            "deal_id": obs.deal_id,
            "stage": stage,
            "changed": True,
        }
        rules.apply_first(self.rows[ObjectType.DEAL][obs.deal_id or ""], stage, obs.occurred_at)

    # -- writing -----------------------------------------------------------------------------

    def _persist(self, derived: dict[str, Row]) -> None:
        now = self._now
        for object_type, statements in self._sql.objects.items():
            rows = self.rows[object_type]
            new_ids, dirty_ids = self.new[object_type], self.dirty[object_type]
            # Every column is written: an absent one is NULL, as its default is (the
            # exceptions are set in _touch). Updates one by one in id order, as before (on
            # PostgreSQL in one pipeline), so concurrent writers lock rows in one order.
            make = statements.insert_values
            self._insert_many(statements.insert_many, [make(rows[i], now) for i in sorted(new_ids)])
            if statements.update is not None:
                make = statements.update_values
                self._executemany(
                    statements.update, [make(rows[i], now) for i in sorted(dirty_ids - new_ids)]
                )
        changed = [d for d in derived.values() if d.get("changed")]
        self._insert_many(
            self._sql.events.insert_many,
            [
                self._sql.events.insert_values(
                    {**d, "object_type": ObjectType.DEAL, "object_id": d["deal_id"]}, now
                )
                for d in changed
                if "id" not in d
            ],
        )
        time = self._sql.time
        self._executemany(
            self._sql.move_derived,
            [
                [time(d["occurred_at"]), d["trace_id"], d["span_id"], d["id"]]
                for d in changed
                if "id" in d
            ],
        )


def note_webhook_sources(conn: Connection, counts: Mapping[str, int], at: dt.datetime) -> None:
    """Per CloudEvent source, `at` as its latest event (unless a later one is noted) and
    `counts[source]` more events, in the caller's transaction."""
    table = WebhookSource.__table__
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(
        [{"source": s, "last_received_at": at, "events": n} for s, n in sorted(counts.items())]
    )
    new = statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.source],
            set_={
                "last_received_at": case(
                    (new.last_received_at > table.c.last_received_at, new.last_received_at),
                    else_=table.c.last_received_at,
                ),
                "events": table.c.events + new.events,
            },
        )
    )
