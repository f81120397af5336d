"""The deal API: what a deal page needs, fed through the real ingest endpoints."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
from cloudevents.core.bindings.http import to_structured_event
from cloudevents.core.v1.event import CloudEvent

from tests.collector.conftest import RunningServer
from tests.collector.test_otlp_receiver import json_export, json_span

Serve = Callable[..., RunningServer]
T0 = dt.datetime(2025, 11, 3, 10, 0, tzinfo=dt.UTC)  # before the fixed span time (2026-01-01)


def send_event(server: RunningServer, stage: str, subject: str, n: int, **data: object) -> None:
    message = to_structured_event(
        CloudEvent(
            attributes={
                "id": f"e{n}",
                "source": "/crm",
                "type": f"q2c.{stage}",
                "subject": subject,
                "time": T0 + dt.timedelta(days=n),
            },
            data=data,
        )
    )
    assert (
        httpx.post(
            f"{server.url}/api/v1/events", content=message.body, headers=message.headers
        ).status_code
        == 202
    )


def test_a_deal_page_lists_its_stages_objects_and_sync_steps(serve_collector: Serve) -> None:
    server = serve_collector()
    send_event(
        server,
        "closed_won",
        "OPP-7",
        0,
        amount="120000",
        currency="GBP",
        account_id="ACC-1",
        legal_entity="Throughline Ltd",
    )
    send_event(server, "contract_executed", "CTR-7", 2, deal_id="OPP-7", amount="118000")
    send_event(server, "invoiced", "INV-70", 30, deal_id="OPP-7", amount="10000", currency="GBP")
    span = json_span(
        **{
            "q2c.deal.id": "OPP-7",
            "q2c.invoice.id": "INV-70",
            "q2c.stage": "posted",
            "q2c.system": "erp",
            "q2c.flow": "invoice_to_ar",
        }
    )
    assert httpx.post(f"{server.url}/v1/traces", json=json_export([span])).status_code == 200

    deal = httpx.get(f"{server.url}/api/v1/deals/OPP-7").json()
    assert deal["deal"]["stage"] == "first_posted"
    assert deal["deal"]["amount"] == "120000.00"
    assert [(e["object_type"], e["stage"]) for e in deal["events"]] == [
        ("deal", "closed_won"),
        ("contract", "contract_executed"),
        ("deal", "contract_executed"),
        ("invoice", "invoiced"),
        ("deal", "first_invoiced"),
        ("invoice", "posted"),
        ("deal", "first_posted"),
    ]
    assert [c["id"] for c in deal["contracts"]] == ["CTR-7"]
    assert deal["invoices"][0]["stage"] == "posted"
    assert [(s["name"], s["system"], s["flow"]) for s in deal["steps"]] == [
        ("POST /ar/postings", "erp", "invoice_to_ar")
    ]
    trace = httpx.get(f"{server.url}/api/v1/traces/{deal['steps'][0]['trace_id']}").json()
    assert len(trace["spans"]) == 1

    by_invoice = httpx.get(f"{server.url}/api/v1/deals", params={"q": "INV-70"}).json()
    assert [d["id"] for d in by_invoice["deals"]] == ["OPP-7"]
    by_account = httpx.get(f"{server.url}/api/v1/deals", params={"q": "ACC-1"}).json()
    assert [d["id"] for d in by_account["deals"]] == ["OPP-7"]
    assert httpx.get(f"{server.url}/api/v1/deals/NOPE").status_code == 404


def test_deals_are_paged_by_cursor(serve_collector: Serve) -> None:
    server = serve_collector()
    for n in range(5):
        send_event(server, "closed_won", f"OPP-{n}", n)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{server.url}/api/v1/deals", params=params).json()
        seen += [d["id"] for d in page["deals"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"OPP-{n}" for n in range(5)]
    bad = httpx.get(f"{server.url}/api/v1/deals", params={"cursor": "%%%"})
    assert bad.status_code == 400
    assert "not one this API returned" in bad.json()["detail"]


def test_reading_needs_a_read_token_outside_demo_mode(serve_collector: Serve) -> None:
    from collector.auth import create_token

    server = serve_collector(demo_mode=False)
    assert httpx.get(f"{server.url}/api/v1/deals").status_code == 401
    token = create_token(server.engine, "dash", {"read"}, dt.datetime.now(dt.UTC))
    ok = httpx.get(f"{server.url}/api/v1/deals", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json() == {"deals": [], "next_cursor": None}
