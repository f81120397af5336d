"""Reconciliation probes against the real sandbox over HTTP: a quarter of the sandbox firm
synced by our connectors under the `default` fault profile reconciles clean; then drift is
injected into the systems (an invoice posted twice, one never posted, a posting edited to
another amount, a schedule rate off the contract, approved hours billed short, an item
charged twice, a payment nobody recorded, a won deal that never reached CLM) and each
probe names exactly the records involved."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from probes import recon_compare as compare
from probes import recon_frames as frames
from probes.base import Finding, Outcome, ProbeContext
from probes.recon_compare import Grace
from probes.reconciliation import BILLING_MODELS, FINDING_KINDS, reconciliation_probes
from sandbox import drift
from sandbox.clock import ManualClock
from sandbox.drift import Drift
from store import migrate
from store.engine import make_engine
from store.states import ProbeKind, ProbeStatus
from tests.conftest import PostgresLane, skip_or_fail
from tests.connectors.firm import Firm, start_firm

DAYS = 100
PROBES = {
    "reconcile.deals_vs_downstream",
    "reconcile.contracts_vs_schedules",
    "reconcile.billable_vs_billed",
    "reconcile.invoices_vs_postings",
    "reconcile.payments_vs_cash",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def firm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Firm]:
    directory = tmp_path_factory.mktemp("recon-firm")
    lane: PostgresLane | None = None
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{directory}/store.db"
    else:
        lane = request.getfixturevalue("postgres_lane")
        if lane is None:
            skip_or_fail("PostgreSQL lane off: no server at THROUGHLINE_TEST_DATABASE_URL")
        assert lane is not None
        schema, pg_url = lane.new_schema_url()
        url = pg_url.render_as_string(hide_password=False)
    engine = (
        make_engine(url, immediate=True)
        if make_url(url).get_backend_name() == "sqlite"
        else make_engine(url)
    )
    migrate.upgrade(engine)
    running = start_firm(
        Path(directory),
        engine,
        seed=42,
        horizon_days=DAYS,
        faults="default",
        # The default profile, with the two data faults (an invoice line at 110 % of the
        # contract rate, an invoice without its PO) frequent enough that a quarter has some,
        # hung requests giving up after 0.5 s, no added latency and no rate limits.
        fault_overrides={
            "wrong_rate_rate": 0.08,
            "missing_po_rate": 0.08,
            "timeout_seconds": 0.5,
            "latency_ms": 0,
            "rate_limit_per_second": 5000.0,
            "rate_limit_burst": 5000,
        },
    )
    try:
        running.run(DAYS)
        yield running
    finally:
        running.stop()
        engine.dispose()
        if lane is not None and schema is not None:
            lane.drop_schema(schema)


def run_all(firm: Firm) -> dict[str, Outcome]:
    ctx = ProbeContext(firm.engine, firm.connectors.context.apis, firm.world.clock.now)
    return {probe.name: probe.run(ctx) for probe in reconciliation_probes()}


@dataclass
class Drifted:
    drifts: dict[str, Drift]
    in_flight: dict[str, Outcome]  # right after the drift, inside every grace
    outcomes: dict[str, Outcome]  # two days later, with no sync in between


@pytest.fixture(scope="module")
def clean(firm: Firm) -> dict[str, Outcome]:
    return run_all(firm)


@pytest.fixture(scope="module")
def drifted(firm: Firm, clean: dict[str, Outcome]) -> Drifted:
    """Drift injected after the clean run, then two days pass without any sync."""
    services = firm.world.services
    erp, billing, psa = services["erp"], services["billing"], services["psa"]
    paid = {p["invoiceExternalId"] for p in erp.all("payments")}
    unpaid = [p for p in erp.all("ar_postings") if p["externalId"] not in paid]
    assert len(unpaid) >= 3
    tm = next(
        s for s in billing.all("billing_schedules") if s["billing_model"] == "time_and_materials"
    )
    role, rate = tm["rate_card"][0]["role"], Decimal(tm["rate_card"][0]["unit_price"])
    hourly = {w["id"] for w in psa.all("workspaces") if w["billing_mode"] == "time_and_materials"}
    time_ids = {e["id"] for e in psa.all("time_entries") if e["workspace_id"] in hourly}
    pending = [
        c for c in billing.all("charges", status="pending") if c["source_reference"] in time_ids
    ]
    drifts = {
        "posted_twice": drift.post_invoice_twice(services, unpaid[0]["externalId"]),
        "never_posted": drift.release_invoice_unposted(services, tm["id"], Decimal("1250.00")),
        "amount_mismatch": drift.change_posting_amount(
            services, unpaid[1]["externalId"], Decimal(str(unpaid[1]["amount"])) + 100
        ),
        "rate_mismatch": drift.change_schedule_rate(
            services, tm["contract_number"], role, rate + 25
        ),
        "quantity_mismatch": drift.shrink_charge(
            services, pending[0]["source_reference"], Decimal(pending[0]["quantity"]) - 1
        ),
        "charge_duplicated": drift.bill_item_twice(services, pending[1]["source_reference"]),
        "payment_not_recorded": drift.pay_unrecorded(
            services, unpaid[2]["externalId"], Decimal("100.00")
        ),
        "contract_missing": drift.win_deal_unsynced(
            services, erp.all("customers")[0]["externalId"], Decimal("50000")
        ),
    }
    in_flight = run_all(firm)
    clock = firm.world.clock
    assert isinstance(clock, ManualClock)
    clock.advance(dt.timedelta(days=2))
    return Drifted(drifts, in_flight, run_all(firm))


def kinds(outcome: Outcome) -> set[tuple[str, str | None]]:
    return {(f.kind, f.object_id) for f in outcome.findings}


def only(outcome: Outcome, kind: str) -> Finding:
    found = [f for f in outcome.findings if f.kind == kind]
    assert len(found) == 1, outcome.findings
    return found[0]


def test_every_probe_is_a_reconciliation_probe_with_its_name() -> None:
    probes = reconciliation_probes()
    assert {p.name for p in probes} == PROBES
    assert all(p.kind is ProbeKind.RECONCILIATION and p.description for p in probes)


def test_a_synced_history_with_default_faults_reconciles_clean(
    firm: Firm, clean: dict[str, Outcome]
) -> None:
    for name, outcome in clean.items():
        assert outcome.status is ProbeStatus.OK, (name, outcome.findings[:5])
        assert outcome.findings == []
    invoices = clean["reconcile.invoices_vs_postings"].detail
    # the history is real: invoices posted, some refused by the contract validation on
    # purpose (known dead letters, not drift), payments collected
    assert invoices["invoices"] >= 30 and invoices["postings"] >= 30
    assert invoices["refused_by_validation"] >= 1
    assert clean["reconcile.payments_vs_cash"].detail["payments"] >= 1
    by_entity = {
        (row["legal_entity"], row["currency"]): row for row in invoices["by_entity_currency"]
    }
    assert set(by_entity) == {("US01", "USD"), ("UK01", "GBP"), ("DE01", "EUR")}
    assert sum(r["billing_count"] for r in by_entity.values()) == invoices["invoices"]


def test_invoices_posted_twice_never_posted_or_at_another_amount(drifted: Drifted) -> None:
    outcome = drifted.outcomes["reconcile.invoices_vs_postings"]
    d = drifted.drifts
    assert outcome.status is ProbeStatus.FAIL
    assert kinds(outcome) == {
        ("posted_twice", d["posted_twice"].records["invoice_id"]),
        ("never_posted", d["never_posted"].records["invoice_id"]),
        ("amount_mismatch", d["amount_mismatch"].records["invoice_id"]),
    }
    twice = only(outcome, "posted_twice")
    assert twice.object_type == "invoice" and twice.system == "erp" and twice.deal_id
    assert twice.detail["posting_ids"] == sorted(
        [d["posted_twice"].records["posting_id"], d["posted_twice"].records["second"]]
    )
    never = only(outcome, "never_posted")
    assert (never.amount, never.currency) == (
        Decimal("1250.00"),
        d["never_posted"].detail["currency"],
    )
    off = only(outcome, "amount_mismatch")
    assert off.detail["posting_id"] == d["amount_mismatch"].records["posting_id"]
    assert Decimal(off.detail["erp_amount"]) - Decimal(off.detail["billing_amount"]) == 100
    assert outcome.detail["by_kind"] == {"posted_twice": 1, "never_posted": 1, "amount_mismatch": 1}


def test_a_schedule_rate_off_the_contract(drifted: Drifted) -> None:
    outcome = drifted.outcomes["reconcile.contracts_vs_schedules"]
    injected = drifted.drifts["rate_mismatch"]
    assert outcome.status is ProbeStatus.FAIL
    assert kinds(outcome) == {("rate_mismatch", injected.records["contract_id"])}
    finding = outcome.findings[0]
    assert finding.detail["schedule_id"] == injected.records["schedule_id"]
    assert finding.detail["role"] == injected.detail["role"]
    assert Decimal(finding.detail["billing_rate"]) - Decimal(finding.detail["clm_rate"]) == 25


def test_approved_hours_billed_short_or_twice(drifted: Drifted) -> None:
    outcome = drifted.outcomes["reconcile.billable_vs_billed"]
    injected, twice = drifted.drifts["quantity_mismatch"], drifted.drifts["charge_duplicated"]
    assert kinds(outcome) == {
        ("quantity_mismatch", injected.records["item_id"]),
        ("charge_duplicated", twice.records["item_id"]),
    }
    doubled = only(outcome, "charge_duplicated")
    assert doubled.detail["charge_ids"] == sorted(
        [twice.records["charge_id"], twice.records["second"]]
    )
    finding = only(outcome, "quantity_mismatch")
    assert finding.detail["charge_id"] == injected.records["charge_id"]
    hours = Decimal(finding.detail["approved_hours"]) - Decimal(finding.detail["charged_hours"])
    assert hours == 1  # one hour short
    assert finding.amount is not None and finding.amount > 0  # the value leaked


def test_a_payment_nobody_recorded_as_cash(drifted: Drifted) -> None:
    outcome = drifted.outcomes["reconcile.payments_vs_cash"]
    injected = drifted.drifts["payment_not_recorded"]
    assert kinds(outcome) == {("payment_not_recorded", injected.records["payment_id"])}
    finding = outcome.findings[0]
    assert finding.detail["invoice_id"] == injected.records["invoice_id"]
    assert finding.amount == Decimal("100.00")


def test_a_won_deal_that_never_reached_the_contract_system(drifted: Drifted) -> None:
    outcome = drifted.outcomes["reconcile.deals_vs_downstream"]
    injected = drifted.drifts["contract_missing"]
    assert kinds(outcome) == {("contract_missing", injected.records["deal_id"])}
    assert outcome.findings[0].amount == Decimal("50000.00")


def test_a_gap_inside_its_grace_is_lag_not_drift(drifted: Drifted) -> None:
    """Right after the drift, an invoice not yet posted (inside the 1 h posting SLA), a
    payment not yet carried on and a deal won minutes ago are in flight; a second posting,
    a wrong amount or rate and short hours are wrong at once."""
    d, now = drifted.drifts, drifted.in_flight
    invoices = now["reconcile.invoices_vs_postings"]
    assert kinds(invoices) == {
        ("posted_twice", d["posted_twice"].records["invoice_id"]),
        ("amount_mismatch", d["amount_mismatch"].records["invoice_id"]),
    }
    assert invoices.detail["within_posting_sla"] == 1
    assert now["reconcile.payments_vs_cash"].status is ProbeStatus.OK
    assert now["reconcile.deals_vs_downstream"].status is ProbeStatus.OK
    assert {f.kind for f in now["reconcile.contracts_vs_schedules"].findings} == {"rate_mismatch"}
    assert {f.kind for f in now["reconcile.billable_vs_billed"].findings} == {
        "quantity_mismatch",
        "charge_duplicated",
    }


def test_findings_are_stored_as_they_are(drifted: Drifted) -> None:
    """Every finding is of a declared kind, fits the probe_findings columns and its detail
    is plain JSON."""
    assert set(FINDING_KINDS) == PROBES
    for name, outcome in drifted.outcomes.items():
        json.dumps(outcome.detail)
        assert {f.kind for f in outcome.findings} <= set(FINDING_KINDS[name])
        for finding in outcome.findings:
            json.dumps(finding.detail)
            assert finding.object_type and len(finding.object_type) <= 16
            assert finding.object_id and finding.system in {"crm", "clm", "psa", "billing", "erp"}
            assert finding.currency is None or len(finding.currency) == 3


# --- the comparisons on records as the systems answer them, without the sandbox --------------

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def _invoice(
    number: int, amount: str, currency: str = "USD", hours_ago: int = 48
) -> dict[str, Any]:
    created = (NOW - dt.timedelta(hours=hours_ago)).isoformat()
    return {
        "id": f"INV{number:08d}",
        "deal_id": f"0065g{number}",
        "billing_schedule_id": "BS00000001",
        "customer_account_number": "1001",
        "currency": currency,
        "amount": amount,
        "status": "posted",
        "created_at": created,
        "lines": [],
    }


def _posting(number: int, invoice: str, amount: float, currency: str = "USD") -> dict[str, Any]:
    return {
        "id": str(50_000 + number),
        "externalId": invoice,
        "entity": {"id": "1001"},
        "currency": {"refName": currency},
        "amount": amount,
        "amountRemaining": amount,
        "status": "open",
        "dateCreated": (NOW - dt.timedelta(hours=40)).isoformat(),
    }


def test_invoices_against_postings_kind_by_kind() -> None:
    invoices, _lines = frames.invoices(
        [
            _invoice(1, "100.00"),  # posted once: fine
            _invoice(2, "200.00"),  # posted twice
            _invoice(3, "300.00"),  # never posted
            _invoice(4, "400.00"),  # refused by the contract validation: not drift
            _invoice(5, "500.00", hours_ago=0),  # released just now: in flight
            _invoice(6, "600.00"),  # posted at another amount
            {  # schema drift renamed `amount`: the same amount
                **{k: v for k, v in _invoice(7, "700.00").items() if k != "amount"},
                "amount_total": "700.00",
            },
            _invoice(8, "800.00", currency="GBP"),  # posted in USD
            {**_invoice(9, "900.00"), "created_at": None},  # no time: not in flight, missing
            _invoice(10, "1000.00"),  # credited in full in two notes: owed no posting
            _invoice(11, "1100.00"),  # credited in part: still owed one
        ]
    )
    credits = frames.credit_notes(
        [
            {"id": "CN1", "invoice_id": "INV00000010", "amount": "600.00", "status": "issued"},
            {"id": "CN2", "invoice_id": "INV00000010", "amount": "400.00", "status": "issued"},
            {"id": "CN3", "invoice_id": "INV00000011", "amount": "1000.00", "status": "issued"},
            {"id": "CN4", "invoice_id": "INV00000011", "amount": "100.00", "status": "void"},
        ]
    )
    postings = frames.postings(
        [
            _posting(1, "INV00000001", 100.0),
            _posting(2, "INV00000002", 200.0),
            _posting(3, "INV00000002", 200.0),
            _posting(6, "INV00000006", 600.01),
            _posting(7, "INV00000007", 700.0),
            _posting(8, "INV00000008", 800.0),
            _posting(9, "INV00000099", 900.0),  # for no invoice
        ]
    )
    customers = frames.customers(
        [
            {
                "id": "1001",
                "externalId": "0015g1",
                "subsidiary": {"id": "US01"},
                "currency": {"refName": "USD"},
            }
        ]
    )
    result = compare.invoices_vs_postings(
        invoices,
        postings,
        customers,
        now=frames.to_timestamp(NOW),
        grace=Grace(),
        refused={"INV00000004"},
        credits=credits,
    )
    assert {(f.kind, f.object_id) for f in result.findings} == {
        ("posted_twice", "INV00000002"),
        ("never_posted", "INV00000003"),
        ("never_posted", "INV00000009"),
        ("never_posted", "INV00000011"),
        ("amount_mismatch", "INV00000006"),
        ("currency_mismatch", "INV00000008"),
        ("orphan_posting", "50009"),
    }
    assert result.counts["refused_by_validation"] == 1
    assert result.counts["credited_in_full"] == 1
    assert result.counts["within_posting_sla"] == 1
    off = next(f for f in result.findings if f.kind == "amount_mismatch")
    assert (off.detail["billing_amount"], off.detail["erp_amount"]) == ("600.00", "600.01")
    us = {(r["legal_entity"], r["currency"]): r for r in result.summary}
    assert us[("US01", "USD")]["billing_count"] == 10
    assert us[("US01", "USD")]["erp_count"] == 7  # the doubled and the orphan posting too


def test_an_empty_world_reconciles_clean() -> None:
    now = frames.to_timestamp(NOW)
    schedules, schedule_rates = frames.schedules([])
    invoices, lines = frames.invoices([])
    terms = frames.effective_terms([], [])
    results = [
        compare.deals_downstream(
            frames.opportunities([]),
            frames.accounts([]),
            frames.agreements([]),
            frames.customers([]),
            frames.workspaces([]),
            now=now,
            grace=Grace(),
        ),
        compare.contracts_vs_schedules(
            frames.agreements([]),
            terms.contracts,
            terms.rates,
            terms.milestones,
            schedules,
            schedule_rates,
            frames.workspaces([]),
            frames.stories([]),
            frames.charges([]),
            now=now,
            grace=Grace(),
            billing_models=BILLING_MODELS,
        ),
        compare.billable_vs_billed(
            frames.time_entries([]),
            frames.stories([]),
            frames.workspaces([]),
            frames.charges([]),
            schedules,
            lines,
            now=now,
            grace=Grace(),
            refused_items=set(),
            refused_invoices=set(),
        ),
        compare.invoices_vs_postings(
            invoices, frames.postings([]), frames.customers([]), now=now, grace=Grace()
        ),
        compare.payments_vs_cash(
            frames.payments([]),
            frames.postings([]),
            frames.customers([]),
            frames.store_payments_frame([]),
            frames.store_invoices_frame([]),
            now=now,
            grace=Grace(),
        ),
    ]
    assert all(r.findings == [] and r.summary == [] for r in results)
