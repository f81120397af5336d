"""Reconciliation benchmark: the reconciliation probes' comparisons over a generated world
of 100,000 invoices, by our code (`probes.recon_compare`) and by DuckDB running the same
comparison as SQL on the same frames, in the same run.

    .venv/bin/python bench/reconcile.py                   # 100,000 invoices
    .venv/bin/python bench/reconcile.py --invoices 1m --repeat 5

The world is generated directly as the frames the probes compare (what
`probes.recon_frames` makes of the systems' records; no HTTP), with drift sprinkled in:

- invoices vs postings: 100k invoices and their AR postings; invoices never posted (some
  still inside the posting SLA, some refused by the contract validation: neither is a
  finding), posted twice, at another amount or currency, postings without an invoice;
- won deals vs downstream: 25k won deals, their contracts, ERP customers and PSA projects;
  deals never contracted (some won hours ago: in flight), records doubled, orphaned, or at
  another value or currency, accounts never provisioned;
- contracts vs schedules: the executed contracts' terms (cap, PO, retainer fee and term,
  a three-role rate card, milestones on fixed-fee contracts) against billing schedules,
  PSA milestones and milestone charges; schedules missing (some in flight), doubled,
  orphaned or off the terms (one amended hours ago differs on purpose: in flight), roles
  missing or extra, milestones missing or at another amount;
- billable vs billed: 300k approved time entries (three per invoice) and 5k milestones,
  their charges and invoice lines; items never charged (some refused by validation),
  charged twice, short or at another rate, charges left pending past the billing cycle,
  lines billing another quantity or price;
- payments vs cash: payments for about 60 % of the invoices (12 % in two parts) and the
  store's record of them; payments never recorded or recorded at another amount, paid
  postings their payments do not cover.

Each side is timed end to end from the frames to the findings as Python objects (ours:
`Finding`s; DuckDB: the SQL's rows fetched) plus the per-entity-and-currency summary;
best of `--repeat` runs after a warm-up. Both must find the same number of each kind of
finding (exit 1 otherwise). Target (issue 6): ours within 2x of DuckDB. Peak memory is the
process's maxrss (the world, both engines and their results).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from probes import recon_compare as compare  # noqa: E402
from probes.recon_compare import Grace  # noqa: E402
from probes.reconciliation import BILLING_MODELS  # noqa: E402

NOW = pd.Timestamp("2026-06-30 12:00", tz="UTC")
ENTITIES = np.array(["US01", "UK01", "DE01"])
CURRENCIES = np.array(["USD", "GBP", "EUR"])


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), 8)).astype(object)


def build(n: int, seed: int) -> dict[str, Any]:
    """The frames, and what was injected (for the record; the check is ours vs DuckDB)."""
    rng = np.random.default_rng(seed)
    n_customers = max(30, n // 50)
    cust_entity = rng.integers(0, 3, n_customers)
    customers = pd.DataFrame(
        {
            "customer_id": (1000 + np.arange(n_customers)).astype(str).astype(object),
            "account_id": ids("0015g", np.arange(n_customers)),
            "legal_entity": ENTITIES[cust_entity].astype(object),
            "currency": CURRENCIES[cust_entity].astype(object),
        }
    )
    cust = rng.integers(0, n_customers, n)
    amounts = rng.integers(50_000, 5_000_000, n).astype("int64")
    age_s = rng.uniform(0, 180 * 86400, n)
    issued = NOW - pd.to_timedelta(age_s, unit="s")
    invoices = pd.DataFrame(
        {
            "invoice_id": ids("INV", np.arange(n)),
            "deal_id": ids("0065g", rng.integers(0, n // 4 + 1, n)),
            "schedule_id": ids("BS", rng.integers(0, n // 4 + 1, n)),
            "customer_id": customers.customer_id.to_numpy()[cust],
            "currency": customers.currency.to_numpy()[cust],
            "amount": pd.array(amounts, dtype="Int64"),
            "status": np.full(n, "posted", dtype=object),
            "issued_at": issued,
        }
    )
    roll = rng.random(n)
    not_posted = roll < 0.006
    recent = np.flatnonzero(not_posted)[::3]  # a third of them still inside the posting SLA
    invoices.loc[recent, "issued_at"] = NOW - pd.Timedelta(minutes=20)
    refused_idx = np.flatnonzero(not_posted)[1::3]  # a third refused by validation
    refused = set(invoices.invoice_id.to_numpy()[refused_idx])
    twice = (roll >= 0.006) & (roll < 0.008)
    posted = ~not_posted
    post_idx = np.concatenate([np.flatnonzero(posted), np.flatnonzero(twice)])
    m = len(post_idx)
    post_amount = amounts[post_idx].copy()
    off_amount = rng.random(m) < 0.002
    post_amount[off_amount] += 100
    post_currency = invoices.currency.to_numpy()[post_idx].copy()
    off_currency = rng.random(m) < 0.001
    post_currency[off_currency] = "CHF"
    postings = pd.DataFrame(
        {
            "posting_id": (50_000 + np.arange(m)).astype(str).astype(object),
            "invoice_id": invoices.invoice_id.to_numpy()[post_idx],
            "customer_id": invoices.customer_id.to_numpy()[post_idx],
            "deal_id": invoices.deal_id.to_numpy()[post_idx],
            "currency": post_currency,
            "amount": pd.array(post_amount, dtype="Int64"),
            "remaining": pd.array(post_amount, dtype="Int64"),
            "status": np.full(m, "open", dtype=object),
            "posted_at": invoices.issued_at.to_numpy()[post_idx],
        }
    )
    orphans = max(1, n // 1000)
    orphan_rows = postings.iloc[:orphans].copy()
    orphan_rows["posting_id"] = (9_000_000 + np.arange(orphans)).astype(str).astype(object)
    orphan_rows["invoice_id"] = ids("INVX", np.arange(orphans))
    postings = pd.concat([postings, orphan_rows], ignore_index=True)
    payments, store_payments, store_invoices = _payments(rng, postings.iloc[: len(post_idx)])
    paid_total = payments.groupby("posting_id").amount.sum()
    paid_rows = postings.posting_id.map(paid_total).fillna(0).to_numpy() >= postings.amount
    postings.loc[paid_rows, "status"] = "paid"
    postings.loc[paid_rows, "remaining"] = 0
    wrong_status = postings.index[(postings.status == "open").to_numpy()][:: max(1, n // 200)]
    postings.loc[wrong_status, "status"] = "paid"
    deals = _deals(rng, customers, n)
    return {
        **_billables(rng, invoices),
        **deals,
        **_terms(rng, deals["contracts"], deals["deal_projects"]),
        "invoices": invoices,
        "postings": postings,
        "customers": customers,
        "refused": refused,
        "payments": payments,
        "store_payments": store_payments,
        "store_invoices": store_invoices,
    }


def _billables(rng: np.random.Generator, invoices: pd.DataFrame) -> dict[str, Any]:
    """Three approved time entries per invoice on hourly projects, a milestone for one
    invoice in twenty, each charged once and billed on its invoice line; with drift:
    items never charged (some refused by validation: not findings), charged twice, at fewer
    hours or another rate, charges left pending past the billing cycle, lines billing
    another quantity or price than their charge."""
    n = len(invoices)
    n_projects = max(10, n // 4)
    entity = rng.integers(0, 3, n_projects)
    projects = pd.DataFrame(
        {
            "project_id": (40_000_000 + np.arange(n_projects)).astype(str).astype(object),
            "contract_id": ids("AGR-", np.arange(n_projects)),
            "deal_id": ids("0065g", np.arange(n_projects)),
            "legal_entity": ENTITIES[entity].astype(object),
            "currency": CURRENCIES[entity].astype(object),
            "billing_mode": np.where(
                rng.random(n_projects) < 0.8, "time_and_materials", "fixed_fee"
            ).astype(object),
            "price": pd.array(rng.integers(1_000_000, 50_000_000, n_projects), dtype="Int64"),
            "status": np.full(n_projects, "active", dtype=object),
        }
    )
    schedules = pd.DataFrame(
        {
            "schedule_id": ids("BS", np.arange(n_projects)),
            "contract_id": projects.contract_id.to_numpy(),
            "deal_id": projects.deal_id.to_numpy(),
            "currency": projects.currency.to_numpy(),
            "status": np.full(n_projects, "active", dtype=object),
        }
    )
    hourly = np.flatnonzero(projects.billing_mode.to_numpy() == "time_and_materials")
    k = 3 * n
    inv_of = np.repeat(np.arange(n), 3)
    proj = hourly[rng.integers(0, len(hourly), k)]
    minutes = rng.integers(4, 41, k) * 60 + rng.choice([0, 15, 30, 45], k)
    rate = rng.integers(100, 400, k) * 100
    issued_at = invoices.issued_at.dt.tz_convert(None).to_numpy()  # UTC, as datetime64
    now = NOW.tz_convert(None).to_datetime64()
    approved = pd.to_datetime(
        issued_at[inv_of] - pd.to_timedelta(rng.uniform(3, 30, k), unit="D").to_numpy(),
        utc=True,
    )
    time = pd.DataFrame(
        {
            "item_id": (90_000_000 + np.arange(k)).astype(str).astype(object),
            "project_id": projects.project_id.to_numpy()[proj],
            "role": np.array(["Analyst", "Consultant", "Manager"], dtype=object)[
                rng.integers(0, 3, k)
            ],
            "minutes": pd.array(minutes, dtype="Int64"),
            "rate": pd.array(rate, dtype="Int64"),
            "approved_at": approved,
        }
    )
    m = n // 20
    ms_proj = rng.integers(0, n_projects, m)
    ms_price = rng.integers(500_000, 5_000_000, m)
    milestones = pd.DataFrame(
        {
            "item_id": (70_000_000 + np.arange(m)).astype(str).astype(object),
            "project_id": projects.project_id.to_numpy()[ms_proj],
            "milestone_id": ids("MS", np.arange(m)),
            "price": pd.array(ms_price, dtype="Int64"),
            "state": np.full(m, "approved", dtype=object),
            "approved_at": NOW - pd.to_timedelta(rng.uniform(2, 90, m), unit="D"),
        }
    )
    # the charges: one per item, but for the drift
    item_ids = np.concatenate([time.item_id.to_numpy(), milestones.item_id.to_numpy()])
    item_proj = np.concatenate([proj, ms_proj])
    hours = np.concatenate([np.rint(minutes * 100 / 60).astype("int64"), np.full(m, 100)])
    price = np.concatenate([rate, ms_price])
    item_inv = np.concatenate([inv_of, rng.integers(0, n, m)])
    roll = rng.random(len(item_ids))
    charged = roll >= 0.003
    refused_items = set(item_ids[(roll < 0.001)])
    twice = (roll >= 0.003) & (roll < 0.004)
    rows = np.concatenate([np.flatnonzero(charged), np.flatnonzero(twice)])
    c = len(rows)
    quantity = hours[rows].copy()
    short = rng.random(c) < 0.001
    quantity[short] -= 100
    unit_price = price[rows].copy()
    off_rate = rng.random(c) < 0.001
    unit_price[off_rate] += 500
    issued = issued_at[item_inv[rows]]
    pending = issued > now - np.timedelta64(20, "D")
    stale = rng.random(c) < 0.001
    pending |= stale
    created = np.where(stale, now - np.timedelta64(60, "D"), issued - np.timedelta64(5, "D"))
    charges = pd.DataFrame(
        {
            "charge_id": ids("CHG", np.arange(c)),
            "schedule_id": schedules.schedule_id.to_numpy()[item_proj[rows]],
            "item_id": item_ids[rows],
            "quantity": pd.array(quantity, dtype="Int64"),
            "unit_price": pd.array(unit_price, dtype="Int64"),
            "status": np.where(pending, "pending", "invoiced").astype(object),
            "invoice_id": pd.Series(invoices.invoice_id.to_numpy()[item_inv[rows]]).where(
                ~pending, None
            ),
            "created_at": pd.to_datetime(created, utc=True),
        }
    )
    billed = charges[charges.status == "invoiced"]
    line_quantity = billed.quantity.to_numpy(dtype="int64").copy()
    line_price = billed.unit_price.to_numpy(dtype="int64").copy()
    off_line = rng.random(len(billed)) < 0.001
    line_price[off_line] = line_price[off_line] * 11 // 10
    lines = pd.DataFrame(
        {
            "invoice_id": billed.invoice_id.to_numpy(),
            "charge_id": billed.charge_id.to_numpy(),
            "line_quantity": pd.array(line_quantity, dtype="Int64"),
            "line_unit_price": pd.array(line_price, dtype="Int64"),
        }
    )
    return {
        "time": time,
        "milestones": milestones,
        "projects": projects,
        "charges": charges,
        "schedules": schedules,
        "lines": lines,
        "refused_items": refused_items,
    }


def _deals(rng: np.random.Generator, customers: pd.DataFrame, n: int) -> dict[str, Any]:
    """Won deals (one per four invoices) with their contracts, ERP customers and PSA
    projects; with drift: deals never contracted (some won hours ago: in flight), contracts
    doubled, for no won deal, at another value or currency, accounts never provisioned in
    the ERP, ERP customers doubled or for no contract, projects missing, doubled, for no
    executed contract or at another price."""
    d = max(20, n // 4)
    acct = rng.integers(0, len(customers), d)
    amount = rng.integers(1_000_000, 50_000_000, d)
    roll = rng.random(d)
    missing = roll < 0.004
    recent = np.flatnonzero(missing)[::3]  # a third of them won three hours ago: in flight
    age = pd.Series(pd.to_timedelta(rng.uniform(2, 400, d), unit="D"))
    age.iloc[recent] = pd.Timedelta(hours=3)
    won_at = NOW - age
    deals = pd.DataFrame(
        {
            "deal_id": ids("0065g", np.arange(d)),
            "account_id": customers.account_id.to_numpy()[acct],
            "amount": pd.array(amount, dtype="Int64"),
            "currency": customers.currency.to_numpy()[acct],
            "won_at": won_at,
        }
    )
    rows = np.concatenate(
        [np.flatnonzero(~missing), np.flatnonzero((roll >= 0.004) & (roll < 0.005))]
    )
    value = amount[rows].copy()
    value[rng.random(len(rows)) < 0.002] += 100
    currency = customers.currency.to_numpy()[acct][rows].copy()
    currency[rng.random(len(rows)) < 0.001] = "CHF"
    executed_at = won_at.iloc[rows].reset_index(drop=True) + pd.Timedelta(days=5)
    status = np.where(executed_at <= NOW, "executed", "requested").astype(object)
    contracts = pd.DataFrame(
        {
            "contract_id": ids("AGR-", np.arange(len(rows))),
            "deal_id": deals.deal_id.to_numpy()[rows],
            "account_id": deals.account_id.to_numpy()[rows],
            "status": status,
            "legal_entity": customers.legal_entity.to_numpy()[acct][rows],
            "billing_model": np.array(
                ["time_and_materials", "fixed_fee_milestone", "retainer"], dtype=object
            )[rng.choice(3, len(rows), p=[0.6, 0.25, 0.15])],
            "value": pd.array(value, dtype="Int64"),
            "currency": currency,
            "executed_at": executed_at.where(status == "executed"),
        }
    )
    orphans = contracts.iloc[: max(1, d // 1000)].assign(
        contract_id=lambda f: ids("AGR-X", np.arange(len(f))),
        deal_id=lambda f: ids("0065gX", np.arange(len(f))),
    )
    contracts = pd.concat([contracts, orphans], ignore_index=True)
    unprovisioned = rng.random(len(customers)) < 0.005
    erp = customers[~unprovisioned]
    extra = max(1, len(customers) // 200)
    erp = pd.concat(
        [
            erp,
            erp.iloc[:extra].assign(customer_id=lambda f: "D" + f.customer_id),
            erp.iloc[:extra].assign(
                customer_id=lambda f: "X" + f.customer_id, account_id=lambda f: "X" + f.account_id
            ),
        ],
        ignore_index=True,
    )
    executed = contracts[contracts.status == "executed"]
    keep = rng.random(len(executed)) >= 0.002
    base = executed[keep]
    doubled = base.iloc[:: max(1, len(base) // max(1, d // 1000))]
    price = base.value.to_numpy(dtype="int64").copy()
    price[rng.random(len(base)) < 0.001] += 100
    parts = [
        pd.DataFrame(
            {
                "contract_id": base.contract_id,
                "deal_id": base.deal_id,
                "legal_entity": base.legal_entity,
                "price": price,
                "currency": base.currency,
            }
        ),
        pd.DataFrame(
            {
                "contract_id": doubled.contract_id,
                "deal_id": doubled.deal_id,
                "legal_entity": doubled.legal_entity,
                "price": doubled.value,
                "currency": doubled.currency,
            }
        ),
        pd.DataFrame(
            {
                "contract_id": ids("AGR-Y", np.arange(max(1, d // 1000))),
                "deal_id": None,
                "legal_entity": "US01",
                "price": 100_000,
                "currency": "USD",
            }
        ),
    ]
    projects = pd.concat(parts, ignore_index=True)
    projects = projects.assign(
        project_id=(40_000_000 + np.arange(len(projects))).astype(str).astype(object),
        price=pd.array(projects.price.to_numpy(dtype="int64"), dtype="Int64"),
        status="active",
    )
    return {
        "accounts": customers[["account_id", "legal_entity"]],
        "deals": deals,
        "contracts": contracts,
        "erp_customers": erp.reset_index(drop=True),
        "deal_projects": projects,
    }


def _terms(
    rng: np.random.Generator, contracts: pd.DataFrame, projects: pd.DataFrame
) -> dict[str, Any]:
    """The executed contracts' terms (cap, PO, retainer fee and term, a three-role rate
    card, three milestones on fixed-fee ones) and what billing and PSA made of them; with
    drift: schedules missing (some for contracts executed hours ago: in flight), doubled,
    for no executed contract, at another currency, cap, PO, fee, term or rate (one amended
    hours ago differs on purpose: in flight), a role missing or extra; PSA milestones
    missing or at another amount, milestone charges at another amount."""
    executed = contracts[contracts.status == "executed"].reset_index(drop=True)
    k = len(executed)
    model = executed.billing_model.to_numpy(dtype=object)
    value = executed.value.to_numpy(dtype="int64")
    cid = executed.contract_id.to_numpy(dtype=object)
    cap = np.where((model == "time_and_materials") & (rng.random(k) < 0.6), value, -1)
    po = pd.Series(np.char.add("PO-", np.arange(k).astype(str)), dtype=object)
    po[rng.random(k) >= 0.5] = None
    fee = np.where(model == "retainer", value // 12, -1)
    term = np.where(model == "retainer", 12, -1)
    amended = np.full(k, np.datetime64("NaT"), dtype="datetime64[ns]")
    roll = rng.random(k)
    now = NOW.tz_convert(None).to_datetime64()
    amended[roll < 0.03] = now - np.timedelta64(20, "D")
    amended[roll < 0.01] = now - np.timedelta64(5, "h")  # in flight
    terms = pd.DataFrame(
        {
            "contract_id": cid,
            "cap": pd.array(np.where(cap >= 0, cap, 0), dtype="Int64"),
            "po_number": po,
            "monthly_fee": pd.array(np.where(fee >= 0, fee, 0), dtype="Int64"),
            "term_months": pd.array(np.where(term >= 0, term, 0), dtype="Int64"),
            "amended_at": pd.to_datetime(amended, utc=True),
        }
    )
    terms.loc[cap < 0, "cap"] = pd.NA
    terms.loc[fee < 0, "monthly_fee"] = pd.NA
    terms.loc[term < 0, "term_months"] = pd.NA
    roles = np.array(["Analyst", "Consultant", "Manager"], dtype=object)
    contract_rates = pd.DataFrame(
        {
            "contract_id": np.repeat(cid, 3),
            "role": np.tile(roles, k),
            "rate": pd.array(rng.integers(100, 400, 3 * k) * 100, dtype="Int64"),
        }
    )
    fixed = np.flatnonzero(model == "fixed_fee_milestone")
    contract_milestones = pd.DataFrame(
        {
            "contract_id": np.repeat(cid[fixed], 3),
            "milestone_id": ids("MS", np.arange(3 * len(fixed))),
            "amount": pd.array(np.repeat(value[fixed] // 3, 3), dtype="Int64"),
            "currency": np.repeat(executed.currency.to_numpy(dtype=object)[fixed], 3),
        }
    )
    # billing: a schedule per executed contract, but for the drift
    roll = rng.random(k)
    has = roll >= 0.003
    recent = np.flatnonzero(~has)[::3]
    executed_at = executed.executed_at.copy()
    executed_at.iloc[recent] = NOW - pd.Timedelta(hours=6)
    contracts = contracts.set_index("contract_id")
    contracts.loc[cid[recent], "executed_at"] = executed_at.iloc[recent].to_numpy()
    contracts = contracts.reset_index()
    rows = np.concatenate([np.flatnonzero(has), np.flatnonzero((roll >= 0.003) & (roll < 0.004))])
    m = len(rows)
    models = {
        "time_and_materials": "time_and_materials",
        "fixed_fee_milestone": "milestone",
        "retainer": "retainer",
    }
    s_cap = terms.cap.to_numpy(dtype="float64", na_value=np.nan)[rows].copy()
    s_cap[(rng.random(m) < 0.001) & ~np.isnan(s_cap)] += 100
    in_flight = np.isin(rows, np.flatnonzero(amended == now - np.timedelta64(5, "h")))
    s_cap[in_flight & ~np.isnan(s_cap)] += 500
    s_po = terms.po_number.to_numpy(dtype=object)[rows].copy()
    s_po[rng.random(m) < 0.001] = "PO-WRONG"
    s_currency = executed.currency.to_numpy(dtype=object)[rows].copy()
    s_currency[rng.random(m) < 0.001] = "CHF"
    schedule_ids = np.where(
        np.arange(m) < has.sum(), ids("BS", np.arange(m)), ids("BSX", np.arange(m))
    )
    schedules = pd.DataFrame(
        {
            "schedule_id": schedule_ids,
            "contract_id": cid[rows],
            "deal_id": executed.deal_id.to_numpy(dtype=object)[rows],
            "currency": s_currency,
            "billing_model": pd.Series(model[rows]).map(models).to_numpy(dtype=object),
            "cap": pd.array(s_cap, dtype="Float64").astype("Int64"),
            "po_number": s_po,
            "monthly_fee": terms.monthly_fee.to_numpy()[rows],
            "term_months": terms.term_months.to_numpy()[rows],
            "status": "active",
        }
    )
    orphans = schedules.iloc[: max(1, k // 1000)].assign(
        schedule_id=lambda f: ids("BSY", np.arange(len(f))),
        contract_id=lambda f: ids("AGR-Z", np.arange(len(f))),
    )
    schedules = pd.concat([schedules, orphans], ignore_index=True)
    by_contract = pd.Series(np.arange(k), index=cid)
    first = schedules.drop_duplicates("contract_id")
    known = first[first.contract_id.isin(cid)]
    rate_rows = np.concatenate(
        [by_contract[known.contract_id].to_numpy() * 3 + j for j in range(3)]
    )
    sched_of = np.tile(known.schedule_id.to_numpy(dtype=object), 3)
    s_rate = contract_rates.rate.to_numpy(dtype="int64")[rate_rows].copy()
    s_rate[rng.random(len(s_rate)) < 0.001] += 500
    schedule_rates = pd.DataFrame(
        {
            "schedule_id": sched_of,
            "role": contract_rates.role.to_numpy(dtype=object)[rate_rows],
            "rate": pd.array(s_rate, dtype="Int64"),
        }
    )
    keep = rng.random(len(schedule_rates)) >= 0.0005
    extra = schedule_rates.iloc[: max(1, k // 2000)].assign(role="Partner")
    schedule_rates = pd.concat([schedule_rates[keep], extra], ignore_index=True)
    # PSA: the fixed-fee contracts' milestones on their projects, some charged
    project_of = projects.drop_duplicates("contract_id").set_index("contract_id").project_id
    with_project = contract_milestones[contract_milestones.contract_id.isin(project_of.index)]
    present = with_project[rng.random(len(with_project)) >= 0.002]
    price = present.amount.to_numpy(dtype="int64").copy()
    price[rng.random(len(present)) < 0.001] += 100
    stories = pd.DataFrame(
        {
            "item_id": (70_000_000 + np.arange(len(present))).astype(str).astype(object),
            "project_id": project_of[present.contract_id].to_numpy(dtype=object),
            "milestone_id": present.milestone_id.to_numpy(dtype=object),
            "price": pd.array(price, dtype="Int64"),
            "state": "approved",
            "approved_at": NOW - pd.Timedelta(days=10),
        }
    )
    charged = stories[rng.random(len(stories)) < 0.5]
    unit = charged.price.to_numpy(dtype="int64").copy()
    unit[rng.random(len(charged)) < 0.002] += 100
    ms_charges = pd.DataFrame(
        {
            "charge_id": ids("CHGM", np.arange(len(charged))),
            "schedule_id": None,
            "item_id": charged.item_id.to_numpy(dtype=object),
            "quantity": pd.array(np.full(len(charged), 100), dtype="Int64"),
            "unit_price": pd.array(unit, dtype="Int64"),
            "status": "invoiced",
            "invoice_id": None,
            "created_at": NOW - pd.Timedelta(days=9),
        }
    )
    return {
        "contracts": contracts,
        "terms": terms,
        "contract_rates": contract_rates,
        "contract_milestones": contract_milestones,
        "t_schedules": schedules,
        "t_schedule_rates": schedule_rates,
        "t_stories": stories,
        "t_charges": ms_charges,
    }


def _payments(
    rng: np.random.Generator, postings: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    first = postings.drop_duplicates("invoice_id")
    paying = first[rng.random(len(first)) < 0.6]
    k = len(paying)
    split = rng.random(k) < 0.12  # paid in two parts
    part = (paying.amount.to_numpy(dtype="int64") // 2) * split + paying.amount.to_numpy(
        dtype="int64"
    ) * ~split
    rows = [
        (paying.posting_id.to_numpy(), paying.invoice_id.to_numpy(), part),
        (
            paying.posting_id.to_numpy()[split],
            paying.invoice_id.to_numpy()[split],
            paying.amount.to_numpy(dtype="int64")[split] - part[split],
        ),
    ]
    posting_ids = np.concatenate([r[0] for r in rows])
    invoice_ids = np.concatenate([r[1] for r in rows])
    amounts = np.concatenate([r[2] for r in rows])
    j = len(amounts)
    cur = dict(zip(postings.posting_id, postings.currency, strict=True))
    payments = pd.DataFrame(
        {
            "payment_id": (90_000 + np.arange(j)).astype(str).astype(object),
            "posting_id": posting_ids,
            "invoice_id": invoice_ids,
            "deal_id": np.full(j, None, dtype=object),
            "currency": pd.Series(posting_ids).map(cur).to_numpy(dtype=object),
            "amount": pd.array(amounts, dtype="Int64"),
            "paid_at": NOW - pd.to_timedelta(rng.uniform(2, 90, j), unit="D"),
        }
    )
    recorded = rng.random(j) >= 0.003  # a few never reached the store
    store_amount = amounts.copy()
    store_amount[rng.random(j) < 0.001] += 1  # a few recorded at another amount
    store_payments = pd.DataFrame(
        {
            "payment_id": payments.payment_id.to_numpy()[recorded],
            "store_invoice_id": invoice_ids[recorded],
            "store_amount": pd.array(store_amount[recorded], dtype="Int64"),
            "store_currency": payments.currency.to_numpy()[recorded],
        }
    )
    per_invoice = store_payments.groupby("store_invoice_id").store_amount.sum()
    store_invoices = pd.DataFrame(
        {
            "invoice_id": per_invoice.index.to_numpy(dtype=object),
            "store_deal_id": np.full(len(per_invoice), None, dtype=object),
            "store_paid": pd.array(per_invoice.to_numpy(dtype="int64"), dtype="Int64"),
            "store_stage": np.full(len(per_invoice), "paid", dtype=object),
        }
    )
    return payments, store_payments, store_invoices


# --- ours ----------------------------------------------------------------------------------------


def ours_invoices(w: dict[str, Any]) -> Counter[str]:
    result = compare.invoices_vs_postings(
        w["invoices"], w["postings"], w["customers"], now=NOW, grace=Grace(), refused=w["refused"]
    )
    assert result.summary
    return Counter(f.kind for f in result.findings)


def ours_deals(w: dict[str, Any]) -> Counter[str]:
    result = compare.deals_downstream(
        w["deals"],
        w["accounts"],
        w["contracts"],
        w["erp_customers"],
        w["deal_projects"],
        now=NOW,
        grace=Grace(),
    )
    assert result.summary
    return Counter(f.kind for f in result.findings)


def ours_contracts(w: dict[str, Any]) -> Counter[str]:
    result = compare.contracts_vs_schedules(
        w["contracts"],
        w["terms"],
        w["contract_rates"],
        w["contract_milestones"],
        w["t_schedules"],
        w["t_schedule_rates"],
        w["deal_projects"],
        w["t_stories"],
        w["t_charges"],
        now=NOW,
        grace=Grace(),
        billing_models=BILLING_MODELS,
    )
    assert result.summary
    return Counter(f.kind for f in result.findings)


def ours_billables(w: dict[str, Any]) -> Counter[str]:
    result = compare.billable_vs_billed(
        w["time"],
        w["milestones"],
        w["projects"],
        w["charges"],
        w["schedules"],
        w["lines"],
        now=NOW,
        grace=Grace(),
        refused_items=w["refused_items"],
        refused_invoices=w["refused"],
    )
    assert result.summary
    return Counter(f.kind for f in result.findings)


def ours_payments(w: dict[str, Any]) -> Counter[str]:
    result = compare.payments_vs_cash(
        w["payments"],
        w["postings"],
        w["customers"],
        w["store_payments"],
        w["store_invoices"],
        now=NOW,
        grace=Grace(),
    )
    return Counter(f.kind for f in result.findings)


# --- DuckDB --------------------------------------------------------------------------------------

INVOICES_SQL = """
WITH released AS (
    SELECT * FROM invoices WHERE status NOT IN ('draft', 'cancelled', 'void')
), per_invoice AS (
    SELECT invoice_id, count(*) AS n, list(posting_id ORDER BY posting_id) AS posting_ids
    FROM postings GROUP BY invoice_id
)
SELECT 'never_posted' AS kind, r.invoice_id AS object_id, r.deal_id, r.amount, r.currency,
       NULL AS detail
