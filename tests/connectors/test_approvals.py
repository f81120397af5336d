"""Approval checkpoints (DESIGN 1: some steps wait for a person on purpose): with
`approvals.invoice_above` set, an invoice worth more than it waits before its AR posting,
held, while its SLA clock runs on; approving it (command line) posts it once, rejecting it
(REST API) leaves a dead letter that says why, and replaying that asks again. With
`approvals.over_cap`, a billable past its contract's cap waits instead of being rejected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from collector.api import create_app
from connectors.approvals import ApprovalPolicy, decide, list_approvals
from connectors.replay import replay_statuses, request_replay
from probes.base import ProbeContext
from probes.stuck import StuckWorkProbe
from store import migrate
from store.engine import make_engine
from store.outbox import DeadLetter, SyncAttempt, SyncMessage
from store.states import ApprovalState, DeadLetterState, MessageState, ReplayOutcome
from tests.connectors.firm import Firm, start_firm
from throughline.cli import app
from throughline.config import ApprovalSettings, Settings

DAYS = 75
LIMIT = 25_000.0  # USD: about half the firm's invoices in these days are worth more


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    directory = tmp_path_factory.mktemp("approvals")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    settings = Settings().model_copy(update={"approvals": ApprovalSettings(invoice_above=LIMIT)})
    running = start_firm(directory, engine, seed=42, horizon_days=DAYS + 30, settings=settings)
    try:
        running.run(DAYS)
        yield running
    finally:
        running.stop()
        engine.dispose()


def worth(invoice: dict) -> float:  # type: ignore[type-arg]
    return float(invoice["amount"]) * Settings().kpis.fx_rates[invoice["currency"]]


def posted(firm: Firm) -> list[str]:
    return [p["externalId"] for p in firm.world.services["erp"].store.all("ar_postings")]


def held_messages(firm: Firm) -> dict[str, tuple[str, int]]:
    """invoice id -> (message state, attempts stored) of each invoice's posting step."""
    with firm.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                SyncMessage.idempotency_key,
                SyncMessage.state,
                sa.select(sa.func.count())
                .where(SyncAttempt.message_id == SyncMessage.id)
                .scalar_subquery(),
            ).where(SyncMessage.flow == "invoice_to_ar")
        ).all()
    return {key.split(":", 1)[1]: (str(state), n) for key, state, n in rows}


def test_invoices_above_the_limit_wait_held_and_the_others_post(firm: Firm) -> None:
    invoices = firm.world.services["billing"].store.all("invoices")
    above = {i["id"]: i for i in invoices if worth(i) > LIMIT}
    below = {i["id"] for i in invoices if worth(i) <= LIMIT}
    assert above and below, f"the limit splits nothing: {[worth(i) for i in invoices]}"
    # the limit is in the reporting currency: one invoice under it in its own currency
    # but over it converted makes the point
    assert any(float(i["amount"]) <= LIMIT for i in above.values()), "no converted case"

    assert sorted(posted(firm)) == sorted(below)
    rows, total = list_approvals(firm.engine, ApprovalState.OPEN, limit=1000)
    assert total == len(above)
    assert {r.object_id for r in rows} == set(above)
    for r in rows:
        invoice = above[r.object_id]
        assert (r.amount, r.currency) == (Decimal(invoice["amount"]), invoice["currency"])
        assert (r.object_type, r.deal_id, r.flow) == (
            "invoice",
            invoice["deal_id"],
            "invoice_to_ar",
        )
        assert "above the approval limit 25,000.00 USD" in r.reason
        assert r.message_state is MessageState.HELD
    # held: not retried, no attempt counted against it (the held run was not an attempt)
    messages = held_messages(firm)
    assert {i: messages[i] for i in above} == dict.fromkeys(above, ("held", 0))

    # the SLA clock of `posted` keeps running: the stuck-work probe names each waiting
    # invoice, and why
    ctx = ProbeContext(firm.engine, firm.connectors.context.apis, firm.world.clock.now)
    stuck = StuckWorkProbe("invoice", Settings()).run(ctx)
    waiting = {f.object_id: f for f in stuck.findings if f.object_id in above}
    assert set(waiting) == set(above)
    assert all("waiting for approval" in f.detail["cause"] for f in waiting.values())


