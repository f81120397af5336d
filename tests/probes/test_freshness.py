"""Freshness and absence probes: a webhook source that stops, a flow that goes quiet, an
outbox nobody runs. Webhooks arrive through the running collector, sent with the
CloudEvents SDK."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent
from sqlalchemy import Engine, insert, update

from probes.base import ProbeContext
from probes.freshness import FlowFreshnessProbe, OutboxStallProbe, WebhookFreshnessProbe
from store.outbox import SyncAttempt, SyncMessage
from store.states import AttemptOutcome, MessageState, ProbeStatus, System
from tests.collector.conftest import RunningServer
from tests.collector.conftest import serve_collector as serve_collector  # the fixture

NOW = dt.datetime.now(dt.UTC)


def ctx(engine: Engine, now: dt.datetime) -> ProbeContext:
    return ProbeContext(engine, {}, lambda: now)


def send(server: RunningServer, source: str, event_id: str) -> None:
    message = to_structured_event(
        CloudEvent(
            attributes={
                "id": event_id,
                "source": source,
                "type": "q2c.invoiced",
                "subject": f"INV-{event_id}",
                "datacontenttype": "application/json",
            },
            data={"deal_id": "OPP-1", "amount": "100.00", "currency": "USD"},
        )
    )
    response = httpx.post(
        f"{server.url}/api/v1/events", content=message.body, headers=message.headers
    )
    assert response.status_code < 300, response.text


def test_a_webhook_source_that_stops_is_reported_with_its_last_delivery(
    serve_collector: Callable[..., RunningServer], engine: Engine
) -> None:
    server = serve_collector()
    send(server, "/billing", "b-1")
    send(server, "/crm", "c-1")
    probe = WebhookFreshnessProbe(
        {"/billing": dt.timedelta(minutes=30), "/crm": dt.timedelta(hours=6)}
    )

    fresh = probe.run(ctx(engine, NOW + dt.timedelta(minutes=5)))
    assert fresh.status is ProbeStatus.OK
    assert fresh.findings == []

    # An hour later billing has sent nothing more; the CRM is still within its 6 h.
    later = probe.run(ctx(engine, NOW + dt.timedelta(hours=1)))
    assert later.status is ProbeStatus.FAIL
    assert [(f.kind, f.object_id) for f in later.findings] == [("webhook_silent", "/billing")]
    assert later.findings[0].detail["last_seen"] is not None
    assert later.findings[0].detail["silent_for_s"] > 30 * 60
    assert "/billing: last webhook" in (later.observed or "")

    # A source that never sent anything is silent too.
    never = WebhookFreshnessProbe({"/psa": dt.timedelta(hours=1)}).run(ctx(engine, NOW))
    assert never.status is ProbeStatus.FAIL
    assert never.findings[0].detail["last_seen"] is None


def _message(engine: Engine, flow: str, due: dt.datetime, state: MessageState) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(SyncMessage)
                .values(
                    flow=flow,
                    step="post",
                    system=System.ERP,
                    idempotency_key=f"{flow}-{due.isoformat()}",
                    payload={},
                    state=state,
                    attempts=0,
                    next_attempt_at=due,
                    created_at=due,
                    updated_at=due,
                )
                .returning(SyncMessage.id)
            ).scalar_one()
        )


def test_a_flow_gone_quiet_trips_its_dead_mans_switch(engine: Engine) -> None:
    for flow, at in (("invoice_to_ar", NOW - dt.timedelta(hours=5)), ("intake", NOW)):
        message_id = _message(engine, flow, at, MessageState.SUCCEEDED)
        with engine.begin() as conn:
            conn.execute(
                insert(SyncAttempt).values(
                    message_id=message_id,
                    attempt_no=1,
                    outcome=AttemptOutcome.SUCCEEDED,
                    started_at=at,
                    duration_ms=12,
                )
            )
    probe = FlowFreshnessProbe(
        {"invoice_to_ar": dt.timedelta(hours=2), "intake": dt.timedelta(hours=2)}
    )
    outcome = probe.run(ctx(engine, NOW))
    assert outcome.status is ProbeStatus.FAIL
    assert [f.object_id for f in outcome.findings] == ["invoice_to_ar"]
    assert set(outcome.detail["last_success"]) == {"invoice_to_ar", "intake"}

    relaxed = FlowFreshnessProbe({"invoice_to_ar": dt.timedelta(hours=6)}).run(ctx(engine, NOW))
    assert relaxed.status is ProbeStatus.OK


def test_due_messages_nobody_runs_mean_no_worker(engine: Engine) -> None:
    probe = OutboxStallProbe(dt.timedelta(minutes=15))
    assert probe.run(ctx(engine, NOW)).status is ProbeStatus.OK
    recent = _message(engine, "intake", NOW - dt.timedelta(minutes=2), MessageState.PENDING)
    assert probe.run(ctx(engine, NOW)).status is ProbeStatus.OK
    stale = _message(engine, "intake", NOW - dt.timedelta(hours=1), MessageState.PENDING)
    outcome = probe.run(ctx(engine, NOW))
    assert outcome.status is ProbeStatus.FAIL
    assert outcome.detail["overdue_messages"] == 1
    assert "is a worker running?" in (outcome.observed or "")
    with engine.begin() as conn:
        conn.execute(
            update(SyncMessage)
            .where(SyncMessage.id.in_([recent, stale]))
            .values(state=MessageState.SUCCEEDED)
        )
    assert probe.run(ctx(engine, NOW)).status is ProbeStatus.OK