FROM released r
WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.invoice_id = r.invoice_id)
  AND r.invoice_id NOT IN (SELECT invoice_id FROM refused)
  AND r.issued_at + INTERVAL 1 HOUR <= $now
UNION ALL
SELECT 'posted_twice', r.invoice_id, r.deal_id, r.amount, r.currency,
       array_to_string(c.posting_ids, ',')
FROM released r JOIN per_invoice c USING (invoice_id) WHERE c.n > 1
UNION ALL
SELECT 'amount_mismatch', r.invoice_id, r.deal_id, r.amount, r.currency, p.posting_id
FROM released r JOIN postings p USING (invoice_id) WHERE r.amount <> p.amount
UNION ALL
SELECT 'currency_mismatch', r.invoice_id, r.deal_id, r.amount, r.currency, p.currency
FROM released r JOIN postings p USING (invoice_id) WHERE r.currency <> p.currency
UNION ALL
SELECT 'orphan_posting', p.posting_id, p.deal_id, p.amount, p.currency, p.invoice_id
FROM postings p WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = p.invoice_id)
"""

INVOICES_SUMMARY_SQL = """
WITH b AS (
    SELECT c.legal_entity, i.currency, count(*) AS n, sum(i.amount) AS amount
    FROM invoices i LEFT JOIN customers c USING (customer_id)
    WHERE i.status NOT IN ('draft', 'cancelled', 'void') GROUP BY ALL
), e AS (
    SELECT c.legal_entity, p.currency, count(*) AS n, sum(p.amount) AS amount
    FROM postings p LEFT JOIN customers c USING (customer_id) GROUP BY ALL
)
SELECT * FROM b FULL OUTER JOIN e USING (legal_entity, currency) ORDER BY ALL
"""

PAYMENTS_SQL = """
WITH pays AS (
    SELECT y.*, p.amount AS posting_amount, p.currency AS posting_currency, p.customer_id
    FROM payments y LEFT JOIN postings p USING (posting_id)
), settled AS (
    SELECT * FROM pays WHERE paid_at + INTERVAL 24 HOUR <= $now OR paid_at IS NULL
), recent AS (
    SELECT DISTINCT invoice_id FROM pays WHERE paid_at + INTERVAL 24 HOUR > $now
), erp_paid AS (
    SELECT invoice_id, sum(amount) AS erp_paid FROM pays GROUP BY invoice_id
), per_posting AS (
    SELECT posting_id, sum(amount) AS paid_total FROM pays GROUP BY posting_id
)
SELECT 'orphan_payment' AS kind, payment_id AS object_id, amount FROM pays
WHERE posting_amount IS NULL
UNION ALL
SELECT 'payment_currency_mismatch', payment_id, amount FROM pays
WHERE posting_amount IS NOT NULL AND currency IS DISTINCT FROM posting_currency
UNION ALL
SELECT 'payment_not_recorded', s.payment_id, s.amount FROM settled s
WHERE NOT EXISTS (SELECT 1 FROM store_payments r WHERE r.payment_id = s.payment_id)
UNION ALL
SELECT 'payment_amount_mismatch', s.payment_id, s.amount FROM settled s
JOIN store_payments r USING (payment_id)
WHERE s.amount IS DISTINCT FROM r.store_amount
   OR s.invoice_id IS DISTINCT FROM r.store_invoice_id
