"""CloudEvents over HTTP (structured, binary and batched modes) -> stage observations.

Systems that send webhooks report lifecycle stages as CloudEvents of type `q2c.<stage>`
whose `subject` is the object id (docs/lifecycle.md). A batch is checked whole before
anything is stored, so a bad event in it stores nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from collector.lifecycle import (
    DEAL_DIMENSIONS,
    DEAL_RANK,
    INVOICE_STAGES,
    ITEM_STAGES,
    KNOWN_STAGES,
    Observation,
)
from store.states import System

SIGNATURE_HEADER = "x-throughline-signature"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_REQUIRED = ("specversion", "id", "source", "type")
_SYSTEM_NAMES = frozenset(s.value for s in System)


class InvalidEvent(ValueError):
    """A CloudEvent that cannot be accepted (HTTP 400); the message says which and why."""


def system_of(source: str) -> System | None:
    """The system a CloudEvent source names: `/crm`, `urn:billing:zuora`,
    `https://erp.firm.example/hooks` all name one; the first system token wins."""
    for token in re.split(r"[^a-z0-9]+", source.lower()):
        if token in _SYSTEM_NAMES:
            return System(token)
    return None


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Throughline-Signature: sha256=<hex HMAC-SHA256 of the raw body>`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def parse_events(
    content_type: str, headers: Mapping[str, str], body: bytes
) -> list[dict[str, Any]]:
    """The events of one request, each as a dict of CloudEvent attributes plus `data`."""
    media = content_type.split(";")[0].strip().lower()
    if media == BATCH:
        document = _json(body)
        if not isinstance(document, list):
            raise InvalidEvent("a batch must be a JSON array of CloudEvents")
        return [_structured(item, f"[{i}]") for i, item in enumerate(document)]
    if media == STRUCTURED:
        return [_structured(_json(body), "")]
    if "ce-specversion" in headers:
        event: dict[str, Any] = {
            key[3:]: value for key, value in headers.items() if key.startswith("ce-")
        }
        if body:
            event["data"] = (
                _json(body) if media.endswith("json") else body.decode("utf-8", "replace")
            )
        _check(event, "")
        return [event]
    raise InvalidEvent(
        f"content type {media!r} is not a CloudEvent: use {STRUCTURED}, {BATCH}, or binary "
        "mode with ce-* headers"
    )


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"not valid JSON: {exc}") from None


def _structured(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidEvent(f"event{where}: must be a JSON object")
    event = dict(item)
    if "data_base64" in event and "data" not in event:
        raise InvalidEvent(f"event{where}: binary data (data_base64) is not supported")
    _check(event, where)
    return event


def _check(event: dict[str, Any], where: str) -> None:
    missing = [name for name in _REQUIRED if not event.get(name)]
    if missing:
        raise InvalidEvent(f"event{where}: missing required attribute(s) {', '.join(missing)}")
    if str(event["specversion"]) != "1.0":
        raise InvalidEvent(f"event{where}: specversion {event['specversion']!r} (1.0 expected)")
    stage = str(event["type"]).removeprefix("q2c.")
    if not str(event["type"]).startswith("q2c.") or stage not in KNOWN_STAGES:
        raise InvalidEvent(f"event{where}: type {event['type']!r} is not q2c.<lifecycle stage>")
    if not event.get("subject"):
        raise InvalidEvent(f"event{where}: subject (the object id) is required")
    data = event.get("data")
    if data is not None and not isinstance(data, dict):
        raise InvalidEvent(f"event{where}: data must be a JSON object")
    if "time" in event:
        try:
            moment = dt.datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(f"event{where}: time {event['time']!r} is not RFC 3339") from None
        if moment.tzinfo is None:
            raise InvalidEvent(f"event{where}: time {event['time']!r} has no UTC offset")
        event["time"] = moment.astimezone(dt.UTC)
    amount = (data or {}).get("amount")
    if amount is not None:
        try:
            Decimal(str(amount))
        except InvalidOperation:
            raise InvalidEvent(f"event{where}: data.amount {amount!r} is not a number") from None


def observation_from_event(event: Mapping[str, Any], now: dt.datetime) -> Observation:
    stage = str(event["type"]).removeprefix("q2c.")
    subject = str(event["subject"])
    data: Mapping[str, Any] = event.get("data") or {}
    ids = {
        key: str(data[f"{key}_id"])
        for key in ("contract", "project", "invoice", "payment")
        if data.get(f"{key}_id")
    }
    if stage in ITEM_STAGES:
        ids["billable_item"] = subject
    elif stage in INVOICE_STAGES:
        ids["invoice"] = subject
    elif stage == "contract_executed":
        ids["contract"] = subject
    elif stage == "project_activated":
        ids["project"] = subject
    details = {
        column: data[column] for column in DEAL_DIMENSIONS.values() if data.get(column) is not None
    }
    for key in ("billing_model", "quantity", "rate", "kind", "consultant", "po_number"):
        if data.get(key) is not None:
            details[key] = data[key]
    # For the deal's own stages the subject is the deal.
    own_stage = stage in DEAL_RANK and stage not in ("contract_executed", "project_activated")
    deal_subject = subject if own_stage else None
    amount = data.get("amount")
    source = str(event["source"])
    system = system_of(source)
    return Observation(
        dedup_key=f"ce:{source}:{event['id']}",
        stage=stage,
        occurred_at=event.get("time") or now,
        deal_id=str(data["deal_id"]) if data.get("deal_id") else deal_subject,
        ids=ids,
        amount=Decimal(str(amount)) if amount is not None else None,
        currency=str(data["currency"]).upper() if data.get("currency") else None,
        source_system=system.value if system else None,
        trace_id=None,
        span_id=None,
        details=details,
    )
