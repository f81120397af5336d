"""The scenario generator and the actors on the simulated clock: same seed, same world;
a quarter with a stand-in for the connectors looks like a real firm and matches its
ground truth."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox import ground_truth
from sandbox.clock import ManualClock
from sandbox.faults import profile
from sandbox.scenario import generate_firm
from sandbox.servers import SandboxServers
from sandbox.services import SYSTEMS, build_services
from sandbox.world import World, day_start
from sandbox.world_state import WorldState
from tests.sandbox.http import ADMIN, admin_put_faults
from tests.sandbox.sink import WebhookSink
from tests.sandbox.standin import ConnectorStandIn

START = dt.date(2026, 1, 5)
QUARTER = 91


def _world(directory: Path, seed: int) -> World:
    clock = ManualClock(day_start(START) - dt.timedelta(hours=1))
    services = build_services(
        directory,
        seed=seed,
        faults={s: profile("none") for s in SYSTEMS},
        sim_clock=clock,
        wall_clock=clock,
        admin_key="test-admin",
    )
    world = World(generate_firm(seed, START, QUARTER), services, clock, directory / "world.json")
    world.setup()
    return world


def test_the_same_seed_generates_the_same_firm_and_another_seed_another() -> None:
    first = generate_firm(11, START, QUARTER).to_dict()
    assert generate_firm(11, START, QUARTER).to_dict() == first
    other = generate_firm(12, START, QUARTER).to_dict()
    assert other != first
    assert [a["name"] for a in other["accounts"]] != [a["name"] for a in first["accounts"]]
    entities = {e["currency"] for e in first["entities"]}
    assert entities == {"USD", "GBP", "EUR"}
    assert any(a["parent_key"] for a in first["accounts"]), "no account hierarchy"
    models = Counter(d["billing_model"] for d in first["deals"])
    assert set(models) == {"time_and_materials", "fixed_fee_milestone", "retainer"}


def test_two_runs_with_the_same_seed_hold_the_same_records_in_every_system(
    tmp_path: Path,
) -> None:
    dumps = []
    for run, seed in enumerate([5, 5, 6]):
        world = _world(tmp_path / f"run{run}", seed)
        world.run_days(30)
        dumps.append({s: world.services[s].store.dump() for s in SYSTEMS})
        for service in world.services.values():
            service.store.close()
    assert dumps[0] == dumps[1]
    assert dumps[0]["crm"]["opportunities"], "no opportunities in 30 days"
    assert dumps[0] != dumps[2]


@dataclass
class Quarter:
    world: World
    urls: dict[str, str]
    faulted_run: dt.date
    events: list[dict[str, Any]]


@pytest.fixture(scope="module")
def quarter(tmp_path_factory: pytest.TempPathFactory, sink: WebhookSink) -> Iterator[Quarter]:
    """A quarter of the firm with a stand-in carrying records between the systems over
    HTTP every day; billing's data faults are on for the last billing run only; every
    system's webhooks go to a sink for the last two weeks."""
    world = _world(tmp_path_factory.mktemp("quarter"), 42)
    servers = SandboxServers(world.services, dict.fromkeys(SYSTEMS, 0))
    servers.start()
    standin = ConnectorStandIn(servers.urls)
    faulted_run = dt.date(2026, 4, 1)
    listen_from = START + dt.timedelta(days=QUARTER - 14)

    def connectors(day: dt.date) -> None:
        if day + dt.timedelta(days=1) == listen_from:
            sink.clear()
            for url in servers.urls.values():
                httpx.put(f"{url}/admin/webhooks", json={"url": sink.url}, headers=ADMIN)
        if day == faulted_run:
            admin_put_faults(servers.urls["billing"], wrong_rate_rate=0.0, missing_po_rate=0.0)
        standin.sync(world.clock.now())
        if day + dt.timedelta(days=1) == faulted_run:
            admin_put_faults(servers.urls["billing"], wrong_rate_rate=0.3, missing_po_rate=0.5)

    try:
        world.run_days(QUARTER, after_each=connectors)
        for url in servers.urls.values():
            httpx.post(f"{url}/admin/webhooks/flush", headers=ADMIN).raise_for_status()
            httpx.put(f"{url}/admin/webhooks", json={"url": None}, headers=ADMIN)
        yield Quarter(world, servers.urls, faulted_run, sink.received())
    finally:
        standin.close()
        servers.stop()