UNION ALL
SELECT 'cash_without_payment', i.invoice_id, i.store_paid FROM store_invoices i
LEFT JOIN erp_paid e USING (invoice_id)
WHERE coalesce(i.store_paid, 0) > 0
  AND i.invoice_id NOT IN (SELECT invoice_id FROM recent)
  AND i.store_paid IS DISTINCT FROM coalesce(e.erp_paid, 0)
UNION ALL
SELECT 'paid_status_mismatch', p.posting_id, p.amount FROM postings p
LEFT JOIN per_posting t USING (posting_id)
WHERE (p.status = 'paid' AND coalesce(t.paid_total, 0) < p.amount)
   OR (p.status = 'open' AND coalesce(t.paid_total, 0) >= p.amount)
"""

DEALS_SQL = """
WITH d AS (
    SELECT deals.*, a.legal_entity FROM deals LEFT JOIN accounts a USING (account_id)
), first_contract AS (
    SELECT DISTINCT ON (deal_id) deal_id, contract_id, status, value AS contract_value,
           currency AS contract_currency
    FROM contracts ORDER BY deal_id, contract_id
), linked AS (
    SELECT d.*, f.contract_id, f.status, f.contract_value, f.contract_currency
    FROM d LEFT JOIN first_contract f USING (deal_id)
), executed AS (
    SELECT * FROM contracts WHERE status = 'executed'
), due AS (
    SELECT * FROM executed WHERE executed_at + INTERVAL 24 HOUR <= $now OR executed_at IS NULL
)
SELECT 'contract_missing' AS kind, deal_id AS object_id FROM linked
WHERE contract_id IS NULL AND (won_at + INTERVAL 24 HOUR <= $now OR won_at IS NULL)
UNION ALL
SELECT 'contract_duplicated', deal_id FROM contracts
WHERE status IS DISTINCT FROM 'cancelled' AND deal_id IS NOT NULL
GROUP BY deal_id HAVING count(*) > 1
UNION ALL
SELECT 'customer_duplicated', min(customer_id) FROM erp_customers
WHERE account_id IS NOT NULL AND legal_entity IS NOT NULL
GROUP BY account_id, legal_entity HAVING count(*) > 1
UNION ALL
SELECT 'project_duplicated', contract_id FROM deal_projects WHERE contract_id IS NOT NULL
GROUP BY contract_id HAVING count(*) > 1
UNION ALL
SELECT 'orphan_contract', contract_id FROM contracts c
WHERE NOT EXISTS (SELECT 1 FROM deals x WHERE x.deal_id = c.deal_id)
UNION ALL
SELECT 'contract_value_mismatch', deal_id FROM linked
WHERE status = 'executed' AND amount IS DISTINCT FROM contract_value
UNION ALL
SELECT 'contract_currency_mismatch', deal_id FROM linked
WHERE status = 'executed' AND currency IS DISTINCT FROM contract_currency
UNION ALL
SELECT 'customer_missing', contract_id FROM due u
WHERE NOT EXISTS (SELECT 1 FROM erp_customers x WHERE x.account_id = u.account_id)
UNION ALL
SELECT 'orphan_customer', customer_id FROM erp_customers u
WHERE NOT EXISTS (SELECT 1 FROM contracts x WHERE x.account_id = u.account_id)
UNION ALL
SELECT 'project_missing', contract_id FROM due u
WHERE NOT EXISTS (SELECT 1 FROM deal_projects x WHERE x.contract_id = u.contract_id)
UNION ALL
SELECT 'orphan_project', project_id FROM deal_projects p
WHERE status IS DISTINCT FROM 'closed'
  AND NOT EXISTS (SELECT 1 FROM executed x WHERE x.contract_id = p.contract_id)
