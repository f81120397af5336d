"""A span as a row of the spans table, and the lifting of the `q2c.*` attributes.

Every source (OTLP protobuf, OTLP/JSON, the in-process SDK exporter) produces `SpanRecord`
tuples in `SPAN_COLUMNS` order, so the writer inserts them without further conversion.
"""

from __future__ import annotations

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

# Attributes also kept for lifecycle derivation but not lifted into their own column.
BILLABLE_ID = "q2c.billable.id"
PAYMENT_ID = "q2c.payment.id"
_SYSTEMS = frozenset({"crm", "clm", "psa", "billing", "erp"})


def _text(value: Any, limit: int = 128) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit] if text else None


def parse_decimal(value: Any) -> Decimal | None:
    """A finite number from an attribute or event field, else None (never raises)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _amount(value: Any) -> str | None:
    amount = parse_decimal(value)
    return None if amount is None else str(amount.quantize(Decimal("0.01")))


def _lifted(value: Any, limit: int = 128) -> str | None:
    if value is None:
        return None
    if type(value) is str:
        return value[:limit] or None
    return _text(value, limit)


def make_record(
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
) -> SpanRecord:
    get = attributes.get
    system = _lifted(get("q2c.system"), 16)
    currency = _lifted(get("q2c.currency"), 3)
    amount = get("q2c.amount")
    return SpanRecord(
        trace_id,
        span_id,
        parent_span_id or None,
        name[:256],
        service[:128],
        kind,
        start_unix_nano,
        end_unix_nano,
        status,
        status_message or None,
        orjson.dumps(attributes).decode(),
        resource_json,
        orjson.dumps(events).decode() if events else None,
        _lifted(get("q2c.deal.id")),
        _lifted(get("q2c.contract.id")),
        _lifted(get("q2c.project.id")),
        _lifted(get("q2c.invoice.id")),
        system.lower() if system and system.lower() in _SYSTEMS else None,
        _lifted(get("q2c.flow"), 64),
        _lifted(get("q2c.stage"), 32),
        _amount(amount) if amount is not None else None,
        currency.upper() if currency else None,
    )


def is_hex_id(value: str, length: int) -> bool:
    if len(value) != length:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return value != "0" * length
