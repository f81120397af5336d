"""The lifecycle as an OCEL 2.0 JSON event log, for process-mining tools.

Objects: deal, contract, project, invoice, posting (one per posted invoice, id
`ar-posting:<invoice id>` like its idempotency key), payment, billable_item. Events: one
per lifecycle transition, linked to its object and to the deal (the collector stores a
span that moves two objects as two rows; they are merged back into one event here).
Attribute values are strings, as the OCEL 2.0 JSON schema requires.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import IO, Any

from sqlalchemy import Connection, Engine, text

from store.base import UTCDateTime

_TIME = UTCDateTime()

OBJECT_TYPES: dict[str, list[tuple[str, str]]] = {
    "deal": [
        ("name", "string"),
        ("legal_entity", "string"),
        ("region", "string"),
        ("practice", "string"),
        ("currency", "string"),
        ("amount", "float"),
        ("stage", "string"),
    ],
    "contract": [("billing_model", "string"), ("currency", "string"), ("value", "float")],
    "project": [("name", "string"), ("practice", "string")],
    "invoice": [
        ("legal_entity", "string"),
        ("currency", "string"),
        ("amount", "float"),
        ("amount_paid", "float"),
        ("stage", "string"),
    ],
    "posting": [("posted_at", "time")],
    "payment": [("currency", "string"), ("amount", "float")],
    "billable_item": [
        ("kind", "string"),
        ("currency", "string"),
        ("quantity", "float"),
        ("rate", "float"),
        ("amount", "float"),
    ],
}
EVENT_ATTRIBUTES = [("source_system", "string"), ("amount", "float"), ("currency", "string")]


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    parsed = dt.datetime.fromisoformat(str(value))
    return _iso(parsed)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _attrs(row: Any, names: list[tuple[str, str]], when: Any) -> list[dict[str, str]]:
    time = _iso(when)
    return [
        {"name": n, "value": _text(getattr(row, n)), "time": time}
        for n, _ in names
        if getattr(row, n, None) is not None
    ]


def _rel(object_id: Any, qualifier: str) -> dict[str, str]:
    return {"objectId": str(object_id), "qualifier": qualifier}


def _objects(conn: Connection) -> Iterator[dict[str, Any]]:
    def rows(sql: str) -> Any:
        return conn.execute(text(sql)).yield_per(5000)

    for r in rows(
        "SELECT id, name, legal_entity, region, practice, currency, amount, stage, created_at "
        "FROM deals ORDER BY id"
    ):
        yield {
            "id": r.id,
            "type": "deal",
            "attributes": _attrs(r, OBJECT_TYPES["deal"], r.created_at),
        }
    for r in rows(
        "SELECT id, deal_id, billing_model, currency, value, created_at FROM contracts ORDER BY id"
    ):
        yield {
            "id": r.id,
            "type": "contract",
            "attributes": _attrs(r, OBJECT_TYPES["contract"], r.created_at),
            "relationships": [_rel(r.deal_id, "deal")],
        }
    for r in rows(
        "SELECT id, deal_id, contract_id, name, practice, created_at FROM projects ORDER BY id"
    ):
        rels = [_rel(r.deal_id, "deal")]
        if r.contract_id:
            rels.append(_rel(r.contract_id, "contract"))
        yield {
            "id": r.id,
            "type": "project",
            "attributes": _attrs(r, OBJECT_TYPES["project"], r.created_at),
            "relationships": rels,
        }
    for r in rows(
        "SELECT id, deal_id, contract_id, legal_entity, currency, amount, amount_paid, stage, "
        "posted_at, created_at FROM invoices ORDER BY id"
    ):
        rels = [_rel(r.deal_id, "deal")]
        if r.contract_id:
            rels.append(_rel(r.contract_id, "contract"))
        yield {
            "id": r.id,
            "type": "invoice",
            "attributes": _attrs(r, OBJECT_TYPES["invoice"], r.created_at),
            "relationships": rels,
        }
        if r.posted_at is not None:
            yield {
                "id": f"ar-posting:{r.id}",
                "type": "posting",
                "attributes": [
                    {"name": "posted_at", "value": _iso(r.posted_at), "time": _iso(r.posted_at)}
                ],
                "relationships": [_rel(r.id, "invoice"), _rel(r.deal_id, "deal")],
            }
    for r in rows(
        "SELECT id, invoice_id, deal_id, currency, amount, received_at FROM payments ORDER BY id"
    ):
        yield {
            "id": r.id,
            "type": "payment",
            "attributes": _attrs(r, OBJECT_TYPES["payment"], r.received_at),
            "relationships": [_rel(r.invoice_id, "invoice"), _rel(r.deal_id, "deal")],
        }
    for r in rows(
        "SELECT id, deal_id, project_id, invoice_id, kind, currency, quantity, rate, amount, "
        "created_at FROM billable_items ORDER BY id"
    ):
        rels = [_rel(r.deal_id, "deal")]
        if r.project_id:
            rels.append(_rel(r.project_id, "project"))
        if r.invoice_id:
            rels.append(_rel(r.invoice_id, "invoice"))
        yield {
            "id": r.id,
            "type": "billable_item",
            "attributes": _attrs(r, OBJECT_TYPES["billable_item"], r.created_at),
            "relationships": rels,
        }


def _events(conn: Connection, known: set[str]) -> Iterator[dict[str, Any]]:
    """Lifecycle rows in time order; rows of one span (same trace, span and stage) become
    one event linked to every object they moved."""
    current: dict[str, Any] | None = None
    current_key: tuple[Any, ...] | None = None
    result = conn.execute(
        text(
            "SELECT id, object_type, object_id, deal_id, stage, occurred_at, source_system, "
            "trace_id, span_id, amount, currency FROM lifecycle_events "
            "ORDER BY occurred_at, trace_id, span_id, stage, id"
        )
    ).yield_per(5000)
    for r in result:
        key = (r.trace_id, r.span_id, r.stage) if r.span_id else ("row", r.id)
        if current is not None and key == current_key:
            _link(current, r, known)
            continue
        if current is not None:
            yield current
        attributes = [
            {"name": n, "value": _text(getattr(r, n))}
            for n, _ in EVENT_ATTRIBUTES
            if getattr(r, n) is not None
        ]
        current = {
            "id": f"e{r.id}",
            "type": r.stage,
            "time": _iso(_TIME.process_result_value(_as_datetime(r.occurred_at), conn.dialect)),
            "attributes": attributes,
            "relationships": [],
        }
        current_key = key
        _link(current, r, known)
    if current is not None:
        yield current


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _link(event: dict[str, Any], row: Any, known: set[str]) -> None:
    links = {(r["objectId"], r["qualifier"]) for r in event["relationships"]}
    wanted = [(str(row.object_id), str(row.object_type))]
    if row.deal_id and str(row.deal_id) != str(row.object_id):
        wanted.append((str(row.deal_id), "deal"))
    if row.object_type == "invoice" and row.stage == "posted":
        wanted.append((f"ar-posting:{row.object_id}", "posting"))
    for object_id, qualifier in wanted:
        if object_id in known and (object_id, qualifier) not in links:
            event["relationships"].append(_rel(object_id, qualifier))
            links.add((object_id, qualifier))


def write_ocel(engine: Engine, out: IO[str]) -> tuple[int, int]:
    """Write the log as OCEL 2.0 JSON to `out`, streaming; returns (objects, events)."""
    types = [
        {"name": name, "attributes": [{"name": n, "type": t} for n, t in attrs]}
        for name, attrs in OBJECT_TYPES.items()
    ]
    with engine.connect() as conn:
        stages = conn.execute(
            text("SELECT DISTINCT stage FROM lifecycle_events ORDER BY stage")
        ).scalars()
        event_types = [
            {"name": s, "attributes": [{"name": n, "type": t} for n, t in EVENT_ATTRIBUTES]}
            for s in stages
        ]
        out.write('{"objectTypes": ' + json.dumps(types))
        out.write(', "eventTypes": ' + json.dumps(event_types))
        out.write(', "objects": [')
        known: set[str] = set()
        for n, obj in enumerate(_objects(conn)):
            obj["id"] = str(obj["id"])
            known.add(obj["id"])
            out.write(("," if n else "") + "\n" + json.dumps(obj))
        out.write('], "events": [')
        count = 0
        for count, event in enumerate(_events(conn, known), start=1):
            out.write(("," if count > 1 else "") + "\n" + json.dumps(event))
        out.write("]}\n")
    return len(known), count