UNION ALL
SELECT 'project_value_mismatch', p.project_id
FROM deal_projects p JOIN executed e USING (contract_id)
WHERE p.price IS DISTINCT FROM e.value OR p.currency IS DISTINCT FROM e.currency
"""

DEALS_SUMMARY_SQL = """
SELECT 'crm_won' AS side, a.legal_entity, d.currency, count(*), sum(d.amount)
FROM deals d LEFT JOIN accounts a USING (account_id) GROUP BY ALL
UNION ALL
SELECT 'clm_executed', legal_entity, currency, count(*), sum(value)
FROM contracts WHERE status = 'executed' GROUP BY ALL
UNION ALL
SELECT 'erp_customers', legal_entity, currency, count(*), NULL FROM erp_customers GROUP BY ALL
ORDER BY ALL
"""

CONTRACTS_SQL = """
WITH executed AS (
    SELECT * FROM contracts WHERE status = 'executed'
), first_schedule AS (
    SELECT DISTINCT ON (contract_id) * FROM t_schedules ORDER BY contract_id, schedule_id
), pair AS (
    SELECT e.*, s.schedule_id, s.currency AS s_currency, s.billing_model AS s_model,
           s.cap AS s_cap, s.po_number AS s_po, s.monthly_fee AS s_fee, s.term_months AS s_term
    FROM executed e LEFT JOIN first_schedule s USING (contract_id)
), settled AS (
    SELECT p.*, t.cap, t.po_number, t.monthly_fee, t.term_months, m.model AS expected_model
    FROM pair p LEFT JOIN terms t USING (contract_id) LEFT JOIN models m ON m.clm = p.billing_model
    WHERE p.schedule_id IS NOT NULL
      AND (t.amended_at IS NULL OR t.amended_at + INTERVAL 24 HOUR <= $now)
), rate_lines AS (
    SELECT schedule_id, role, c.rate AS rate_clm, b.rate AS rate_billing
    FROM (SELECT st.schedule_id, cr.role, cr.rate
          FROM contract_rates cr JOIN settled st USING (contract_id)) c
    FULL OUTER JOIN (SELECT * FROM t_schedule_rates
                     WHERE schedule_id IN (SELECT schedule_id FROM settled)) b
    USING (schedule_id, role)
), ms AS (
    SELECT m.*, e.executed_at FROM contract_milestones m JOIN executed e USING (contract_id)
    WHERE m.contract_id IN (SELECT contract_id FROM deal_projects WHERE contract_id IS NOT NULL)
), ms_psa AS (
    SELECT ms.*, x.item_id, x.price
    FROM ms LEFT JOIN (SELECT s.item_id, s.milestone_id, s.price, p.contract_id
                       FROM t_stories s JOIN deal_projects p USING (project_id)) x
    USING (contract_id, milestone_id)
), ms_charged AS (
    SELECT x.*, c.charge_id, round(c.quantity * c.unit_price / 100.0) AS charged
    FROM ms_psa x LEFT JOIN t_charges c USING (item_id) WHERE x.item_id IS NOT NULL
)
SELECT 'schedule_duplicated' AS kind, contract_id AS object_id FROM t_schedules
WHERE status IS DISTINCT FROM 'cancelled' AND contract_id IS NOT NULL
GROUP BY contract_id HAVING count(*) > 1
UNION ALL
SELECT 'schedule_missing', contract_id FROM pair
WHERE schedule_id IS NULL AND (executed_at IS NULL OR executed_at + INTERVAL 48 HOUR <= $now)
UNION ALL
SELECT 'orphan_schedule', schedule_id FROM t_schedules s
WHERE status IS DISTINCT FROM 'cancelled'
  AND NOT EXISTS (SELECT 1 FROM executed e WHERE e.contract_id = s.contract_id)
