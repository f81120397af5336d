"""The compiled OTLP decoder (collector/_otlp_fast.c) stores exactly what the reference
decoder in Python stores, and leaves everything else to it.

Both are run on the same bodies: requests with every attribute type and the awkward values
(ties in cent rounding, non-ASCII text, over-long names, bad ids, unknown enum values,
nested arrays and maps), and thousands of corrupted bodies, where both must refuse alike
or decode alike.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector import otlp
from collector.span_record import format_amount
from tests.conftest import skip_or_fail

if otlp.compiled_decode is None:
    skip_or_fail("the compiled decoder collector._otlp_fast was not built (no C compiler?)")


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=_kvs(v)))
    if v is None:
        return AnyValue()
    return AnyValue(string_value=v)


def _kvs(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attributes.items()]


AWKWARD_VALUES: list[Any] = [
    "",
    "x",
    "déjà vu ✓ 日本",
    'quote " backslash \\ newline \n tab \t nul \x00 bell \x07',
    "a" * 31,
    "b" * 33,
    "c" * 300,
    0,
    1,
    -1,
    127,
    128,
    2**63 - 1,
    -(2**63),
    0.0,
    -0.0,
    0.5,
    2.675,
    0.125,
    0.135,
    1.005,
    -1234.565,
    12345.675,
    99.995,
    1e15 + 0.125,
    1e16,
    1e20,
    1.5e-7,
    0.0001,
    float("nan"),
    float("inf"),
    -float("inf"),
    True,
    False,
    None,
    b"",
    b"\x00\xff\x10",
    b"abcd",
    [],
    [1, "two", 3.5, [True, None]],
    {},
    {"k": {"nested": [1, 2]}, "z": "last", "a": b"\x01"},
]

Q2C_KEYS = [
    "q2c.deal.id",
    "q2c.contract.id",
    "q2c.project.id",
    "q2c.invoice.id",
    "q2c.system",
    "q2c.flow",
    "q2c.stage",
    "q2c.amount",
    "q2c.currency",
]
SYSTEMS = ["crm", "CRM", "Billing", "erp", "sap", "", "psa " * 10]


def _attributes(rng: random.Random) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for _ in range(rng.randrange(0, 8)):
        attributes[rng.choice(["http.method", "url.full", "k", "ключ", "a.b.c"])] = rng.choice(
            AWKWARD_VALUES
        )
    for key in Q2C_KEYS:
        if rng.random() < 0.6:
            attributes[key] = rng.choice(AWKWARD_VALUES)
    if rng.random() < 0.5:
        attributes["q2c.system"] = rng.choice(SYSTEMS)
    if rng.random() < 0.5:
        attributes["q2c.amount"] = rng.choice(
            [
                round(rng.uniform(-1e6, 1e6), rng.randrange(0, 5)),
                rng.randrange(-(10**6), 10**6),
                f"{rng.uniform(0, 1e5):.3f}",
                "12.5e3",
                "abc",
                "1" * 40,
            ]
        )
    if rng.random() < 0.3:
        attributes["q2c.currency"] = rng.choice(["usd", "EURO", "gb", "€uro", 978])
    return attributes


def _id(rng: random.Random, size: int) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        return b"\0" * size
    if roll < 0.1:
        return rng.randbytes(rng.randrange(0, size * 2))
    return rng.randbytes(size)


def random_request(rng: random.Random) -> ExportTraceServiceRequest:
    resource_spans = []
    for _ in range(rng.randrange(1, 4)):
        resource: dict[str, Any] = _attributes(rng)
        if rng.random() < 0.7:
            resource["service.name"] = rng.choice(
                ["svc", "", "s" * 200, 42, ["a", 1], {"k": 1}, None, True]
            )
        scopes = []
        for _ in range(rng.randrange(1, 3)):
            spans = []
            for _ in range(rng.randrange(0, 12)):
                span = Span(
                    trace_id=_id(rng, 16),
                    span_id=_id(rng, 8),
                    parent_span_id=rng.choice([b"", b"\0" * 8, rng.randbytes(8), b"xyz"]),
                    name=rng.choice(["GET /x", "", "é" * 300, "n" * 256 + "cut"]),
                    kind=rng.choice([0, 1, 2, 3, 4, 5, 9]),  # type: ignore[arg-type]
                    start_time_unix_nano=rng.randrange(0, 2**64),
                    end_time_unix_nano=rng.randrange(0, 2**64),
                    attributes=_kvs(_attributes(rng)),
                    trace_state=rng.choice(["", "k=v"]),
                    status=Status(
                        code=rng.choice([0, 1, 2, 7]),  # type: ignore[arg-type]
                        message=rng.choice(["", "boom", "ошибка"]),
                    ),
                )
                for _ in range(rng.choice([0, 0, 1, 3])):
                    span.events.add(
                        name=rng.choice(["retry", "", "ü"]),
                        time_unix_nano=rng.randrange(0, 2**64),
                        attributes=_kvs(_attributes(rng)),
                    )
                for _ in range(rng.choice([0, 0, 1])):
                    span.links.add(
                        trace_id=rng.randbytes(16),
                        span_id=rng.randbytes(8),
                        attributes=_kvs({"l": rng.choice(AWKWARD_VALUES)}),
                    )
                spans.append(span)
            scope = InstrumentationScope(name="lib", version="1", attributes=_kvs({"s": 1}))
            scopes.append(ScopeSpans(scope=scope, spans=spans, schema_url="https://x"))
        resource_spans.append(
            ResourceSpans(resource=Resource(attributes=_kvs(resource)), scope_spans=scopes)
        )
    return ExportTraceServiceRequest(resource_spans=resource_spans)


def _both(body: bytes) -> tuple[Any, Any]:
    def run(decode: Any) -> Any:
        try:
            batch = decode(body)
        except otlp.MalformedPayload:
            return "malformed"
        return batch.rows, batch.rejected, batch.reasons

    return run(otlp.decode_protobuf), run(otlp.reference_decode_protobuf)


def test_the_fast_path_decodes_an_ordinary_request_itself() -> None:
    """Not a fallback every time: a plain request is decoded by the compiled code."""
    body = random_request(random.Random(1)).SerializeToString()
    assert otlp.compiled_decode is not None
    decoded = otlp.compiled_decode(body, orjson.dumps, orjson.OPT_SORT_KEYS, format_amount)
    assert decoded is not None
    rows, rejected = decoded
    reference = otlp.reference_decode_protobuf(body)
    assert (rows, rejected) == (reference.rows, reference.rejected)
    assert rows  # the seed gives some valid spans


@pytest.mark.parametrize("seed", range(40))
def test_random_requests_give_the_reference_rows(seed: int) -> None:
    request = random_request(random.Random(seed))
    fast, reference = _both(request.SerializeToString())
    assert fast == reference


def test_amounts_are_rounded_to_the_cent_as_decimal_does() -> None:
    rng = random.Random(5)
    values: list[Any] = [v for v in AWKWARD_VALUES if isinstance(v, (int, float))]
    values += [rng.uniform(-1e7, 1e7) for _ in range(2000)]
    values += [round(rng.uniform(0, 1e4), 3) for _ in range(2000)]  # many exact ties
    values += [n / 1000 for n in range(-3000, 3000)]
    for value in values:
        span = Span(
            trace_id=b"t" * 16,
            span_id=b"s" * 8,
            attributes=_kvs({"q2c.amount": value}),
        )
        request = ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
        )
        (row,) = otlp.decode_protobuf(request.SerializeToString()).rows
        assert row[20] == format_amount(value), value


def test_corrupted_bodies_are_refused_or_decoded_alike() -> None:
    rng = random.Random(11)
    bodies = [random_request(random.Random(100 + n)).SerializeToString() for n in range(20)]
    checked = 0
    for _ in range(3000):
        body = bytearray(rng.choice(bodies))
        if not body:
            continue
        for _ in range(rng.randrange(1, 4)):
            roll, at = rng.random(), rng.randrange(len(body) + 1)
            if roll < 0.5:
                body[at : at + 1] = bytes([rng.randrange(256)])
            elif roll < 0.75:
                del body[at:]
            else:
                body[at:at] = rng.randbytes(rng.randrange(1, 6))
        fast, reference = _both(bytes(body))
        assert fast == reference, bytes(body).hex()
        checked += 1
    assert checked > 2900


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field, as protobuf writes it."""
    size, out = len(payload), bytearray([number << 3 | 2])
    while size >= 0x80:
        out.append(size & 0x7F | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out) + payload


