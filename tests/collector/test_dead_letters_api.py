"""Dead letters over the REST API: list, replay by filter with who and why, read outcome."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import httpx
from opentelemetry.sdk.trace import TracerProvider

from collector.auth import create_token
from connectors.errors import ServerError
from connectors.outbox import BackoffPolicy, ClaimedMessage, Step, enqueue
from connectors.worker import StepResult, Worker
from store.states import System
from tests.collector.conftest import RunningServer

Serve = Callable[..., RunningServer]


def test_dead_letters_are_listed_and_replayed_through_the_api(serve_collector: Serve) -> None:
    server = serve_collector(demo_mode=False)
    now = dt.datetime.now(dt.UTC)
    with server.engine.begin() as conn:
        enqueue(
            conn,
            [
                Step("invoice_to_ar", "post", System.ERP, f"ar:{n}", {}, f"OPP-{n}")
                for n in range(2)
            ],
            now,
        )
    down = True

    def post(message: ClaimedMessage) -> StepResult:
        if down:
            raise ServerError("503", status=503)
        return StepResult({"id": "AR"})

    worker = Worker(
        server.engine,
        {("invoice_to_ar", "post"): post},
        TracerProvider().get_tracer("t"),
        name="w",
        policy=BackoffPolicy(max_attempts=1),
    )
    worker.run_once()
    reader = create_token(server.engine, "dash", {"read"}, now)
    oncall = create_token(server.engine, "oncall", {"replay", "read"}, now)
    listed = httpx.get(
        f"{server.url}/api/v1/dead-letters", headers={"Authorization": f"Bearer {reader}"}
    ).json()["dead_letters"]
    assert [(d["deal_id"], d["error_class"]) for d in listed] == [
        ("OPP-0", "server_error"),
        ("OPP-1", "server_error"),
    ]
    body = {"deal_id": "OPP-1", "reason": "ERP back", "actor": "oncall@firm"}
    refused = httpx.post(
        f"{server.url}/api/v1/dead-letters/replay",
        json=body,
        headers={"Authorization": f"Bearer {reader}"},
    )
    assert refused.status_code == 401
    accepted = httpx.post(
        f"{server.url}/api/v1/dead-letters/replay",
        json=body,
        headers={"Authorization": f"Bearer {oncall}"},
    )
    assert accepted.status_code == 202
    [replay] = accepted.json()["replays"]
    down = False
    worker.run_once()
    outcome = httpx.get(
        f"{server.url}/api/v1/dead-letters/replays/{replay['replay_id']}",
        headers={"Authorization": f"Bearer {reader}"},
    ).json()
    assert (outcome["outcome"], outcome["requested_by"]) == ("succeeded", "oncall@firm")
    bad = httpx.post(
        f"{server.url}/api/v1/dead-letters/replay",
        json={"reason": "x"},
        headers={"Authorization": f"Bearer {oncall}"},
    )
    assert bad.status_code == 422