UNION ALL
SELECT 'schedule_not_cancelled', schedule_id FROM t_schedules s
WHERE status = 'active' AND EXISTS (
    SELECT 1 FROM contracts c WHERE c.status = 'cancelled' AND c.contract_id = s.contract_id)
UNION ALL
SELECT 'currency_mismatch', contract_id FROM settled WHERE currency IS DISTINCT FROM s_currency
UNION ALL
SELECT 'billing_model_mismatch', contract_id FROM settled
WHERE expected_model IS DISTINCT FROM s_model
UNION ALL
SELECT 'cap_mismatch', contract_id FROM settled WHERE cap IS DISTINCT FROM s_cap
UNION ALL
SELECT 'po_mismatch', contract_id FROM settled WHERE po_number IS DISTINCT FROM s_po
UNION ALL
SELECT 'monthly_fee_mismatch', contract_id FROM settled WHERE monthly_fee IS DISTINCT FROM s_fee
UNION ALL
SELECT 'term_mismatch', contract_id FROM settled WHERE term_months IS DISTINCT FROM s_term
UNION ALL
SELECT 'rate_mismatch', schedule_id FROM rate_lines WHERE rate_clm IS DISTINCT FROM rate_billing
UNION ALL
SELECT 'milestone_missing', contract_id FROM ms_psa
WHERE item_id IS NULL AND (executed_at IS NULL OR executed_at + INTERVAL 24 HOUR <= $now)
UNION ALL
SELECT 'milestone_amount_mismatch', contract_id FROM ms_charged
WHERE amount IS DISTINCT FROM price OR (charge_id IS NOT NULL AND amount IS DISTINCT FROM charged)
"""

CONTRACTS_SUMMARY_SQL = """
SELECT c.legal_entity, c.currency, count(DISTINCT c.contract_id), sum(c.value),
       count(s.schedule_id)
