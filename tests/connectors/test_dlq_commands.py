"""`throughline dlq list|show|replay` on a store with dead letters."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine

from connectors.errors import ServerError, ValidationFailed
from connectors.outbox import BackoffPolicy, ClaimedMessage, Step, enqueue
from connectors.worker import StepResult, Worker
from store.outbox import Replay
from store.states import System
from tests.throughline.test_cli import run

T0 = dt.datetime.now(dt.UTC)


def test_dead_letters_are_listed_shown_and_replayed_by_filter(engine: Engine) -> None:
    def fail(message: ClaimedMessage) -> StepResult:
        if message.payload["n"] == 0:
            raise ValidationFailed("invoice INV-0 lacks the contract's PO PO-7")
        raise ServerError("POST /ar_postings -> 503", status=503)

    with engine.begin() as conn:
        enqueue(
            conn,
            [
                Step("invoice_to_ar", "post", System.ERP, f"ar:{n}", {"n": n}, f"OPP-{n}")
                for n in range(3)
            ],
            T0,
        )
    Worker(
        engine,
        {("invoice_to_ar", "post"): fail},
        TracerProvider().get_tracer("t"),
        name="w",
        policy=BackoffPolicy(max_attempts=1),
    ).run_once()
    env = {"THROUGHLINE_DATABASE__URL": engine.url.render_as_string(hide_password=False)}

    listed = run(["dlq", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "3 open dead letter(s)" in listed.stdout
    assert "validation" in listed.stdout and "server_error" in listed.stdout
    only = run(["dlq", "list", "--error-class", "validation"], env)
    assert "1 open dead letter(s)" in only.stdout and "OPP-0" in only.stdout

    shown = run(["dlq", "show", "1"], env)
    assert shown.returncode == 0, shown.stderr
    assert "idempotency key ar:0" in shown.stdout
    assert "lacks the contract's PO" in shown.stdout

    refused = run(["dlq", "replay", "--reason", "x"], env)
    assert refused.returncode == 2 and "--all" in refused.stderr
    replayed = run(
        [
            "dlq",
            "replay",
            "--error-class",
            "server_error",
            "--reason",
            "ERP back",
            "--as",
            "oncall@firm",
        ],
        env,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "queued 2 replay(s)" in replayed.stdout
    with engine.connect() as conn:
        who = conn.execute(sa.select(Replay.requested_by, Replay.reason)).all()
    assert who == [("oncall@firm", "ERP back")] * 2
    assert "1 open dead letter(s)" in run(["dlq", "list"], env).stdout