def _truth(quarter: Quarter, system: str) -> dict[str, Any]:
    response = httpx.get(f"{quarter.urls[system]}/admin/ground-truth", headers=ADMIN)
    assert response.status_code == 200
    truth: dict[str, Any] = response.json()
    return truth


def test_a_quarter_of_activity_looks_like_a_real_firm(quarter: Quarter) -> None:
    figures = _truth(quarter, "crm")["expected"]["firm"]
    print("quarter figures:", figures)
    assert 15 <= figures["deals_won"] <= 60
    assert figures["deals_lost"] >= figures["deals_won"] // 2
    sizes = figures["deal_size_usd"]
    assert sizes["min"] >= 5_000 and sizes["max"] <= 3_000_000
    assert 40_000 <= sizes["median"] <= 600_000
    mix = figures["contract_mix"]
    assert set(mix) == {"time_and_materials", "fixed_fee_milestone", "retainer"}
    assert mix["time_and_materials"] >= mix["fixed_fee_milestone"] >= mix["retainer"] > 0
    hours = figures["hours_per_consultant_week"]
    assert hours["consultant_weeks"] >= 100
    assert hours["min"] >= 6 and hours["max"] <= 50
    assert 15 <= hours["mean"] <= 42
    assert figures["invoices"] >= 20
    assert 45 <= figures["days_to_pay_weighted"] <= 80


def _actual(quarter: Quarter, system: str, collection: str) -> list[dict[str, Any]]:
    return quarter.world.services[system].store.all(collection)


def test_every_system_holds_what_the_ground_truth_says_when_syncs_are_perfect(
    quarter: Quarter,
) -> None:
    truth = quarter.world.ground_truth()["systems"]
    won = {o["deal_id"] for o in truth["crm"]["opportunities"] if o["stage"] == "Closed Won"}
    actual_won = {o["id"] for o in _actual(quarter, "crm", "opportunities") if o["isWon"]}
    assert actual_won == won

    executed = {a["deal_id"] for a in truth["clm"]["agreements"] if a["status"] == "executed"}
    agreements = _actual(quarter, "clm", "agreements")
    assert {
        a["source_ref"]["opportunity_id"] for a in agreements if a["status"] == "executed"
    } == executed
    assert len(_actual(quarter, "clm", "amendments")) == sum(
        1 for a in truth["clm"]["agreements"] if a["amended_on"]
    )

    expected_hours = sum(e["hours"] for e in truth["psa"]["time_entries"])
    logged = sum(e["time_in_minutes"] for e in _actual(quarter, "psa", "time_entries")) / 60
    assert logged == pytest.approx(expected_hours)
    assert len(_actual(quarter, "psa", "workspaces")) == len(truth["psa"]["projects"])

    faulted = {
        (f["deal_id"], f["invoice_date"]): f["kind"]
        for f in quarter.world.services["billing"].faults.injected()
    }
    expected_invoices = {(i["deal_id"], i["invoice_date"]): i for i in truth["billing"]["invoices"]}
    actual_invoices = {
        (i["deal_id"], i["invoice_date"]): i for i in _actual(quarter, "billing", "invoices")
    }
    assert set(actual_invoices) == set(expected_invoices)
    for key, invoice in actual_invoices.items():
        want = expected_invoices[key]
        if key not in faulted:
            assert Decimal(invoice["amount"]) == Decimal(want["amount"]), key
            assert invoice["po_number"] == want["po_number"], key
    assert faulted, "no data fault injected on the faulted run"
    assert {date for _, date in faulted} == {quarter.faulted_run.isoformat()}
    for (deal_id, date), kind in faulted.items():
        invoice, want = actual_invoices[(deal_id, date)], expected_invoices[(deal_id, date)]
        if kind == "missing_po":
            assert invoice["po_number"] is None and want["po_number"]

    payments = defaultdict(Decimal)
    for p in truth["erp"]["payments"]:
        payments[p["paid_on"]] += Decimal(p["amount"])
    actual_payments = defaultdict(Decimal)
    for p in _actual(quarter, "erp", "payments"):
        actual_payments[p["tranDate"]] += Decimal(str(p["amount"]))
    assert actual_payments == payments
    assert len(_actual(quarter, "erp", "ar_postings")) == len(truth["erp"]["ar_postings"])