FROM contracts c LEFT JOIN t_schedules s USING (contract_id)
WHERE c.status = 'executed' GROUP BY ALL ORDER BY ALL
"""

BILLABLES_SQL = """
WITH entries AS (
    SELECT t.item_id, 'time' AS kind, t.project_id, p.deal_id, p.legal_entity, p.currency,
           t.role, CAST(round(t.minutes * 100 / 60.0) AS BIGINT) AS hours, t.rate,
           t.approved_at
    FROM time_entries t JOIN projects p USING (project_id)
    WHERE p.billing_mode = 'time_and_materials'
), items AS (
    SELECT *, CAST(round(hours * rate / 100.0) AS BIGINT) AS amount FROM entries
    UNION ALL
    SELECT m.item_id, 'milestone', m.project_id, p.deal_id, p.legal_entity, p.currency,
           NULL, 100, m.price, m.approved_at, m.price
    FROM milestones m JOIN projects p USING (project_id) WHERE m.state = 'approved'
), billed AS (
    SELECT i.*, c.charge_id, c.quantity, c.unit_price
    FROM items i LEFT JOIN charges c USING (item_id)
)
SELECT CASE kind WHEN 'time' THEN 'unbilled_time' ELSE 'unbilled_milestone' END AS kind,
       item_id AS object_id, amount
