"""OTLP/HTTP traces into the store, sent by the official exporter and as OTLP/JSON."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable

import httpx
import orjson
import pytest
import sqlalchemy as sa
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace import Status as OtelStatus
from sqlalchemy import Engine

from store.objects import Deal
from store.telemetry import LifecycleEvent, Span
from tests.collector.conftest import RunningServer

Serve = Callable[..., RunningServer]
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"


def _count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def json_export(spans: list[dict[str, object]], service: str = "mulesoft") -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "q2c"}, "spans": spans}],
            }
        ]
    }


def json_span(
    trace_id: str = TRACE_ID, span_id: str = SPAN_ID, **attributes: object
) -> dict[str, object]:
    def value(v: object) -> dict[str, object]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}  # int64 is a string in OTLP/JSON
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": str(v)}

    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": "",
        "name": "POST /ar/postings",
        "kind": 3,
        "startTimeUnixNano": "1767225600000000000",
        "endTimeUnixNano": "1767225600250000000",
        "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
        "status": {"code": 1},
    }


def test_spans_from_the_official_protobuf_exporter_are_stored_with_their_ids(
    serve_collector: Serve,
) -> None:
    server = serve_collector()
    provider = TracerProvider(resource=Resource.create({"service.name": "billing-sync"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces"))
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("sync invoice", kind=SpanKind.CLIENT) as parent:
        parent.set_attributes(
            {
                "q2c.deal.id": "OPP-42",
                "q2c.invoice.id": "INV-7",
                "q2c.system": "erp",
                "q2c.flow": "invoice_to_ar",
                "q2c.stage": "posted",
                "q2c.amount": 1250.5,
                "q2c.currency": "gbp",
                "http.response.status_code": 201,
                "tags": ("a", "b"),
            }
        )
        parent.set_status(OtelStatus(StatusCode.OK))
        with tracer.start_as_current_span("POST /ar/postings") as child:
            child.set_status(OtelStatus(StatusCode.ERROR, "502 from ERP"))
    provider.shutdown()

    with server.engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(sa.select(Span))}
    ctx = parent.get_span_context()
    stored = rows["sync invoice"]
    assert stored.trace_id == format(ctx.trace_id, "032x")
    assert stored.span_id == format(ctx.span_id, "016x")
    assert (stored.service, stored.kind, stored.status) == ("billing-sync", "client", "ok")
    assert (stored.deal_id, stored.invoice_id, stored.system, stored.flow, stored.stage) == (
        "OPP-42",
        "INV-7",
        "erp",
        "invoice_to_ar",
        "posted",
    )
    assert (str(stored.amount), stored.currency) == ("1250.50", "GBP")
    assert stored.attributes["tags"] == ["a", "b"]
    assert stored.attributes["http.response.status_code"] == 201
    child_row = rows["POST /ar/postings"]
    assert child_row.parent_span_id == stored.span_id
    assert (child_row.status, child_row.status_message) == ("error", "502 from ERP")
    # The OK span with a stage became lifecycle events: the invoice's, the deal's first posting.
    with server.engine.connect() as conn:
        events = conn.execute(
            sa.select(LifecycleEvent.object_type, LifecycleEvent.object_id, LifecycleEvent.stage)
        ).all()
    assert sorted((str(t), o, s) for t, o, s in events) == [
        ("deal", "OPP-42", "first_posted"),
        ("invoice", "INV-7", "posted"),
    ]
    assert server.sample("throughline_spans_stored_total") == 2


def test_otlp_json_ids_are_read_as_hex_not_base64(serve_collector: Serve) -> None:
    server = serve_collector()
    body = json_export([json_span(**{"q2c.deal.id": "OPP-1", "retries": 3, "ok": True})])
    response = httpx.post(f"{server.url}/v1/traces", json=body)
    assert response.status_code == 200
    assert response.json() == {}
    with server.engine.connect() as conn:
        row = conn.execute(sa.select(Span)).one()
    assert (row.trace_id, row.span_id) == (TRACE_ID, SPAN_ID)
    assert row.attributes == {"q2c.deal.id": "OPP-1", "retries": 3, "ok": True}
    assert (row.start_unix_nano, row.end_unix_nano) == (1767225600000000000, 1767225600250000000)
    assert (row.service, row.kind, row.deal_id) == ("mulesoft", "client", "OPP-1")


def test_gzip_bodies_are_accepted(serve_collector: Serve) -> None:
    server = serve_collector()
    body = gzip.compress(orjson.dumps(json_export([json_span()])))
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=body,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert _count(server.engine, Span) == 1


def test_invalid_spans_are_a_partial_success_and_the_rest_is_stored(serve_collector: Serve) -> None:
    server = serve_collector()
    spans = [json_span(), json_span(span_id="not-hex"), json_span(trace_id="0" * 32)]
    response = httpx.post(f"{server.url}/v1/traces", json=json_export(spans))
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "invalid traceId or spanId" in partial["errorMessage"]
    assert _count(server.engine, Span) == 1


def test_a_redelivered_batch_is_stored_once(serve_collector: Serve) -> None:
    server = serve_collector()
    body = json_export([json_span(**{"q2c.deal.id": "OPP-1", "q2c.stage": "closed_won"})])
    for _ in range(3):
        assert httpx.post(f"{server.url}/v1/traces", json=body).status_code == 200
    assert _count(server.engine, Span) == 1
    assert _count(server.engine, LifecycleEvent) == 1


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        ("application/x-protobuf", b"\xff\xff\xff\xff not protobuf", 400, "not an OTLP"),
        ("application/json", b'{"resourceSpans": [', 400, "not valid JSON"),
        (
            "application/json",
            b'{"resourceSpans": [{"scopeSpans": 7}]}',
            400,
            "unexpected structure",
        ),
        ("text/plain", b"hello", 415, "unsupported content type 'text/plain'"),
        ("application/json", b"x" * 2048, 413, "exceeds 1024"),
    ],
    ids=[
        "malformed-protobuf",
        "malformed-json",
        "wrong-structure",
        "wrong-content-type",
        "too-large",
    ],
)
def test_bad_requests_get_the_status_and_reason_and_store_nothing(
    serve_collector: Serve, content_type: str, body: bytes, status: int, reason: str
) -> None:
    server = serve_collector(max_body_bytes=1024)
    response = httpx.post(
        f"{server.url}/v1/traces", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    if content_type == "application/x-protobuf":
        message = Status.FromString(response.content).message
    else:
        message = response.json()["message"]
    assert reason in message
    assert _count(server.engine, Span) == 0


def test_a_gzip_bomb_is_refused_by_its_decompressed_size(serve_collector: Serve) -> None:
    server = serve_collector(max_body_bytes=10_000)
    bomb = gzip.compress(b" " * 1_000_000)
    assert len(bomb) < 10_000
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert "decompressed body exceeds" in response.json()["message"]


def test_protobuf_success_is_a_protobuf_response(serve_collector: Serve) -> None:
    server = serve_collector()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            PbSpan(
                                trace_id=bytes.fromhex(TRACE_ID),
                                span_id=bytes.fromhex(SPAN_ID),
                                name="a",
                            ),
                            PbSpan(trace_id=b"short", span_id=bytes.fromhex(SPAN_ID), name="b"),
                        ]
                    )
                ]
            )
        ]
    )
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=request.SerializeToString(),
        headers={"Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    decoded = ExportTraceServiceResponse.FromString(response.content)
    assert decoded.partial_success.rejected_spans == 1
    assert _count(server.engine, Span) == 1


def test_ingest_needs_an_ingest_token_outside_demo_mode(serve_collector: Serve) -> None:
    import datetime as dt

    from collector.auth import create_token, revoke_token

    server = serve_collector(demo_mode=False)
    body = json_export([json_span()])
    missing = httpx.post(f"{server.url}/v1/traces", json=body)
    assert missing.status_code == 401
    assert "Authorization: Bearer" in missing.json()["message"]
    now = dt.datetime.now(dt.UTC)
    read_only = create_token(server.engine, "dash", {"read"}, now)
    wrong_scope = httpx.post(
        f"{server.url}/v1/traces", json=body, headers={"Authorization": f"Bearer {read_only}"}
    )
    assert wrong_scope.status_code == 401
    assert _count(server.engine, Span) == 0
    token = create_token(server.engine, "mulesoft", {"ingest"}, now)
    ok = httpx.post(
        f"{server.url}/v1/traces", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert ok.status_code == 200
    assert _count(server.engine, Span) == 1
    assert revoke_token(server.engine, "mulesoft", now)


def test_a_full_write_queue_answers_429_with_retry_after_then_recovers(
    serve_collector: Serve, engine: Engine
) -> None:
    server = serve_collector(queue_max_spans=1)
    # Stall the writer on a database lock, as a slow or busy store would.
    blocker = engine.raw_connection()
    cursor = blocker.cursor()
    if engine.dialect.name == "sqlite":
        cursor.execute("BEGIN IMMEDIATE")
    else:
        cursor.execute("LOCK TABLE spans IN ACCESS EXCLUSIVE MODE")
    first: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: first.append(
            httpx.post(f"{server.url}/v1/traces", json=json_export([json_span()]), timeout=60)
        )
    )
    sender.start()
    try:
        deadline = time.monotonic() + 10
        while server.app.state.writer.queued == 0:
            assert time.monotonic() < deadline, "first batch never queued"
            time.sleep(0.01)
        second = httpx.post(
            f"{server.url}/v1/traces", json=json_export([json_span(span_id="1" * 16)])
        )
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) >= 1
        assert "write queue full" in second.json()["message"]
    finally:
        blocker.rollback()
        blocker.close()
    sender.join(timeout=60)
    assert first[0].status_code == 200
    assert _count(engine, Span) == 1
    assert server.sample("throughline_spans_rejected_total", {"reason": "http_429"}) == 1


def test_metrics_expose_the_collector_counters(serve_collector: Serve) -> None:
    server = serve_collector()
    httpx.post(f"{server.url}/v1/traces", json=json_export([json_span()]))
    text = httpx.get(f"{server.url}/metrics").text
    assert 'throughline_spans_received_total{source="otlp_json"} 1.0' in text
    assert "throughline_spans_stored_total 1.0" in text
    assert "throughline_ingest_queue_spans 0.0" in text
    assert "throughline_store_write_seconds_count 1.0" in text


def test_deal_dimensions_on_a_closed_won_span_land_on_the_deal(serve_collector: Serve) -> None:
    server = serve_collector()
    span = json_span(
        **{
            "q2c.deal.id": "OPP-9",
            "q2c.stage": "closed_won",
            "q2c.amount": "250000",
            "q2c.currency": "EUR",
            "q2c.legal_entity": "Throughline GmbH",
            "q2c.practice": "Data",
        }
    )
    assert httpx.post(f"{server.url}/v1/traces", json=json_export([span])).status_code == 200
    with server.engine.connect() as conn:
        deal = conn.execute(sa.select(Deal)).one()
    assert (deal.id, deal.stage, str(deal.amount), deal.currency) == (
        "OPP-9",
        "closed_won",
        "250000.00",
        "EUR",
    )
    assert (deal.legal_entity, deal.practice) == ("Throughline GmbH", "Data")


def _official_attributes(items: object) -> dict[str, object]:
    """What the generated OTLP classes read: the reference for the flat decoder."""
    from collector.otlp_wire import pb_value

    return {kv.key: pb_value(kv.value) for kv in items}  # type: ignore[attr-defined]


def test_the_flat_protobuf_decoder_reads_every_value_shape_as_the_official_classes_do() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import (
        AnyValue,
        ArrayValue,
        KeyValue,
        KeyValueList,
    )
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource as PbResource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
    from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

    from collector.otlp import decode_protobuf
    from collector.span_record import SPAN_COLUMNS, record_from_row

    values = {
        "short": AnyValue(string_value="POST"),
        "empty": AnyValue(string_value=""),
        "long": AnyValue(string_value="x" * 300),
        "unicode": AnyValue(string_value="Zürich 東京"),
        "int.small": AnyValue(int_value=7),
        "int.zero": AnyValue(int_value=0),
        "int.large": AnyValue(int_value=2**40),
        "int.negative": AnyValue(int_value=-3),
        "double": AnyValue(double_value=1250.5),
        "double.zero": AnyValue(double_value=0.0),
        "true": AnyValue(bool_value=True),
        "false": AnyValue(bool_value=False),
        "bytes": AnyValue(bytes_value=b"\x00\xff"),
        "unset": AnyValue(),
        "array": AnyValue(
            array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=2)])
        ),
        "map": AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(double_value=0.25))])
        ),
        "q2c.deal.id": AnyValue(int_value=42),
        "q2c.amount": AnyValue(string_value="1e40"),  # too large for money: not lifted
        "q2c.currency": AnyValue(string_value="gbp"),
    }
    attributes = [KeyValue(key=k, value=v) for k, v in values.items()]
    attributes += [KeyValue(key="short", value=AnyValue(string_value="last one wins"))]
    span = PbSpan(
        trace_id=bytes.fromhex(TRACE_ID),
        span_id=bytes.fromhex(SPAN_ID),
        parent_span_id=b"\x01\x02",  # not 8 bytes: no parent, as on the JSON path
        name="n",
        kind=PbSpan.SPAN_KIND_SERVER,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=attributes,
        events=[PbSpan.Event(name="retry", time_unix_nano=3, attributes=attributes[:3])],
        status=PbStatus(code=PbStatus.STATUS_CODE_ERROR, message="boom"),
    )
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=PbResource(
                    attributes=[KeyValue(key="service.name", value=values["short"])]
                ),
                scope_spans=[ScopeSpans(spans=[span])],
            )
        ]
    )
    (row,) = decode_protobuf(request.SerializeToString()).rows
    assert len(row) == len(SPAN_COLUMNS)
    record = record_from_row(row)
    assert orjson.loads(record.attributes) == _official_attributes(attributes)
    assert orjson.loads(record.events or "[]") == [
        {"name": "retry", "time_unix_nano": 3, "attributes": _official_attributes(attributes[:3])}
    ]
    assert (record.service, record.kind, record.status, record.status_message) == (
        "POST",
        "server",
        "error",
        "boom",
    )
    assert (record.deal_id, record.amount, record.currency) == ("42", None, "GBP")
    assert record.parent_span_id is None


@pytest.mark.parametrize(
    "value",
    [b"\x0a\x02\xff\xfe", b"\x18\x80", b"\x32\x05\x0a\x03\x0a\x01"],
    ids=["bad-utf8-string", "truncated-varint", "truncated-kvlist"],
)
def test_a_malformed_attribute_value_is_a_malformed_payload(value: bytes) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

    from collector.otlp import MalformedPayload, decode_protobuf

    span = PbSpan(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(SPAN_ID), name="n")
    body = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    ).SerializeToString()
    # Append an attribute whose value bytes are broken, inside the span's own bytes.
    entry = KeyValue(key="k").SerializeToString() + b"\x12" + bytes([len(value)]) + value
    span_bytes = span.SerializeToString() + b"\x4a" + bytes([len(entry)]) + entry
    scope = b"\x12" + bytes([len(span_bytes)]) + span_bytes
    resource_spans = b"\x12" + bytes([len(scope)]) + scope
    body = b"\x0a" + bytes([len(resource_spans)]) + resource_spans
    with pytest.raises(MalformedPayload, match="not an OTLP"):
        decode_protobuf(body)
    # The official classes refuse the same body.
    from google.protobuf.message import DecodeError

    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(body)
