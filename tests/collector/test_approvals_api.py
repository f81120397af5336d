"""Approvals over the REST API outside demo mode: listing needs scope read, deciding needs
scope approve, and a decision moves the held step on (the flow side is in
tests/connectors/test_approvals.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from collector.auth import create_token
from connectors.approvals import Checkpoint, require
from connectors.errors import AwaitingApproval
from connectors.outbox import Outcome, Step, claim, enqueue, record
from store.states import AttemptOutcome, MessageState, System
from tests.collector.conftest import RunningServer

Serve = Callable[..., RunningServer]


def test_listing_needs_read_and_deciding_needs_approve(serve_collector: Serve) -> None:
    server = serve_collector(demo_mode=False)
    now = dt.datetime.now(dt.UTC)
    with server.engine.begin() as conn:
        enqueue(conn, [Step("invoice_to_ar", "post", System.ERP, "ar:INV-9", {}, "OPP-9")], now)
    [message] = claim(server.engine, "w", now)
    wait = Checkpoint("invoice:INV-9", "invoice", "INV-9", Decimal("90000"), "EUR", "too big")
    with pytest.raises(AwaitingApproval) as held:
        require(server.engine, message, wait, now)
    outcome = Outcome(AttemptOutcome.HELD, 1, approval_id=held.value.approval_id)
    assert record(server.engine, message, outcome, now, worker="w") is MessageState.HELD

    reader = create_token(server.engine, "dash", {"read"}, now)
    controller = create_token(server.engine, "controller", {"approve"}, now)
    url = f"{server.url}/api/v1/approvals"
    assert httpx.get(url).status_code == 401
    [listed] = httpx.get(url, headers={"Authorization": f"Bearer {reader}"}).json()["approvals"]
    assert (listed["object_id"], listed["amount"], listed["currency"]) == (
        "INV-9",
        "90000.00",
        "EUR",
    )
    assert (listed["state"], listed["message_state"], listed["deal_id"]) == (
        "open",
        "held",
        "OPP-9",
    )

    body = {"ids": [listed["id"]], "decision": "approve", "actor": "controller@firm"}
    refused = httpx.post(
        f"{url}/decisions", json=body, headers={"Authorization": f"Bearer {reader}"}
    )
    assert refused.status_code == 401
    assert "scope approve" in refused.json()["detail"]
    decided = httpx.post(
        f"{url}/decisions", json=body, headers={"Authorization": f"Bearer {controller}"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["decisions"][0]["state"] == "approved"
    # due again: the next claim takes it, as the same first attempt
    [again] = claim(server.engine, "w", now + dt.timedelta(seconds=1))
    assert (again.id, again.attempt) == (message.id, 1)
    bad = httpx.post(
        f"{url}/decisions",
        json={"ids": [], "decision": "approve", "actor": "x"},
        headers={"Authorization": f"Bearer {controller}"},
    )
    assert bad.status_code == 422