FROM billed
WHERE charge_id IS NULL AND item_id NOT IN (SELECT item_id FROM refused_items)
  AND (approved_at + INTERVAL 24 HOUR <= $now OR approved_at IS NULL)
UNION ALL
SELECT 'charge_duplicated', item_id, any_value(amount) FROM billed
WHERE charge_id IS NOT NULL GROUP BY item_id HAVING count(*) > 1
UNION ALL
SELECT 'quantity_mismatch', item_id, amount FROM billed
WHERE charge_id IS NOT NULL AND hours IS DISTINCT FROM quantity
UNION ALL
SELECT 'rate_mismatch', item_id, amount FROM billed
WHERE charge_id IS NOT NULL AND rate IS DISTINCT FROM unit_price
UNION ALL
SELECT 'uninvoiced_charge', c.charge_id, c.quantity * c.unit_price / 100
FROM charges c JOIN schedules s USING (schedule_id)
WHERE c.status = 'pending' AND s.status = 'active'
  AND (c.created_at + INTERVAL 34 DAY <= $now OR c.created_at IS NULL)
UNION ALL
SELECT 'invoice_line_mismatch', l.invoice_id, l.line_quantity
FROM lines l LEFT JOIN charges c USING (charge_id) LEFT JOIN schedules s USING (schedule_id)
WHERE l.invoice_id NOT IN (SELECT invoice_id FROM refused)
  AND (c.quantity IS DISTINCT FROM l.line_quantity
       OR c.unit_price IS DISTINCT FROM l.line_unit_price)