def test_approved_post_once_and_rejected_become_dead_letters_replayed_as_asked_again(
    firm: Firm, tmp_path: Path
) -> None:
    rows, _ = list_approvals(firm.engine, ApprovalState.OPEN, limit=1000)
    assert len(rows) >= 3
    approve, reject, left = rows[0], rows[1], rows[2:]
    env = {"THROUGHLINE_DATABASE__URL": str(firm.engine.url)}
    runner = CliRunner()

    listed = runner.invoke(app, ["approvals", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert {a["id"] for a in json.loads(listed.stdout)["approvals"]} == {r.id for r in rows}

    table = runner.invoke(app, ["approvals", "list", "--limit", "2"], env=env)
    assert table.exit_code == 0, table.output
    assert f"1-2 of {len(rows)} approval(s); next page: --offset 2" in table.stdout
    assert approve.object_id in table.stdout
    wrong = runner.invoke(app, ["approvals", "list", "--state", "pending"], env=env)
    assert wrong.exit_code == 2 and "use one of open, approved, rejected or all" in wrong.output

    done = runner.invoke(
        app, ["approvals", "approve", str(approve.id), "--as", "cfo", "-n", "signed"], env=env
    )
    assert done.exit_code == 0, done.output
    assert "1 approved" in done.stdout

    client = TestClient(create_app(firm.engine))
    refused = client.post(
        "/api/v1/approvals/decisions",
        json={"ids": [reject.id], "decision": "reject", "actor": "controller"},
    )
    assert refused.status_code == 422 and "note" in refused.json()["detail"]
    rejected = client.post(
        "/api/v1/approvals/decisions",
        json={
            "ids": [reject.id],
            "decision": "reject",
            "actor": "controller",
            "note": "the customer disputes the scope",
        },
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["decisions"] == [
        {
            "id": reject.id,
            "state": "rejected",
            "message_id": rejected.json()["decisions"][0]["message_id"],
        }
    ]
    # a decided approval cannot be decided again, and nothing of the request is taken
    twice = client.post(
        "/api/v1/approvals/decisions",
        json={"ids": [left[0].id, approve.id], "decision": "approve", "actor": "cfo"},
    )
    assert twice.status_code == 409
    assert f"approval {approve.id} is already approved" in twice.json()["detail"]
    again = runner.invoke(app, ["approvals", "approve", "999999"], env=env)
    assert again.exit_code == 1 and "approval 999999 does not exist" in again.output

    firm.run(1)
    erp = posted(firm)
    assert erp.count(approve.object_id) == 1  # posted, once
    assert reject.object_id not in erp
    assert not {r.object_id for r in left} & set(erp)  # the others still wait
    messages = held_messages(firm)
    assert messages[approve.object_id] == ("succeeded", 1)
    assert messages[reject.object_id][0] == "dead"
    with firm.engine.connect() as conn:
        letter = conn.execute(
            sa.select(DeadLetter.id, DeadLetter.error_class, DeadLetter.error).where(
                DeadLetter.message_id == rejected.json()["decisions"][0]["message_id"]
            )
        ).one()
    assert letter.error_class == "approval_rejected"
    assert "rejected by controller: the customer disputes the scope" in (letter.error or "")

    decided = {
        a["id"]: a
        for a in client.get("/api/v1/approvals", params={"state": "all", "limit": 1000}).json()[
            "approvals"
        ]
    }
    assert (decided[approve.id]["state"], decided[approve.id]["decided_by"]) == ("approved", "cfo")
    assert decided[approve.id]["note"] == "signed"
    assert decided[reject.id]["state"] == "rejected"
    page = client.get("/api/v1/approvals", params={"state": "open", "limit": 1}).json()
    assert (page["total"], len(page["approvals"])) == (len(left), 1)
    assert client.get("/api/v1/approvals", params={"state": "maybe"}).status_code == 422

    # replaying the rejected one asks for approval again: it waits, it does not post
    [replay] = request_replay(
        firm.engine, [letter.id], "finance", "customer agreed", firm.world.clock.now()
    )
    firm.run(1)
    assert reject.object_id not in posted(firm)
    reopened, _ = list_approvals(firm.engine, ApprovalState.OPEN, limit=1000)
    assert reject.id in {r.id for r in reopened}
    assert held_messages(firm)[reject.object_id][0] == "held"
    [waiting] = replay_statuses(firm.engine, [replay.replay_id])
    assert waiting.outcome is ReplayOutcome.PENDING  # the replay waits with the approval

    # rejected again: the dead letter is open again and the replay that waited has failed
    decide(
        firm.engine, [reject.id], approve=False, actor="cfo", note="no", now=firm.world.clock.now()
    )
    [settled] = replay_statuses(firm.engine, [replay.replay_id])
    assert settled.outcome is ReplayOutcome.FAILED
    with firm.engine.connect() as conn:
        state = conn.execute(
            sa.select(DeadLetter.state, DeadLetter.error).where(DeadLetter.id == letter.id)
        ).one()
    assert (state.state, state.error) == (
        DeadLetterState.OPEN,
        f"approval {reject.id} rejected by cfo: no",
    )


def test_the_limit_is_in_the_reporting_currency_and_an_unknown_currency_waits() -> None:
    policy = ApprovalPolicy(1000.0, "USD", {"USD": 1.0, "GBP": 1.27})
    assert policy.invoice_reason(Decimal("1000.00"), "USD") is None  # at the limit: no wait
    assert policy.invoice_reason(Decimal("1000.01"), "USD") == (
        "invoice of 1,000.01 USD is above the approval limit 1,000.00 USD"
    )
    assert policy.invoice_reason(Decimal("800.00"), "GBP") == (
        "invoice of 800.00 GBP (1,016.00 USD) is above the approval limit 1,000.00 USD"
    )
    assert policy.invoice_reason(Decimal("5.00"), "JPY") == "5.00 JPY has no rate to USD"
    assert ApprovalPolicy(None, "USD", {}).invoice_reason(Decimal("1e9"), "USD") is None


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    """A firm with `approvals.over_cap`: after a month, one time-and-materials contract's
    cap is lowered to what it has billed, so its next approved hours go past it."""
    directory = tmp_path_factory.mktemp("over-cap")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    settings = Settings().model_copy(update={"approvals": ApprovalSettings(over_cap=True)})
    running = start_firm(directory, engine, seed=42, horizon_days=60, settings=settings)
    try:
        running.run(30)
        yield running
    finally:
        running.stop()
        engine.dispose()


def test_a_billable_past_the_cap_waits_for_approval_instead_of_being_rejected(
    capped: Firm,
) -> None:
    billing = capped.world.services["billing"]
    charges = billing.store.all("charges")
    billed: dict[str, Decimal] = {}
    for c in charges:
        amount = Decimal(c["quantity"]) * Decimal(c["unit_price"])
        billed[c["billing_schedule_id"]] = billed.get(c["billing_schedule_id"], Decimal(0)) + amount
    schedule = next(
        s
        for s in billing.store.all("billing_schedules")
        if s["billing_model"] == "time_and_materials" and s["id"] in billed
    )
    billing.update(
        "billing_schedules", str(schedule["id"]), {"cap_amount": str(billed[schedule["id"]])}
    )
    before = {c["id"] for c in charges}
    capped.run(10)

    held, _ = list_approvals(capped.engine, ApprovalState.OPEN, limit=1000)
    over = [a for a in held if a.object_type == "billable_item"]
    assert over, "no billable went past the lowered cap"
    assert all("past the cap" in a.reason for a in over)
    assert {a.currency for a in over} == {schedule["currency"]}
    new = [c for c in billing.store.all("charges") if c["id"] not in before]
    assert not {c["source_reference"] for c in new if c["billing_schedule_id"] == schedule["id"]}
    with capped.engine.connect() as conn:
        rejected = conn.execute(
            sa.select(sa.func.count())
            .select_from(DeadLetter)
            .where(DeadLetter.flow == "billables", DeadLetter.error_class == "validation")
        ).scalar()
    assert rejected == 0  # waiting for a person, not refused

    first = over[0]
    decide(
        capped.engine,
        [first.id],
        approve=True,
        actor="cfo",
        note="change order 7",
        now=capped.world.clock.now(),
    )
    capped.run(1)
    charged = {c["source_reference"] for c in billing.store.all("charges")}
    assert first.object_id in charged  # charged past the cap, as approved
    assert not {a.object_id for a in over[1:]} & charged  # the others still wait
