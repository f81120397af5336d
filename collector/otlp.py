"""OTLP/HTTP trace payloads -> span rows, for both encodings the specification allows.

The protobuf path has two decoders that produce the same rows. The compiled one
(`collector/_otlp_fast.c`, built at install) reads the wire format directly, about four
times faster; it hands every body it does not handle exactly like the reference (malformed
ones included) to the reference decoder here, which parses with upb (in C) through the flat
messages of `collector.otlp_wire` (attributes as a map of serialized values, decoded with a
few byte tests) and builds each row in one pass. tests/collector/test_otlp_fast.py runs both
on the same bodies. A span whose trace or span id has the wrong length or is all zeros is
rejected (partial success); such a parent id is stored as no parent, as on the JSON path.
The JSON path does not go through
`google.protobuf.json_format`: OTLP/JSON writes trace and span ids as hex (protobuf's JSON
mapping would read them as base64 and store wrong ids) and it is far slower. It reads the
document with orjson and walks it directly, accepting the lowerCamelCase field names the
specification requires and the snake_case ones receivers must also accept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collector.otlp_wire import DecodeError, FlatExportTraceServiceRequest, attribute_values
from collector.span_record import (
    SPAN_KINDS,
    STATUS_CODES,
    SpanRow,
    format_amount,
    is_hex_id,
    lift,
    make_row,
)

CompiledDecode = Callable[
    [bytes, Callable[..., bytes], int, Callable[[Any], str]],
    tuple[list[SpanRow], int] | None,
]


def _compiled() -> CompiledDecode | None:
    """The compiled fast path, built from collector/_otlp_fast.c when the package is
    installed (setup.py); None where it could not be built (no C compiler)."""
    try:
        from collector import _otlp_fast
    except ImportError:
        return None
    return _otlp_fast.decode


compiled_decode = _compiled()


class MalformedPayload(ValueError):
    """The request body is not a valid OTLP trace export (HTTP 400)."""


@dataclass
class DecodedBatch:
    rows: list[SpanRow] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < 5 and reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def error_message(self) -> str:
        return "; ".join(self.reasons)


# --- protobuf -----------------------------------------------------------------------------

_NO_ID = (b"\0" * 16, b"\0" * 8)
_KIND_NAMES = dict(enumerate(SPAN_KINDS))
_STATUS_NAMES = dict(enumerate(STATUS_CODES))
_SORTED = orjson.OPT_SORT_KEYS


def parse_protobuf(body: bytes) -> Message:
    """Parse a protobuf export request (the flat reading of `collector.otlp_wire`), or raise
    MalformedPayload."""
    try:
        return FlatExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise MalformedPayload(f"not an OTLP ExportTraceServiceRequest protobuf: {exc}") from None


_INVALID_ID = "span with an invalid trace_id or span_id"


def decode_protobuf(body: bytes) -> DecodedBatch:
    """The rows of a protobuf export request, or MalformedPayload. The compiled fast path
    decodes what it can; it hands anything unusual (a malformed body included) to the
    reference decoder below, which has the last word on what is refused and why."""
    if compiled_decode is not None:
        decoded = compiled_decode(body, orjson.dumps, _SORTED, format_amount)
        if decoded is not None:
            rows, rejected = decoded
            batch = DecodedBatch(rows=rows)
            if rejected:
                batch.rejected, batch.reasons = rejected, [_INVALID_ID]
            return batch
    return reference_decode_protobuf(body)


def reference_decode_protobuf(body: bytes) -> DecodedBatch:
    return rows_from_protobuf(parse_protobuf(body))


def rows_from_protobuf(request: Any) -> DecodedBatch:
    """Rows straight from the parsed request: one pass, no intermediate record per span."""
    batch = DecodedBatch()
    append = batch.rows.append
    dumps = orjson.dumps
    kinds, statuses = _KIND_NAMES.get, _STATUS_NAMES.get
    try:
        for resource_spans in request.resource_spans:
            resource = attribute_values(resource_spans.resource.attributes)
            service = str(resource.get("service.name") or "unknown_service")[:128]
            resource_json = dumps(resource, option=_SORTED).decode() if resource else ""
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    trace_id, span_id = span.trace_id, span.span_id
                    if (
                        len(trace_id) != 16
                        or len(span_id) != 8
                        or trace_id in _NO_ID
                        or span_id in _NO_ID
                    ):
                        batch.reject(_INVALID_ID)
                        continue
                    attributes = attribute_values(span.attributes)
                    if span.events:
                        events = dumps(
                            [
                                {
                                    "name": e.name,
                                    "time_unix_nano": e.time_unix_nano,
                                    "attributes": attribute_values(e.attributes),
                                }
                                for e in span.events
                            ],
                            option=_SORTED,
                        ).decode()
                    else:
                        events = ""
                    status = span.status
                    parent = span.parent_span_id  # a bad one is no parent, as in OTLP/JSON
                    append(
                        (
                            trace_id.hex(),
                            span_id.hex(),
                            parent.hex() if len(parent) == 8 and parent != _NO_ID[1] else "",
                            span.name[:256],
                            service,
                            kinds(span.kind, "unspecified"),
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            statuses(status.code, "unset"),
                            status.message,
                            dumps(attributes, option=_SORTED).decode(),
                            resource_json,
                            events,
                            *lift(attributes),
                        )
                    )
    except (DecodeError, UnicodeDecodeError) as exc:
        raise MalformedPayload(f"not an OTLP ExportTraceServiceRequest protobuf: {exc}") from None
    return batch


def encode_protobuf_response(batch: DecodedBatch) -> bytes:
    response = ExportTraceServiceResponse()
    if batch.rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=batch.rejected, error_message=batch.error_message
            )
        )
    encoded: bytes = response.SerializeToString()
    return encoded


# --- JSON ---------------------------------------------------------------------------------


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_value(value: Any) -> Any:
    if not isinstance(value, dict):
        raise MalformedPayload(f"attribute value must be an AnyValue object, got {value!r:.60}")
    for key, item in value.items():
        if key in ("stringValue", "string_value", "boolValue", "bool_value"):
            return item
        if key in ("intValue", "int_value"):  # int64 arrives as a JSON string
            try:
                return int(item)
            except (TypeError, ValueError):
                raise MalformedPayload(f"intValue is not an integer: {item!r:.60}") from None
        if key in ("doubleValue", "double_value"):
            return float(item)
        if key in ("arrayValue", "array_value"):
            return [_json_value(v) for v in (item or {}).get("values", [])]
        if key in ("kvlistValue", "kvlist_value"):
            return _json_attributes((item or {}).get("values", []))
        if key in ("bytesValue", "bytes_value"):
            return item
    return None


def _json_attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        raise MalformedPayload("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for kv in items:
        if not isinstance(kv, dict) or "key" not in kv:
            raise MalformedPayload("attribute without a key")
        out[kv["key"]] = _json_value(kv.get("value", {}))
    return out


def _nanos(value: Any, name: str) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise MalformedPayload(f"{name} is not an integer: {value!r:.60}") from None


def _enum(value: Any, names: tuple[str, ...], prefix: str) -> str:
    if isinstance(value, int):
        return names[value] if 0 <= value < len(names) else names[0]
    if isinstance(value, str):  # tolerate the enum's name, e.g. SPAN_KIND_SERVER
        short = value.removeprefix(prefix).lower()
        return short if short in names else names[0]
    return names[0]


def decode_json(body: bytes) -> DecodedBatch:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayload(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedPayload("the body must be a JSON object with resourceSpans")
    batch = DecodedBatch()
    try:
        for resource_spans in _get(document, "resourceSpans", "resource_spans") or []:
            resource = _json_attributes(
                (resource_spans.get("resource") or {}).get("attributes", [])
            )
            service = str(resource.get("service.name") or "unknown_service")
            resource_json = orjson.dumps(resource).decode() if resource else None
            for scope_spans in _get(resource_spans, "scopeSpans", "scope_spans") or []:
                for span in scope_spans.get("spans") or []:
                    trace_id = str(_get(span, "traceId", "trace_id") or "").lower()
                    span_id = str(_get(span, "spanId", "span_id") or "").lower()
                    if not is_hex_id(trace_id, 32) or not is_hex_id(span_id, 16):
                        batch.reject("span with an invalid traceId or spanId (hex expected)")
                        continue
                    parent = str(_get(span, "parentSpanId", "parent_span_id") or "").lower()
                    status = span.get("status") or {}
                    events = [
                        {
                            "name": e.get("name", ""),
                            "time_unix_nano": _nanos(
                                _get(e, "timeUnixNano", "time_unix_nano"), "timeUnixNano"
                            ),
                            "attributes": _json_attributes(e.get("attributes", [])),
                        }
                        for e in span.get("events") or []
                    ]
                    batch.rows.append(
                        make_row(
                            trace_id=trace_id,
                            span_id=span_id,
                            parent_span_id=parent if is_hex_id(parent, 16) else None,
                            name=str(span.get("name", "")),
                            service=service,
                            kind=_enum(span.get("kind", 0), SPAN_KINDS, "SPAN_KIND_"),
                            start_unix_nano=_nanos(
                                _get(span, "startTimeUnixNano", "start_time_unix_nano"),
                                "startTimeUnixNano",
                            ),
                            end_unix_nano=_nanos(
                                _get(span, "endTimeUnixNano", "end_time_unix_nano"),
                                "endTimeUnixNano",
                            ),
                            status=_enum(status.get("code", 0), STATUS_CODES, "STATUS_CODE_"),
                            status_message=status.get("message"),
                            attributes=_json_attributes(span.get("attributes", [])),
                            resource_json=resource_json,
                            events=events,
                        )
                    )
    except (AttributeError, TypeError) as exc:
        raise MalformedPayload(f"unexpected structure: {exc}") from None
    return batch


def encode_json_response(batch: DecodedBatch) -> bytes:
    if not batch.rejected:
        return b"{}"
    return orjson.dumps(
        {
            "partialSuccess": {
                "rejectedSpans": str(batch.rejected),
                "errorMessage": batch.error_message,
            }
        }
    )