def test_wire_orders_and_repeats_that_protobuf_allows_give_the_reference_rows() -> None:
    """The resource after the spans, a status sent in two pieces (merged), unknown fields
    from a newer OTLP: the compiled path reads the first and skips the last itself."""
    span = Span(trace_id=b"t" * 16, span_id=b"s" * 8, name="x", attributes=_kvs({"q2c.amount": 5}))
    spans = ScopeSpans(spans=[span]).SerializeToString()
    resource = Resource(attributes=_kvs({"service.name": "late"})).SerializeToString()
    unknown_varint = bytes([0xA0, 0x01, 7])  # field 20 (tag 160 as a varint), value 7
    resource_last = _field(2, spans) + _field(1, resource) + unknown_varint
    body = _field(1, resource_last)
    fast, reference = _both(body)
    assert fast == reference
    assert fast[0][0][4] == "late"
    assert otlp.compiled_decode is not None
    assert otlp.compiled_decode(body, orjson.dumps, orjson.OPT_SORT_KEYS, format_amount)

    status_in_two = (
        span.SerializeToString()
        + _field(15, bytes([3 << 3, 2]))
        + _field(15, _field(2, b"late message"))
    )
    body = _field(1, _field(2, _field(2, status_in_two)))
    fast, reference = _both(body)
    assert fast == reference
    (row,) = fast[0]
    assert (row[8], row[9]) == ("error", "late message")