"""

BILLABLES_SUMMARY_SQL = """
WITH hourly AS (
    SELECT p.legal_entity, p.currency, t.minutes, t.rate
    FROM time_entries t JOIN projects p USING (project_id)
    WHERE p.billing_mode = 'time_and_materials'
)
SELECT legal_entity, currency, count(*) AS n,
       sum(CAST(round(CAST(round(minutes * 100 / 60.0) AS BIGINT) * rate / 100.0) AS BIGINT))
FROM hourly GROUP BY ALL ORDER BY ALL
"""

PAYMENTS_SUMMARY_SQL = """
SELECT c.legal_entity, y.currency, count(*) AS n, sum(y.amount) AS amount
FROM payments y LEFT JOIN postings p USING (posting_id) LEFT JOIN customers c
  ON c.customer_id = p.customer_id
GROUP BY ALL ORDER BY ALL
"""


def duck_connection(w: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in (
        "invoices",
        "postings",
        "customers",
        "payments",
        "store_payments",
        "store_invoices",
    ):
        con.register(name, w[name])
    for name in (
        "milestones",
        "projects",
        "charges",
        "schedules",
        "lines",
        "accounts",
        "deals",
        "contracts",
        "erp_customers",
        "deal_projects",
        "terms",
        "contract_rates",
        "contract_milestones",
        "t_schedules",
        "t_schedule_rates",
        "t_stories",
        "t_charges",
    ):
        con.register(name, w[name])
    con.register("time_entries", w["time"])
    con.register(
        "models",
        pd.DataFrame(
            {"clm": list(BILLING_MODELS), "model": list(BILLING_MODELS.values())}, dtype=object
        ),
    )
    con.register("refused", pd.DataFrame({"invoice_id": sorted(w["refused"])}, dtype=object))
    con.register(
        "refused_items", pd.DataFrame({"item_id": sorted(w["refused_items"])}, dtype=object)
    )
    return con


def duck_run(con: duckdb.DuckDBPyConnection, sql: str, summary_sql: str) -> Counter[str]:
    rows = con.execute(sql, {"now": NOW.to_pydatetime()}).fetchall()
    assert con.execute(summary_sql).fetchall()
    return Counter(str(r[0]) for r in rows)


# --- the run ---------------------------------------------------------------------------------


def best(fn: Callable[[], Counter[str]], repeat: int) -> tuple[float, list[float], Counter[str]]:
    fn()  # warm-up
    times, counts = [], Counter[str]()
    for _ in range(repeat):
        started = time.perf_counter()
        counts = fn()
        times.append(time.perf_counter() - started)
    return min(times), times, counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--invoices", default="100k", help="invoices in the world, e.g. 100k, 1m")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side (best counts)")
    parser.add_argument("--seed", type=int, default=6, help="the world's random seed")
    args = parser.parse_args()
    n = parse_size(args.invoices)
    started = time.perf_counter()
    world = build(n, args.seed)
    print(
        f"world: {len(world['invoices']):,} invoices, {len(world['postings']):,} AR postings, "
        f"{len(world['time']):,} approved time entries, {len(world['charges']):,} charges, "
        f"{len(world['deals']):,} won deals, {len(world['contracts']):,} contracts, "
        f"{len(world['payments']):,} payments, {len(world['customers']):,} customers "
        f"(built in {time.perf_counter() - started:.1f}s)",
        flush=True,
    )
    con = duck_connection(world)
    ok = True
    for label, ours_fn, sql, summary_sql in (
        ("invoices vs postings", ours_invoices, INVOICES_SQL, INVOICES_SUMMARY_SQL),
        ("deals vs downstream", ours_deals, DEALS_SQL, DEALS_SUMMARY_SQL),
        ("contracts vs schedules", ours_contracts, CONTRACTS_SQL, CONTRACTS_SUMMARY_SQL),
        ("billable vs billed", ours_billables, BILLABLES_SQL, BILLABLES_SUMMARY_SQL),
        ("payments vs cash", ours_payments, PAYMENTS_SQL, PAYMENTS_SUMMARY_SQL),
    ):
        ours_s, ours_all, ours_counts = best(lambda f=ours_fn: f(world), args.repeat)  # type: ignore[misc]
        duck_s, duck_all, duck_counts = best(
            lambda s=sql, q=summary_sql: duck_run(con, s, q),  # type: ignore[misc]
            args.repeat,
        )
        same = ours_counts == duck_counts
        ok &= same
        ours_runs = ", ".join(f"{t * 1000:.0f}" for t in ours_all)
        duck_runs = ", ".join(f"{t * 1000:.0f}" for t in duck_all)
        print(
            f"{label}: ours {ours_s * 1000:.1f} ms (runs {ours_runs}) | "
            f"DuckDB {duck_s * 1000:.1f} ms (runs {duck_runs}) | "
            f"ours = {ours_s / duck_s:.2f}x DuckDB (target <= 2x) | "
            f"findings ours {sum(ours_counts.values()):,} DuckDB {sum(duck_counts.values()):,} "
            f"{'same' if same else 'DIFFER'} {dict(sorted(ours_counts.items()))}",
            flush=True,
        )
        if not same:
            print(f"  DuckDB by kind: {dict(sorted(duck_counts.items()))}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (maxrss): {peak_mb:.0f} MB")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
