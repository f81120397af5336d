"""Compensation of a contract cancelled after provisioning (DESIGN 1): flow 2 closes the PSA
project and cancels the billing schedule, so nothing more is booked or billed to it, and
the deal reaches `cancelled`, which the backlog and the activation queue leave out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connectors.flows import provisioning
from connectors.outbox import ClaimedMessage
from kpis.compute import compute_kpis
from kpis.frames import load_store_frames
from store import migrate
from store.engine import make_engine
from store.objects import Deal
from store.states import System
from store.telemetry import LifecycleEvent
from tests.connectors.firm import Firm, start_firm
from tests.sandbox.http import admin_put_faults
from throughline.config import Settings

DAYS = 75
CANCELLING = (dt.date(2026, 2, 2), dt.date(2026, 2, 16))  # customers cancel in these days


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    directory = tmp_path_factory.mktemp("cancellations")
    engine = make_engine(f"sqlite:///{directory}/store.db", immediate=True)
    migrate.upgrade(engine)
    running = start_firm(directory, engine, seed=42, horizon_days=DAYS)
    clm = running.servers.urls["clm"]

    def before_sync(day: dt.date) -> None:  # after the day's actors: takes effect the next day
        if day == CANCELLING[0] - dt.timedelta(days=1):
            admin_put_faults(clm, contract_cancellation_rate=1.0)
        if day == CANCELLING[1] - dt.timedelta(days=1):
            admin_put_faults(clm, contract_cancellation_rate=0.0)

    try:
        running.run(DAYS, before_sync)
        yield running
    finally:
        running.stop()


def records(firm: Firm, system: str, collection: str) -> list[dict]:  # type: ignore[type-arg]
    return firm.world.services[system].store.all(collection)


def test_a_cancelled_contract_closes_its_project_and_cancels_its_schedule(firm: Firm) -> None:
    agreements = records(firm, "clm", "agreements")
    cancelled = {a["id"]: a["cancelled_at"] for a in agreements if a["status"] == "cancelled"}
    assert cancelled, "no contract was cancelled"
    executed = {a["id"] for a in agreements if a["status"] == "executed"}
    assert executed, "every contract was cancelled: nothing shows the others stay open"
    workspaces = {w["external_reference"]: w for w in records(firm, "psa", "workspaces")}
    schedules = {s["contract_number"]: s for s in records(firm, "billing", "billing_schedules")}
    assert {a for a in cancelled if workspaces[a]["status"] == "closed"} == set(cancelled)
    assert {a for a in cancelled if schedules[a]["status"] == "cancelled"} == set(cancelled)
    assert all(workspaces[a]["status"] == "active" for a in executed if a in workspaces)
    assert all(schedules[a]["status"] == "active" for a in executed if a in schedules)

    # nothing was billed to a cancelled contract after its cancellation, while the others
    # went on being billed
    by_schedule = {s["id"]: s["contract_number"] for s in schedules.values()}
    invoices = records(firm, "billing", "invoices")
    late = [
        i
        for i in invoices
        if by_schedule[i["billing_schedule_id"]] in cancelled
        and i["invoice_date"] > cancelled[by_schedule[i["billing_schedule_id"]]]
    ]
    assert late == []
    last = max(cancelled.values())
    assert any(i["invoice_date"] > last for i in invoices)


def test_the_deal_reaches_cancelled_and_leaves_backlog_and_activation_queue(
    firm: Firm,
) -> None:
    agreements = records(firm, "clm", "agreements")
    cancelled = {
        a["source_ref"]["opportunity_id"]: a["cancelled_at"]
        for a in agreements
        if a["status"] == "cancelled"
    }
    with firm.engine.connect() as conn:
        events = conn.execute(
            sa.select(LifecycleEvent.deal_id, LifecycleEvent.occurred_at).where(
                LifecycleEvent.stage == "cancelled"
            )
        ).all()
        stages = dict(
            conn.execute(sa.select(Deal.id, Deal.stage).where(Deal.id.in_(list(cancelled)))).all()
        )
        frames = load_store_frames(conn)
    assert {(d, at.date().isoformat()) for d, at in events} == set(cancelled.items())
    assert set(stages.values()) == {"cancelled"}

    values = {
        v.kpi: v
        for v in compute_kpis(frames, None, Settings(), firm.world.clock.now())
        if v.dimension == "all" and v.window == "now"
    }
    assert values["funnel_count_cancelled"].value == len(cancelled)
    assert set(values["funnel_count_cancelled"].members) == set(cancelled)
    assert values["backlog"].member_count > 0
    assert not set(values["backlog"].members) & set(cancelled)
    assert not set(values["activation_pending_count"].members) & set(cancelled)


def test_a_project_or_schedule_step_run_after_the_cancellation_creates_nothing(
    firm: Firm,
) -> None:
    """The race DESIGN's compensation leaves: a contract cancelled while its provisioning
    steps were still due (retrying past a PSA outage, or dead-lettered and replayed after
    the cancel step found nothing to close). The step asks CLM first and creates nothing."""
    clm = firm.world.services["clm"]
    executed = next(a for a in records(firm, "clm", "agreements") if a["status"] == "executed")
    late = {**executed, "id": f"{executed['id']}-late"}  # provisioned never, cancelled since
    now = firm.world.clock.now()
    clm.store.insert(
        "agreements",
        late["id"],
        {**late, "status": "cancelled", "cancelled_at": now.date().isoformat()},
        now,
    )
    customer = records(firm, "erp", "customers")[0]["id"]
    handlers = provisioning.handlers(firm.connectors.context)
    results = [
        handlers[(provisioning.FLOW, step)](
            ClaimedMessage(
                0,
                provisioning.FLOW,
                step,
                system,
                f"{provisioning.FLOW}.{step}:{late['id']}",
                {"agreement": late, "customer_id": customer},
                late["source_ref"]["opportunity_id"],
                attempt=2,
            )
        )
        for step, system in (("project", System.PSA), ("schedule", System.BILLING))
    ]
    assert [(r.stage, r.already_done) for r in results] == [(None, True)] * 2
    assert all(r.result["cancelled_at"] == now.date().isoformat() for r in results)
    workspaces = {w["external_reference"] for w in records(firm, "psa", "workspaces")}
    schedules = {s["contract_number"] for s in records(firm, "billing", "billing_schedules")}
    assert late["id"] not in workspaces and late["id"] not in schedules
    assert executed["id"] in workspaces and executed["id"] in schedules

    # the same steps for a contract that stands do create: the check is not a blanket no
    standing = {**executed, "id": f"{executed['id']}-standing"}
    clm.store.insert("agreements", standing["id"], standing, now)
    created = handlers[(provisioning.FLOW, "project")](
        ClaimedMessage(
            0,
            provisioning.FLOW,
            "project",
            System.PSA,
            f"{provisioning.FLOW}.project:{standing['id']}",
            {"agreement": standing, "customer_id": customer},
            standing["source_ref"]["opportunity_id"],
            attempt=1,
        )
    )
    assert created.stage == "project_activated" and not created.already_done
    workspaces = {w["external_reference"] for w in records(firm, "psa", "workspaces")}
    assert standing["id"] in workspaces
