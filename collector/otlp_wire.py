"""A flat reading of the OTLP trace protobuf, for a fast decoder.

The generated classes (upb, in C) parse a request quickly, but reading it back from Python
is slow: every `KeyValue` and `AnyValue` becomes a wrapper object, about 1 us per attribute.
This module declares, at import time and in a private descriptor pool (no generated or
native code of ours), messages with the same wire format as `ExportTraceServiceRequest`
in which every attribute list (`repeated KeyValue`, field numbers as in OTLP) is read as a
`map<string, bytes>`: a map entry and a `KeyValue` are the same bytes on the wire (key = 1,
value = 2). The parser then hands over each span's attributes as a key -> serialized
`AnyValue` dict, and `any_value` decodes the common scalar shapes (short strings, small
ints, doubles, bools) with a few byte tests, falling back to the official `AnyValue` class
for everything else (arrays, maps, bytes, long varints) and for anything malformed.

What the flat messages leave out: the fields the collector does not store (links, the
instrumentation scope, dropped counts, flags, schema URLs) are still declared with their
official types where they must be validated (strings must be UTF-8, nested messages must
parse), so a body the official classes refuse is refused here too. Map iteration order is
upb's hash order, so attribute maps are re-ordered by key when serialized.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "throughline.otlp_flat"


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="throughline/otlp_flat.proto", package=_PACKAGE, syntax="proto3"
    )

    def message(name: str) -> descriptor_pb2.DescriptorProto:
        return file.message_type.add(name=name)

    def field(
        owner: descriptor_pb2.DescriptorProto,
        name: str,
        number: int,
        kind: int,
        *,
        repeated: bool = False,
        type_name: str | None = None,
    ) -> None:
        label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        added = owner.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            added.type_name = f".{_PACKAGE}.{type_name}"

    def attribute_map(owner: descriptor_pb2.DescriptorProto, name: str, number: int) -> None:
        entry = owner.nested_type.add(name=name.title().replace("_", "") + "Entry")
        entry.options.map_entry = True
        field(entry, "key", 1, _F.TYPE_STRING)
        field(entry, "value", 2, _F.TYPE_BYTES)
        field(
            owner,
            name,
            number,
            _F.TYPE_MESSAGE,
            repeated=True,
            type_name=f"{owner.name}.{entry.name}",
        )

    # The full AnyValue family, for the parts that are validated but not flattened.
    any_value = message("AnyValue")
    field(any_value, "string_value", 1, _F.TYPE_STRING)
    field(any_value, "bool_value", 2, _F.TYPE_BOOL)
    field(any_value, "int_value", 3, _F.TYPE_INT64)
    field(any_value, "double_value", 4, _F.TYPE_DOUBLE)
    field(any_value, "array_value", 5, _F.TYPE_MESSAGE, type_name="ArrayValue")
    field(any_value, "kvlist_value", 6, _F.TYPE_MESSAGE, type_name="KeyValueList")
    field(any_value, "bytes_value", 7, _F.TYPE_BYTES)
    array = message("ArrayValue")
    field(array, "values", 1, _F.TYPE_MESSAGE, repeated=True, type_name="AnyValue")
    kvlist = message("KeyValueList")
    field(kvlist, "values", 1, _F.TYPE_MESSAGE, repeated=True, type_name="KeyValue")
    key_value = message("KeyValue")
    field(key_value, "key", 1, _F.TYPE_STRING)
    field(key_value, "value", 2, _F.TYPE_MESSAGE, type_name="AnyValue")

    request = message("ExportTraceServiceRequest")
    field(request, "resource_spans", 1, _F.TYPE_MESSAGE, repeated=True, type_name="ResourceSpans")
    resource_spans = message("ResourceSpans")
    field(resource_spans, "resource", 1, _F.TYPE_MESSAGE, type_name="Resource")
    field(resource_spans, "scope_spans", 2, _F.TYPE_MESSAGE, repeated=True, type_name="ScopeSpans")
    field(resource_spans, "schema_url", 3, _F.TYPE_STRING)
    resource = message("Resource")
    attribute_map(resource, "attributes", 1)
    field(resource, "dropped_attributes_count", 2, _F.TYPE_UINT32)
    scope_spans = message("ScopeSpans")
    field(scope_spans, "scope", 1, _F.TYPE_MESSAGE, type_name="InstrumentationScope")
    field(scope_spans, "spans", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Span")
    field(scope_spans, "schema_url", 3, _F.TYPE_STRING)
    scope = message("InstrumentationScope")
    field(scope, "name", 1, _F.TYPE_STRING)
    field(scope, "version", 2, _F.TYPE_STRING)
    field(scope, "attributes", 3, _F.TYPE_MESSAGE, repeated=True, type_name="KeyValue")
    field(scope, "dropped_attributes_count", 4, _F.TYPE_UINT32)

    span = message("Span")
    field(span, "trace_id", 1, _F.TYPE_BYTES)
    field(span, "span_id", 2, _F.TYPE_BYTES)
    field(span, "trace_state", 3, _F.TYPE_STRING)
    field(span, "parent_span_id", 4, _F.TYPE_BYTES)
    field(span, "flags", 16, _F.TYPE_FIXED32)
    field(span, "name", 5, _F.TYPE_STRING)
    field(span, "kind", 6, _F.TYPE_INT32)  # an open enum: int32 on the wire
    field(span, "start_time_unix_nano", 7, _F.TYPE_FIXED64)
    field(span, "end_time_unix_nano", 8, _F.TYPE_FIXED64)
    attribute_map(span, "attributes", 9)
    field(span, "dropped_attributes_count", 10, _F.TYPE_UINT32)
    field(span, "events", 11, _F.TYPE_MESSAGE, repeated=True, type_name="Event")
    field(span, "dropped_events_count", 12, _F.TYPE_UINT32)
    field(span, "links", 13, _F.TYPE_MESSAGE, repeated=True, type_name="Link")
    field(span, "dropped_links_count", 14, _F.TYPE_UINT32)
    field(span, "status", 15, _F.TYPE_MESSAGE, type_name="Status")
    event = message("Event")
    field(event, "time_unix_nano", 1, _F.TYPE_FIXED64)
    field(event, "name", 2, _F.TYPE_STRING)
    attribute_map(event, "attributes", 3)
    field(event, "dropped_attributes_count", 4, _F.TYPE_UINT32)
    link = message("Link")
    field(link, "trace_id", 1, _F.TYPE_BYTES)
    field(link, "span_id", 2, _F.TYPE_BYTES)
    field(link, "trace_state", 3, _F.TYPE_STRING)
    field(link, "attributes", 4, _F.TYPE_MESSAGE, repeated=True, type_name="KeyValue")
    field(link, "dropped_attributes_count", 5, _F.TYPE_UINT32)
    field(link, "flags", 6, _F.TYPE_FIXED32)
    status = message("Status")
    field(status, "message", 2, _F.TYPE_STRING)
    field(status, "code", 3, _F.TYPE_INT32)
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_build_file())
FlatExportTraceServiceRequest: type[Message] = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName(f"{_PACKAGE}.ExportTraceServiceRequest")
)


def pb_value(value: AnyValue) -> Any:
    """An official AnyValue as a plain value (bytes as base64 text, as before)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: pb_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


