"""A span as a row of the spans table, and the lifting of the `q2c.*` attributes.

Every source (OTLP protobuf, OTLP/JSON, the in-process SDK exporter) produces `SpanRow`
tuples in `SPAN_COLUMNS` order, ready for the writer's prepared INSERT / COPY. In a row an
empty string stands for NULL in the `NULLABLE_COLUMNS` (none of them ever holds an empty
string: empty values are stored as NULL), because the sqlite3 driver binds a `str` on its
fast path and a `None` through its adaptation protocol, several times slower; the INSERT
turns them back with `NULLIF(?, '')`. `SpanRecord` is the same row with `None` for NULL and
named fields, for the rules that read a span (lifecycle derivation).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import orjson

# OTLP enum values -> stored names.
SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")


class SpanRecord(NamedTuple):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_unix_nano: int
    end_unix_nano: int
    status: str
    status_message: str | None
    attributes: str  # JSON text
    resource: str | None  # JSON text
    events: str | None  # JSON text
    deal_id: str | None
    contract_id: str | None
    project_id: str | None
    invoice_id: str | None
    system: str | None
    flow: str | None
    stage: str | None
    amount: str | None  # decimal text
    currency: str | None


SPAN_COLUMNS: tuple[str, ...] = SpanRecord._fields
NULLABLE_COLUMNS = frozenset(
    {
        "parent_span_id",
        "status_message",
        "resource",
        "events",
        "deal_id",
        "contract_id",
        "project_id",
        "invoice_id",
        "system",
        "flow",
        "stage",
        "amount",
        "currency",
    }
)
_NULLABLE_AT = tuple(n for n, column in enumerate(SPAN_COLUMNS) if column in NULLABLE_COLUMNS)
# Positions of the fields the writer reads in a row.
STATUS_AT = SPAN_COLUMNS.index("status")
STAGE_AT = SPAN_COLUMNS.index("stage")

# A row in SPAN_COLUMNS order; "" for NULL in the NULLABLE_COLUMNS.
SpanRow = tuple[Any, ...]

# Attributes also kept for lifecycle derivation but not lifted into their own column.
BILLABLE_ID = "q2c.billable.id"
PAYMENT_ID = "q2c.payment.id"
_SYSTEMS = frozenset({"crm", "clm", "psa", "billing", "erp"})
_CENT = Decimal("0.01")


def record_from_row(row: SpanRow) -> SpanRecord:
    """The named view of a row, with None for NULL."""
    values = list(row)
    for n in _NULLABLE_AT:
        if values[n] == "":
            values[n] = None
    return SpanRecord._make(values)


def parse_decimal(value: Any) -> Decimal | None:
    """A finite number from an attribute or event field, else None (never raises)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def format_amount(value: Any) -> str:
    """The q2c.amount column: the value in cents (ROUND_HALF_EVEN), "" if not a number."""
    amount = parse_decimal(value)
    if amount is None:
        return ""
    try:
        return str(amount.quantize(_CENT))
    except InvalidOperation:  # too many digits for a money column
        return ""


def _lifted(value: Any, limit: int = 128) -> str:
    """An attribute as the text of a lifted column; "" (NULL) for none, a list or a map."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return (value if type(value) is str else str(value))[:limit]


def lift(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """The `q2c.*` columns of a span, from deal_id to currency, "" where absent."""
    get = attributes.get
    deal = get("q2c.deal.id", "")
    contract = get("q2c.contract.id", "")
    project = get("q2c.project.id", "")
    invoice = get("q2c.invoice.id", "")
    system = get("q2c.system", "")
    flow = get("q2c.flow", "")
    stage = get("q2c.stage", "")
    amount = get("q2c.amount")
    currency = get("q2c.currency", "")
    if system:
        system = _lifted(system, 16).lower()
        if system not in _SYSTEMS:
            system = ""
    return (
        deal[:128] if type(deal) is str else _lifted(deal),
        contract[:128] if type(contract) is str else _lifted(contract),
        project[:128] if type(project) is str else _lifted(project),
        invoice[:128] if type(invoice) is str else _lifted(invoice),
        system if type(system) is str else "",
        flow[:64] if type(flow) is str else _lifted(flow, 64),
        stage[:32] if type(stage) is str else _lifted(stage, 32),
        "" if amount is None else format_amount(amount),
        currency[:3].upper() if type(currency) is str else _lifted(currency, 3).upper(),
    )


def make_row(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    service: str,
    kind: str,
    start_unix_nano: int,
    end_unix_nano: int,
    status: str,
    status_message: str | None,
    attributes: dict[str, Any],
    resource_json: str | None,
    events: list[Any] | None,
) -> SpanRow:
    return (
        trace_id,
        span_id,
        parent_span_id or "",
        name[:256],
        service[:128],
        kind,
        start_unix_nano,
        end_unix_nano,
        status,
        status_message or "",
        orjson.dumps(attributes).decode(),
        resource_json or "",
        orjson.dumps(events).decode() if events else "",
        *lift(attributes),
    )


def is_hex_id(value: str, length: int) -> bool:
    if len(value) != length:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return value != "0" * length
