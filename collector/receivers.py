"""The ingest endpoints: OTLP/HTTP traces (`POST /v1/traces`) and CloudEvents
(`POST /api/v1/events`).

Status codes follow the OTLP/HTTP specification: 200 with an optional partial success,
400 malformed (with the reason, as a google.rpc.Status in the request's encoding), 401 no
valid ingest token, 413 over the size limit, 415 another content type, 429 with
Retry-After when the write queue is full, 503 with Retry-After when the store fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from fastapi import APIRouter, Request, Response
from google.rpc.status_pb2 import Status
from starlette.datastructures import Headers

from collector import cloudevents, otlp
from collector.auth import TokenVerifier
from collector.metrics import CollectorMetrics
from collector.span_writer import IngestJob, QueueFull, SpanWriter

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code values used in error bodies.
INVALID_ARGUMENT, UNAUTHENTICATED, RESOURCE_EXHAUSTED, UNAVAILABLE = 3, 16, 8, 14


class IngestError(Exception):
    def __init__(self, status: int, code: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class IngestPolicy:
    max_body_bytes: int
    token_required: bool
    webhook_secrets: dict[str, str]  # system name -> HMAC secret


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped, refusing more than `limit` bytes either way."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise IngestError(413, RESOURCE_EXHAUSTED, f"body of {declared} bytes exceeds {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError(413, RESOURCE_EXHAUSTED, f"body exceeds {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise IngestError(400, INVALID_ARGUMENT, f"bad gzip body: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise IngestError(413, RESOURCE_EXHAUSTED, f"decompressed body exceeds {limit} bytes")
    elif encoding not in ("identity", ""):
        raise IngestError(415, INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}")
    return body


def _error(exc: IngestError, media: str) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if media == PROTOBUF:
        body = Status(code=exc.code, message=exc.message).SerializeToString()
    else:
        media = JSON
        body = orjson.dumps({"code": exc.code, "message": exc.message})
    return Response(body, status_code=exc.status, media_type=media, headers=headers)


@dataclass
class _BodySizes:
    bytes_per_span: float = 0.0  # of the last protobuf request, to size the next one


def build_ingest_router(
    writer: SpanWriter,
    metrics: CollectorMetrics,
    verifier: TokenVerifier,
    policy: IngestPolicy,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> APIRouter:
    router = APIRouter()
    sizes = _BodySizes()

    def authorize(request: Request) -> None:
        if policy.token_required and not verifier.allows(
            request.headers.get("authorization"), "ingest"
        ):
            raise IngestError(
                401,
                UNAUTHENTICATED,
                "missing or invalid token: send Authorization: Bearer "
                "<token with scope ingest> (create one with `throughline tokens create`)",
            )

    def refuse_if_full(weight: int) -> None:
        try:
            writer.check_room(weight)
        except QueueFull as exc:
            raise IngestError(429, RESOURCE_EXHAUSTED, str(exc), exc.retry_after) from None

    def refuse_by_size(headers: Headers) -> None:
        """Refuse a request the queue cannot take before reading its body, by its declared
        size at the bytes per span seen last: a sender that outruns the store then costs
        little per retry (uvicorn discards the unread body)."""
        declared = headers.get("content-length", "")
        encoding = headers.get("content-encoding", "identity").lower()
        if sizes.bytes_per_span and declared.isdigit() and encoding in ("identity", ""):
            refuse_if_full(int(int(declared) / sizes.bytes_per_span))

    async def store(job: IngestJob) -> None:
        try:
            future = writer.submit(job)
        except QueueFull as exc:
            raise IngestError(429, RESOURCE_EXHAUSTED, str(exc), exc.retry_after) from None
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            raise IngestError(
                503, UNAVAILABLE, f"the store could not take the batch: {type(exc).__name__}", 5
            ) from None

    @router.post(
        "/v1/traces",
        tags=["ingest"],
        summary="OTLP/HTTP trace export (protobuf or JSON, optionally gzip)",
        responses={400: {}, 401: {}, 413: {}, 415: {}, 429: {}, 503: {}},
    )
    async def export_traces(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        source = {PROTOBUF: "otlp_protobuf", JSON: "otlp_json"}.get(media)
        try:
            if source is None:
                raise IngestError(
                    415,
                    INVALID_ARGUMENT,
                    f"unsupported content type {media or 'none'!r}: use {PROTOBUF} or {JSON}",
                )
            authorize(request)
            if media == PROTOBUF:
                refuse_by_size(request.headers)
            body = await read_body(request, policy.max_body_bytes)
            try:
                if media == PROTOBUF:
                    # Decoding is cheap next to storing: what the declared size did not
                    # refuse (a gzip body, no size yet) is refused by its span count.
                    batch = otlp.decode_protobuf(body)
                    count = len(batch.rows) + batch.rejected
                    metrics.spans_received.labels(source).inc(count)
                    refuse_if_full(count)
                    if count:
                        sizes.bytes_per_span = len(body) / count
                else:
                    batch = otlp.decode_json(body)
                    metrics.spans_received.labels(source).inc(len(batch.rows) + batch.rejected)
            except otlp.MalformedPayload as exc:
                raise IngestError(400, INVALID_ARGUMENT, str(exc)) from None
            if batch.rejected:
                metrics.spans_rejected.labels("invalid_span").inc(batch.rejected)
            if batch.rows:
                await store(IngestJob(rows=batch.rows))
        except IngestError as exc:
            metrics.spans_rejected.labels(f"http_{exc.status}").inc()
            return _error(exc, media)
        if media == PROTOBUF:
            return Response(otlp.encode_protobuf_response(batch), media_type=PROTOBUF)
        return Response(otlp.encode_json_response(batch), media_type=JSON)

    @router.post(
        "/api/v1/events",
        tags=["ingest"],
        summary="CloudEvents of type q2c.<stage> (structured, binary or batched mode)",
        responses={400: {}, 401: {}, 413: {}, 415: {}, 429: {}, 503: {}},
    )
    async def receive_events(request: Request) -> Response:
        try:
            body = await read_body(request, policy.max_body_bytes)
            headers = {k.lower(): v for k, v in request.headers.items()}
            try:
                events = cloudevents.parse_events(headers.get("content-type", ""), headers, body)
            except cloudevents.InvalidEvent as exc:
                raise IngestError(400, INVALID_ARGUMENT, str(exc)) from None
            signed = _check_signatures(events, body, headers, policy)
            if not signed:
                authorize(request)
            moment = now()
            observations = [cloudevents.observation_from_event(e, moment) for e in events]
            sources = [str(e["source"]) for e in events]
            await store(IngestJob(observations=observations, sources=sources))
        except IngestError as exc:
            metrics.events_received.labels("rejected").inc()
            return _error(exc, JSON)
        metrics.events_received.labels("accepted").inc(len(events))
        return Response(orjson.dumps({"accepted": len(events)}), status_code=202, media_type=JSON)

    return router


def _check_signatures(
    events: list[dict[str, object]], body: bytes, headers: dict[str, str], policy: IngestPolicy
) -> bool:
    """Verify the HMAC of every source that has a secret; True if the request was signed
    by all its sources (a signed webhook needs no bearer token)."""
    systems = {cloudevents.system_of(str(e["source"])) for e in events}
    secrets = {policy.webhook_secrets.get(s.value) if s else None for s in systems}
    header = headers.get(cloudevents.SIGNATURE_HEADER)
    for secret in secrets - {None}:
        assert secret is not None
        if not cloudevents.verify_signature(body, header, secret):
            raise IngestError(
                401,
                UNAUTHENTICATED,
                f"bad or missing {cloudevents.SIGNATURE_HEADER} for a source with a webhook secret",
            )
    return None not in secrets