def test_each_system_sends_lifecycle_cloudevents_for_what_happens_in_it(quarter: Quarter) -> None:
    by_source: dict[str, set[str]] = defaultdict(set)
    for event in quarter.events:
        assert event["specversion"] == "1.0" and event["subject"]
        by_source[event["source"]].add(event["type"])
    expected = {
        "/sandbox/crm": {"q2c.closed_won"},
        "/sandbox/clm": {"q2c.contract_executed"},
        "/sandbox/psa": {"q2c.project_activated", "q2c.billable_approved"},
        "/sandbox/billing": {"q2c.invoiced"},
        "/sandbox/erp": {"q2c.posted", "q2c.paid"},
    }
    for source, types in expected.items():
        assert types <= by_source[source], (source, sorted(by_source[source]))
    lifecycle = [e for e in quarter.events if e["type"].startswith("q2c.")]
    deals = {o["id"] for o in _actual(quarter, "crm", "opportunities")}
    for event in lifecycle:
        if event["type"] in ("q2c.customer_provisioned", "q2c.credited"):
            continue
        assert event["data"]["deal_id"] in deals, event
        assert event["data"]["currency"] in ("USD", "GBP", "EUR"), event
    ids = [(e["source"], e["id"]) for e in quarter.events]
    assert len(ids) == len(set(ids)), "the none profile sent a duplicate"

    faults = _truth(quarter, "billing")["faults_injected"]
    assert {f["kind"] for f in faults} == {"wrong_rate", "missing_po"}


@pytest.mark.parametrize("seed", [42, 1, 7])
def test_in_steady_state_the_dso_formula_lands_in_a_real_firms_range(seed: int) -> None:
    """After nine months the firm has a paid history, and DESIGN.md's DSO (open AR /
    revenue of the last 90 days x 90) reads like a real firm's."""
    firm = generate_firm(seed, START, 300)
    as_of = START + dt.timedelta(days=272)
    truth = ground_truth.expected(firm, WorldState(seed=seed, start=START.isoformat()), as_of)
    figures = ground_truth.firm_figures(firm, truth, as_of)
    assert 45 <= figures["dso_days"] <= 80
    assert 55 <= figures["days_to_pay_weighted"] <= 70
    assert 20 <= figures["hours_per_consultant_week"]["mean"] <= 40


def test_live_mode_stops_between_days_when_days_come_faster_than_they_are_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a high speedup a year of days can be due at once; a stop (Ctrl-C in `sandbox
    up`) is honoured after the day being run, not after the year."""
    world = _world(tmp_path, 3)
    monkeypatch.setattr(world, "clock", ManualClock(day_start(START) + dt.timedelta(days=365)))
    stop = threading.Event()
    ran: list[dt.date] = []

    def run_day(day: dt.date) -> None:  # the stop arrives while the first day runs
        ran.append(day)
        stop.set()

    monkeypatch.setattr(world, "run_day", run_day)
    live = threading.Thread(target=world.run_live, args=(stop,), daemon=True)
    live.start()
    live.join(timeout=10)
    assert not live.is_alive(), "live mode kept running days after the stop"
    assert ran == [START]