_double = struct.Struct("<d").unpack_from
_MISS = object()
# Serialized scalar AnyValues seen lately -> their value: attribute values repeat a lot
# (methods, systems, flows, currencies, status codes), and a dict hit costs less than
# decoding. Only immutable scalars are kept, and the cache is emptied when it is full.
_CACHE_SIZE = 8192
_cache: dict[bytes, Any] = {}


def attribute_values(attributes: Any) -> dict[str, Any]:
    """A flat attribute map (key -> serialized AnyValue) as key -> plain value."""
    cached = _cache.get
    return {
        key: value
        if (value := cached(raw := attributes[key], _MISS)) is not _MISS
        else _decode_and_keep(raw)
        for key in attributes
    }


def _decode_and_keep(raw: bytes) -> Any:
    value = any_value(raw)
    if value is None or type(value) in (str, int, float, bool):
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[raw] = value
    return value


def any_value(raw: bytes) -> Any:
    """A serialized AnyValue as a plain value; raises DecodeError or UnicodeDecodeError when
    it is malformed."""
    size = len(raw)
    if size == 2:
        tag, byte = raw[0], raw[1]
        if tag == 0x18 and byte < 0x80:  # int_value, 0..127
            return byte
        if tag == 0x10 and byte < 2:  # bool_value
            return byte == 1
        if tag == 0x0A and byte == 0:  # the empty string
            return ""
    elif size > 2:
        tag = raw[0]
        if tag == 0x0A and raw[1] == size - 2:  # string_value shorter than 128 bytes
            return raw[2:].decode()
        if tag == 0x21 and size == 9:  # double_value
            return _double(raw, 1)[0]
    elif not raw:
        return None
    return pb_value(AnyValue.FromString(raw))


__all__ = [
    "DecodeError",
    "FlatExportTraceServiceRequest",
    "any_value",
    "attribute_values",
    "pb_value",
]
