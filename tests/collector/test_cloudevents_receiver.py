"""CloudEvents from webhooks, sent with the CloudEvents SDK in all three HTTP modes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable

import httpx
import orjson
import sqlalchemy as sa
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import Engine

from store.objects import Deal, Invoice
from store.telemetry import LifecycleEvent, WebhookSource
from tests.collector.conftest import RunningServer

Serve = Callable[..., RunningServer]
T0 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


def event(
    stage: str,
    subject: str,
    event_id: str,
    at: dt.datetime = T0,
    source: str = "/billing",
    **data: object,
) -> CloudEvent:
    return CloudEvent(
        attributes={
            "id": event_id,
            "source": source,
            "type": f"q2c.{stage}",
            "subject": subject,
            "time": at,
            "datacontenttype": "application/json",
        },
        data=data,
    )


def post(
    server: RunningServer,
    message_headers: dict[str, str],
    body: bytes,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/events", content=body, headers={**message_headers, **(extra or {})}
    )


def stages(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                LifecycleEvent.object_type, LifecycleEvent.object_id, LifecycleEvent.stage
            ).order_by(LifecycleEvent.id)
        ).all()
    return [(str(t), o, s) for t, o, s in rows]


def sources(engine: Engine) -> dict[str, int]:
    """Events noted per source in webhook_sources (what freshness.webhooks reads)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(WebhookSource.source, WebhookSource.events)).all()
    return {source: events for source, events in rows}


def test_structured_and_binary_events_become_lifecycle_events(serve_collector: Serve) -> None:
    server = serve_collector()
    won = to_structured_event(
        event(
            "closed_won",
            "OPP-1",
            "e1",
            source="/crm",
            amount="90000",
            currency="USD",
            legal_entity="Throughline Inc",
            region="NA",
            practice="Cloud",
        )
    )
    response = post(server, won.headers, won.body)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1}
    invoiced = to_binary_event(
        event(
            "invoiced",
            "INV-1",
            "e2",
            at=T0 + dt.timedelta(days=30),
            deal_id="OPP-1",
            amount="30000.00",
            currency="USD",
        )
    )
    assert post(server, invoiced.headers, invoiced.body).status_code == 202
    assert stages(server.engine) == [
        ("deal", "OPP-1", "closed_won"),
        ("invoice", "INV-1", "invoiced"),
        ("deal", "OPP-1", "first_invoiced"),
    ]
    assert sources(server.engine) == {"/crm": 1, "/billing": 1}
    with server.engine.connect() as conn:
        deal = conn.execute(sa.select(Deal)).one()
        invoice = conn.execute(sa.select(Invoice)).one()
    assert (deal.stage, str(deal.amount), deal.region, deal.closed_won_at) == (
        "first_invoiced",
        "90000.00",
        "NA",
        T0,
    )
    assert (invoice.deal_id, str(invoice.amount), invoice.issued_at) == (
        "OPP-1",
        "30000.00",
        T0 + dt.timedelta(days=30),
    )


def test_a_batch_is_stored_whole_and_duplicates_once(serve_collector: Serve) -> None:
    server = serve_collector()
    fmt = JSONFormat()
    events = [
        event("invoiced", "INV-2", "e1", deal_id="OPP-2", amount="100.00", currency="EUR"),
        event("posted", "INV-2", "e2", at=T0 + dt.timedelta(minutes=20), deal_id="OPP-2"),
    ]
    body = b"[" + b",".join(fmt.write(e) for e in events) + b"]"
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    assert post(server, headers, body).json() == {"accepted": 2}
    assert post(server, headers, body).status_code == 202  # at-least-once redelivery
    assert len(stages(server.engine)) == 4  # invoiced, first_invoiced, posted, first_posted
    assert sources(server.engine) == {"/billing": 4}  # a redelivery is a sign of life too
    with server.engine.connect() as conn:
        assert conn.execute(sa.select(Invoice.stage)).scalar_one() == "posted"


def test_a_bad_event_in_a_batch_stores_nothing_and_says_which(serve_collector: Serve) -> None:
    server = serve_collector()
    good = orjson.loads(JSONFormat().write(event("invoiced", "INV-3", "e1", deal_id="OPP-3")))
    bad = {**good, "id": "e2", "type": "com.example.unknown"}
    response = post(
        server, {"Content-Type": "application/cloudevents-batch+json"}, orjson.dumps([good, bad])
    )
    assert response.status_code == 400
    assert (
        "event[1]: type 'com.example.unknown' is not q2c.<lifecycle stage>"
        in response.json()["message"]
    )
    assert stages(server.engine) == []
    assert sources(server.engine) == {}


def test_missing_attributes_and_wrong_content_type_are_refused(serve_collector: Serve) -> None:
    server = serve_collector()
    no_id = post(
        server,
        {"Content-Type": "application/cloudevents+json"},
        orjson.dumps({"specversion": "1.0", "source": "/crm", "type": "q2c.closed_won"}),
    )
    assert no_id.status_code == 400
    assert "missing required attribute(s) id" in no_id.json()["message"]
    plain = post(server, {"Content-Type": "text/plain"}, b"hi")
    assert plain.status_code == 400
    assert "is not a CloudEvent" in plain.json()["message"]
    assert stages(server.engine) == []


def test_a_source_with_a_webhook_secret_must_sign(serve_collector: Serve) -> None:
    server = serve_collector(
        settings={
            "systems": {
                "billing": {
                    "base_url": "http://127.0.0.1:8604",
                    "auth": {"kind": "api_key", "api_key": "k"},
                    "webhook_secret": "whsec-1",
                }
            }
        },
        demo_mode=False,
    )
    message = to_structured_event(event("invoiced", "INV-4", "e1", deal_id="OPP-4"))
    unsigned = post(server, message.headers, message.body)
    assert unsigned.status_code == 401
    forged = post(
        server, message.headers, message.body, {"X-Throughline-Signature": "sha256=" + "0" * 64}
    )
    assert forged.status_code == 401
    assert stages(server.engine) == []
    signature = hmac.new(b"whsec-1", message.body, hashlib.sha256).hexdigest()
    signed = post(
        server, message.headers, message.body, {"X-Throughline-Signature": f"sha256={signature}"}
    )
    assert signed.status_code == 202, signed.text
    assert stages(server.engine)[0] == ("invoice", "INV-4", "invoiced")
