"""KPI benchmark: full and incremental refresh on generated event logs, against DuckDB
computing the same KPIs on the same data, measured in the same run.

    .venv/bin/python bench/kpis.py                      # 10k, 100k and 1M deals
    .venv/bin/python bench/kpis.py --sizes 10k,100k

Each size gets its own SQLite store: deals closed over the last two years, about 20
lifecycle events each (deal stages, contract, project, two billable items, an invoice
and its payment). Then, per size:

- full: `KpiRefresher.refresh` from nothing (read the store, compute every KPI for every
  window and slice, write the snapshots), `--repeat` times (3), the median shown, also
  per deal: growing no faster than linearly means about the same time per deal at every
  size;
- incremental: 1% new events (1% of deals each get two invoices, four billable items and
  two payments: 20 events) and a refresh by the same refresher a minute later, which
  re-reads only those deals, computes over the deals that are not settled
  (kpis/incremental.py: the share settled is printed) and stores the values that changed
  (kpis/snapshot_rows.py); `--repeat` rounds (3), each with its own new events, and the
  median is shown;
- DuckDB: the same tables read from the same SQLite file into DuckDB (`load`), then the
  same KPI formulas as SQL (`compute`); the headline KPIs are compared with ours.

Targets (issue 7): full refresh at 1M within 2x of DuckDB; incremental at least 10x faster
than full; cost growing no faster than linearly with history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This script is named like the package it measures: run as a script, its own folder is
# first on sys.path and would shadow the `kpis` package.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sqlalchemy import delete, select  # noqa: E402

from kpis.snapshot_rows import CURRENT  # noqa: E402
from kpis.snapshots import KpiRefresher  # noqa: E402
from store import migrate  # noqa: E402
from store.engine import make_engine  # noqa: E402
from store.monitoring import KpiRefresh, KpiSnapshot  # noqa: E402
from throughline.config import Settings  # noqa: E402

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
NOW_S = NOW.timestamp()
DAY = 86400.0
HISTORY_DAYS = 730
CHUNK = 50_000
CURRENCIES = np.array(["USD", "GBP", "EUR"])
ENTITIES = np.array(["us", "uk", "de"])
REGIONS = np.array(["amer", "emea", "emea"])
PRACTICES = np.array(["data", "cloud", "apps", "security"])
DEAL_STAGES = [
    "closed_won",
    "contract_executed",
    "customer_provisioned",
    "project_activated",
    "billing_scheduled",
    "first_invoiced",
    "first_posted",
    "first_cash",
]


def stamp(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds as the store's SQLite text, None where the moment is after NOW."""
    text = np.datetime_as_string((seconds * 1e6).astype("datetime64[us]"), unit="us")
    out = np.char.replace(text, "T", " ").astype(object)
    out[seconds > NOW_S] = None
    return out


def _rows(*columns: Any) -> list[tuple[Any, ...]]:
    return list(
        zip(*(c.tolist() if isinstance(c, np.ndarray) else c for c in columns), strict=True)
    )


def build_store(path: Path, deals: int, seed: int = 7) -> int:
    """Write `deals` deals and their objects and lifecycle events; returns the events."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    rng = np.random.default_rng(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    events = 0
    created = "2026-01-01 00:00:00.000000"
    for start in range(0, deals, CHUNK):
        n = min(CHUNK, deals - start)
        ids = np.array([f"D{i:08d}" for i in range(start, start + n)], dtype=object)
        cur = rng.integers(0, 3, n)
        practice = PRACTICES[rng.integers(0, len(PRACTICES), n)]
        amount = np.round(rng.uniform(5_000, 500_000, n), 2)
        won = NOW_S - rng.uniform(0, HISTORY_DAYS * DAY, n).round()
        executed = won + rng.uniform(0.5, 10, n).round(3) * DAY
        provisioned = executed + rng.uniform(0, 2, n).round(3) * 3600
        activated = provisioned + rng.uniform(1, 48, n).round(3) * 3600
        scheduled = activated + 7200
        approved1 = activated + rng.uniform(1, 30, n).round(3) * DAY
        approved2 = approved1 + rng.uniform(0, 10, n).round(3) * DAY
        issued = approved2 + rng.uniform(1, 20, n).round(3) * DAY
        posted = issued + rng.uniform(0, 2, n).round(3) * 3600
        paid = posted + rng.uniform(20, 90, n).round(3) * DAY
        times = [won, executed, provisioned, activated, scheduled, issued, posted, paid]
        reached = sum((t <= NOW_S).astype(int) for t in times)
        stage = np.array(DEAL_STAGES, dtype=object)[reached - 1]
        s = {
            name: stamp(t)
            for name, t in zip(
                [
                    "won",
                    "executed",
                    "provisioned",
                    "activated",
                    "scheduled",
                    "issued",
                    "posted",
                    "paid",
                ],
                times,
                strict=True,
            )
        }
        a1, a2 = stamp(approved1), stamp(approved2)
        currency = CURRENCIES[cur]
        entity = ENTITIES[cur]
        db.executemany(
            "INSERT INTO deals (id, legal_entity, region, practice, currency, amount, stage, "
            "closed_won_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            _rows(
                ids,
                entity,
                REGIONS[cur],
                practice,
                currency,
                amount,
                stage,
                s["won"],
                [created] * n,
                [created] * n,
            ),
        )
        cids = np.char.add("C", ids.astype(str)).astype(object)
        db.executemany(
            "INSERT INTO contracts (id, deal_id, currency, value, stage, executed_at, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?)",
            _rows(
                cids,
                ids,
                currency,
                amount,
                ["contract_executed"] * n,
                s["executed"],
                [created] * n,
                [created] * n,
            ),
        )
        pids = np.char.add("P", ids.astype(str)).astype(object)
        db.executemany(
            "INSERT INTO projects (id, deal_id, contract_id, practice, stage, activated_at, "
            "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
            _rows(
                pids,
                ids,
                cids,
                practice,
                ["project_activated"] * n,
                s["activated"],
                [created] * n,
                [created] * n,
            ),
        )
        iids = np.char.add("I", ids.astype(str)).astype(object)
        hours = rng.integers(10, 120, (2, n))
        rate = rng.choice([120.0, 150.0, 200.0], n)
        item_amount = hours * rate
        under = np.where(rng.random((2, n)) < 0.05, 250.0, 0.0)
        invoiced = np.where(s["issued"] == None, np.nan, (item_amount - under).sum(axis=0))  # noqa: E711
        invoice_amount = (item_amount - under).sum(axis=0)
        has_exception = rng.random(n) < 0.08
        paid_mask = paid <= NOW_S
        posted_mask = posted <= NOW_S
        issued_mask = issued <= NOW_S
        inv_stage = np.where(paid_mask, "paid", np.where(posted_mask, "posted", "invoiced"))
        sel = issued_mask
        db.executemany(
            "INSERT INTO invoices (id, deal_id, contract_id, legal_entity, currency, amount, "
            "amount_paid, stage, has_exception, issued_at, posted_at, paid_at, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            _rows(
                iids[sel],
                ids[sel],
                cids[sel],
                entity[sel],
                currency[sel],
                invoice_amount[sel],
                np.where(paid_mask, invoice_amount, 0.0)[sel],
                inv_stage[sel],
                has_exception[sel].astype(int),
                s["issued"][sel],
                s["posted"][sel],
                s["paid"][sel],
                [created] * int(sel.sum()),
                [created] * int(sel.sum()),
            ),
        )
        db.executemany(
            "INSERT INTO payments (id, invoice_id, deal_id, amount, currency, received_at, "
            "created_at) VALUES (?,?,?,?,?,?,?)",
            _rows(
                np.char.add("Y", ids.astype(str))[paid_mask].astype(object),
                iids[paid_mask],
                ids[paid_mask],
                invoice_amount[paid_mask],
                currency[paid_mask],
                s["paid"][paid_mask],
                [created] * int(paid_mask.sum()),
            ),
        )
        del invoiced
        for k, approved in enumerate([a1, a2]):
            sel = approved != None  # noqa: E711
            bids = np.char.add(f"B{k}", ids.astype(str)).astype(object)
            db.executemany(
                "INSERT INTO billable_items (id, deal_id, project_id, invoice_id, kind, quantity, "
                "rate, amount, invoiced_amount, currency, stage, approved_at, invoiced_at, "
                "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _rows(
                    bids[sel],
                    ids[sel],
                    pids[sel],
                    np.where(issued_mask, iids, None)[sel],
                    ["time"] * int(sel.sum()),
                    hours[k][sel].astype(float),
                    rate[sel],
                    item_amount[k][sel],
                    np.where(issued_mask, item_amount[k] - under[k], None)[sel],
                    currency[sel],
                    np.where(issued_mask, "invoiced", "billable_approved")[sel],
                    approved[sel],
                    s["issued"][sel],
                    [created] * int(sel.sum()),
                ),
            )
        rows: list[tuple[Any, ...]] = []
        plan = [
            *[("deal", ids, name, s[key]) for name, key in zip(DEAL_STAGES, s, strict=True)],
            ("contract", cids, "contract_executed", s["executed"]),
            ("project", pids, "project_activated", s["activated"]),
            ("invoice", iids, "invoiced", s["issued"]),
            ("invoice", iids, "posted", s["posted"]),
            ("invoice", iids, "paid", s["paid"]),
            ("payment", np.char.add("Y", ids.astype(str)).astype(object), "paid", s["paid"]),
        ]
        for k, approved in enumerate([a1, a2]):
            bids = np.char.add(f"B{k}", ids.astype(str)).astype(object)
            plan += [
                ("billable_item", bids, "billable_approved", approved),
                ("billable_item", bids, "validated", approved),
                ("billable_item", bids, "invoiced", s["issued"]),
            ]
        for object_type, objects, stage_name, when in plan:
            sel = when != None  # noqa: E711
            keys = np.char.add(f"b:{object_type}:{stage_name}:", objects[sel].astype(str))
            rows += _rows(
                keys.astype(object),
                [object_type] * int(sel.sum()),
                objects[sel],
                ids[sel],
                [stage_name] * int(sel.sum()),
                when[sel],
                [created] * int(sel.sum()),
            )
        db.executemany(
            "INSERT INTO lifecycle_events (dedup_key, object_type, object_id, deal_id, stage, "
            "occurred_at, recorded_at) VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        events += len(rows)
        db.commit()
    db.close()
    return events


def add_delta(
    path: Path, deals: int, fraction: float, when: dt.datetime, batch: int = 0
) -> tuple[int, int]:
    """`fraction` of the deals each get 2 invoices, 4 billable items, 2 payments: 20 new
    lifecycle events per deal; `batch` tells successive deltas apart (other deals, other
    ids). Returns (deals touched, events added)."""
    rng = np.random.default_rng(11 + batch)
    touched = rng.choice(deals, max(1, int(deals * fraction)), replace=False)
    at = stamp(np.full(len(touched), when.timestamp() - 600.0))[0]
    db = sqlite3.connect(path)
    events: list[tuple[Any, ...]] = []
    invoices, items, payments = [], [], []
    for d in touched.tolist():
        deal = f"D{d:08d}"
        for k in range(2):
            invoice = f"N{batch}.{k}{deal}"
            invoices.append(
                (invoice, deal, "us", "USD", 3000.0, 3000.0, "paid", 0, at, at, at, at, at)
            )
            payment = f"Z{batch}.{k}{deal}"
            payments.append((payment, invoice, deal, 3000.0, "USD", at, at))
            events += [
                (f"n:{invoice}:{s}", "invoice", invoice, deal, s, at, at)
                for s in ("invoiced", "posted", "paid")
            ]
            events.append((f"n:{payment}", "payment", payment, deal, "paid", at, at))
            for j in range(2):
                item = f"M{batch}.{k}{j}{deal}"
                items.append(
                    (
                        item,
                        deal,
                        invoice,
                        "time",
                        10.0,
                        150.0,
                        1500.0,
                        1500.0,
                        "USD",
                        "invoiced",
                        at,
                        at,
                        at,
                    )
                )
                events += [
                    (f"n:{item}:{s}", "billable_item", item, deal, s, at, at)
                    for s in ("billable_approved", "validated", "invoiced")
                ]
    db.executemany(
        "INSERT INTO invoices (id, deal_id, legal_entity, currency, amount, amount_paid, stage, "
        "has_exception, issued_at, posted_at, paid_at, created_at, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        invoices,
    )
    db.executemany(
        "INSERT INTO payments (id, invoice_id, deal_id, amount, currency, received_at, created_at) "
        "VALUES (?,?,?,?,?,?,?)",
        payments,
    )
    db.executemany(
        "INSERT INTO billable_items (id, deal_id, invoice_id, kind, quantity, rate, amount, "
        "invoiced_amount, currency, stage, approved_at, invoiced_at, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        items,
    )
    db.executemany(
        "INSERT INTO lifecycle_events (dedup_key, object_type, object_id, deal_id, stage, "
        "occurred_at, recorded_at) VALUES (?,?,?,?,?,?,?)",
        events,
    )
    db.commit()
    db.close()
    return len(touched), len(events)


# --- DuckDB: the same formulas as SQL ----------------------------------------------------

LOAD = {
    "deals": "SELECT id, legal_entity, region, practice, currency, amount, stage, closed_won_at "
    "FROM deals",
    "projects": "SELECT deal_id, activated_at FROM projects",
    "contracts": "SELECT deal_id, currency, value FROM contracts",
    "invoices": "SELECT id, deal_id, legal_entity, currency, amount, amount_paid, stage, "
    "has_exception, issued_at, posted_at, paid_at FROM invoices",
    "items": "SELECT id, deal_id, invoice_id, kind, quantity, rate, amount, invoiced_amount, "
    "currency, stage, approved_at, invoiced_at FROM billable_items",
}
TIMES = {
    "closed_won_at",
    "activated_at",
    "issued_at",
    "posted_at",
    "paid_at",
    "approved_at",
    "invoiced_at",
}


def duckdb_load(path: Path) -> duckdb.DuckDBPyConnection:
    """The store's tables, read from the SQLite file, as DuckDB tables (times as epoch s)."""
    con = duckdb.connect()
    src = sqlite3.connect(path)
    for name, query in LOAD.items():
        cursor = src.execute(query)
        frame = pd.DataFrame(cursor.fetchall(), columns=[c[0] for c in cursor.description])
        con.register("frame", frame)
        select = ", ".join(
            f"epoch(CAST({c} AS TIMESTAMP)) AS {c}" if c in TIMES else c for c in frame.columns
        )
        con.execute(f"CREATE TABLE {name} AS SELECT {select} FROM frame")
        con.unregister("frame")
    src.close()
    return con


ITEMS_BY_DEAL = "items i JOIN (SELECT id AS did, legal_entity FROM deals) d ON d.did = i.deal_id"


def duckdb_kpis(
    con: duckdb.DuckDBPyConnection, settings: Settings, now: float
) -> dict[tuple[str, str, str], float | None]:
    """The headline KPIs for every window, overall and by legal entity, in DuckDB SQL."""
    rates = " ".join(f"WHEN '{c}' THEN {r}" for c, r in settings.kpis.fx_rates.items())

    def rc(column: str) -> str:
        return f"(({column}) * CASE currency {rates} END)"

    out: dict[tuple[str, str, str], float | None] = {}
    con.execute(
        "CREATE OR REPLACE TEMP TABLE act AS SELECT d.id, d.legal_entity, "
        "p.act_at - d.closed_won_at AS latency, p.act_at FROM deals d JOIN (SELECT deal_id, "
        "min(activated_at) AS act_at FROM projects GROUP BY deal_id) p ON p.deal_id = d.id "
        "WHERE d.closed_won_at IS NOT NULL"
    )
    cycle = settings.kpis.billing_cycle.timedelta + settings.kpis.leakage_grace.timedelta
    allowance = cycle.total_seconds()
    open_amount = rc("greatest(amount - amount_paid, 0)")
    for w in settings.kpis.windows:
        label, since = str(w), now - w.timedelta.total_seconds()

        def within(column: str, since: float = since) -> str:
            return f"{column} > {since} AND {column} <= {now}"

        for key in ("'all'", "legal_entity"):
            group = f"GROUP BY {key}" if key != "'all'" else ""
            queries = {
                "activation_latency_p50": f"SELECT {key}, quantile_cont(latency, 0.5) "
                f"FROM act WHERE {within('act_at')} {group}",
                "activation_latency_p90": f"SELECT {key}, quantile_cont(latency, 0.9) "
                f"FROM act WHERE {within('act_at')} {group}",
                "invoice_exception_rate": f"SELECT {key}, "
                "avg(CASE WHEN has_exception THEN 1.0 ELSE 0.0 END) "
                f"FROM invoices WHERE {within('issued_at')} {group}",
                "posting_success_rate": f"SELECT {key}, avg(CASE WHEN posted_at IS NOT NULL "
                "AND posted_at <= issued_at + 3600 THEN 1.0 ELSE 0.0 END) FROM invoices "
                f"WHERE {within('issued_at')} AND issued_at + 3600 <= {now} {group}",
                "time_to_invoice_p50": f"SELECT {key}, "
                "quantile_cont((invoiced_at - approved_at) / 86400.0, 0.5) "
                f"FROM {ITEMS_BY_DEAL} WHERE stage <> 'rejected' AND approved_at IS NOT NULL "
                f"AND {within('invoiced_at')} {group}",
                "billing_leakage": f"SELECT {key}, round(sum(CASE WHEN (invoiced_at IS NULL "
                f"OR invoiced_at > {now}) AND approved_at + {allowance} < {now} "
                f"THEN {rc('amount')} ELSE 0 END), 2) + round(sum(CASE WHEN invoiced_at <= {now} "
                "AND invoiced_amount IS NOT NULL AND rate * quantity > invoiced_amount "
                f"THEN {rc('rate * quantity - invoiced_amount')} ELSE 0 END), 2) "
                f"FROM {ITEMS_BY_DEAL} WHERE stage <> 'rejected' AND {within('approved_at')} "
                f"{group}",
                "cash_conversion_p50": f"SELECT {key}, "
                "quantile_cont((v.paid_at - i.approved_at) / 86400.0, 0.5) "
                f"FROM {ITEMS_BY_DEAL} JOIN (SELECT id AS vid, paid_at FROM invoices) v "
                "ON v.vid = i.invoice_id WHERE i.approved_at IS NOT NULL "
                f"AND {within('v.paid_at')} {group}",
                "billable_hours": f"SELECT {key}, sum(quantity) FROM {ITEMS_BY_DEAL} "
                f"WHERE kind = 'time' AND stage <> 'rejected' AND {within('approved_at')} {group}",
            }
            for kpi, query in queries.items():
                for slice_, value in con.execute(query).fetchall():
                    out[(kpi, label, str(slice_))] = None if value is None else float(value)
    for key in ("'all'", "legal_entity"):
        group = f"GROUP BY {key}" if key != "'all'" else ""
        unpaid = f"CASE WHEN paid_at <= {now} THEN 0 ELSE {open_amount} END"
        recent = f"CASE WHEN issued_at > {now - 90 * DAY} THEN {rc('amount')} ELSE 0 END"
        live = f"FROM invoices WHERE issued_at <= {now} AND stage <> 'credited' {group}"
        queries = {
            "unbilled_wip": f"SELECT {key}, sum({rc('amount')}) FROM {ITEMS_BY_DEAL} "
            f"WHERE stage <> 'rejected' AND approved_at <= {now} "
            f"AND (invoiced_at IS NULL OR invoiced_at > {now}) {group}",
            "open_ar": f"SELECT {key}, sum({unpaid}) {live}",
            "dso": f"SELECT {key}, round(sum({unpaid}), 2) / round(sum({recent}), 2) * 90 {live}",
            "backlog": f"SELECT {key}, sum(greatest(c.v - coalesce(i.v, 0), 0)) FROM deals d "
            f"JOIN (SELECT deal_id, sum({rc('value')}) v FROM contracts GROUP BY deal_id) c "
            f"ON c.deal_id = d.id LEFT JOIN (SELECT deal_id, sum({rc('amount')}) v "
            f"FROM invoices WHERE issued_at <= {now} AND stage <> 'credited' "
            f"GROUP BY deal_id) i ON i.deal_id = d.id "
            f"WHERE coalesce(d.stage, '') <> 'cancelled' {group}",
            "funnel_value_first_cash": f"SELECT {key}, sum({rc('amount')}) FROM deals "
            f"WHERE stage = 'first_cash' {group}",
        }
        for kpi, query in queries.items():
            for slice_, value in con.execute(query).fetchall():
                out[(kpi, "now", str(slice_))] = None if value is None else float(value)
    return out


def compare(
    ours: dict[tuple[str, str, str], float | None], theirs: dict[tuple[str, str, str], float | None]
) -> tuple[int, list[str]]:
    bad = []
    for key, value in theirs.items():
        mine = ours.get(key)
        if value is None or mine is None:
            if value != mine:
                bad.append(f"{key}: ours {mine}, duckdb {value}")
            continue
        if not math.isclose(mine, value, rel_tol=1e-9, abs_tol=0.011):
            bad.append(f"{key}: ours {mine}, duckdb {value}")
    return len(theirs), bad


def run(size: int, folder: Path, settings: Settings, repeat: int) -> dict[str, float]:
    path = folder / f"kpis-{size}.db"
    started = time.perf_counter()
    # built by another process: generating millions of rows here would leave this one's
    # memory in a state no refresher starts from
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        events = pool.apply(build_store, (path, size))
    built = time.perf_counter() - started

    engine = make_engine(f"sqlite:///{path}")
    fulls = []
    for _ in range(repeat):  # each from nothing, into empty snapshot tables
        with engine.begin() as conn:
            conn.execute(delete(KpiSnapshot))
            conn.execute(delete(KpiRefresh))
        refresher = KpiRefresher(engine, settings)
        fulls.append(refresher.refresh(NOW))
    full = sorted(fulls, key=lambda r: r.seconds)[len(fulls) // 2]
    split = refresher.split
    settled = len(split.settled.deals) if split is not None else 0
    rounds = []
    for batch in range(repeat):
        at = NOW + dt.timedelta(minutes=batch + 1)
        touched, added = add_delta(path, size, 0.01, at, batch)
        rounds.append(refresher.refresh(at))
        assert rounds[-1].mode == "incremental" and rounds[-1].deals_read == touched
    incremental = sorted(rounds, key=lambda r: r.seconds)[len(rounds) // 2]
    last = rounds[-1].as_of

    started = time.perf_counter()
    con = duckdb_load(path)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    theirs = duckdb_kpis(con, settings, last.timestamp())
    computed = time.perf_counter() - started
    with engine.connect() as conn:
        latest = conn.execute(
            select(
                KpiSnapshot.kpi,
                KpiSnapshot.window,
                KpiSnapshot.dimension,
                KpiSnapshot.dimension_value,
                KpiSnapshot.value,
            ).where(
                CURRENT,
                KpiSnapshot.dimension.in_(["all", "legal_entity"]),
            )
        ).all()
    ours = {(k, w, v): val for k, w, _, v, val in latest}
    checked, bad = compare(ours, theirs)
    engine.dispose()
    return {
        "deals": size,
        "events": events,
        "added": added,
        "touched": touched,
        "build_s": built,
        "settled": settled,
        "full_s": full.seconds,
        "full_runs": ", ".join(f"{r.seconds:.2f}" for r in fulls),  # type: ignore[dict-item]
        "incr_s": incremental.seconds,
        "incr_parts": (  # type: ignore[dict-item]
            f"read {incremental.read_seconds * 1000:.0f} ms, "
            f"compute {incremental.compute_seconds * 1000:.0f} ms, "
            f"store {incremental.store_seconds * 1000:.0f} ms"
        ),
        "incr_runs": ", ".join(f"{r.seconds:.3f}" for r in rounds),  # type: ignore[dict-item]
        "values": incremental.values,
        "written": incremental.written,
        "duck_load_s": loaded,
        "duck_compute_s": computed,
        "checked": checked,
        "mismatches": len(bad),
        "first_mismatch": "; ".join(bad[:5]),  # type: ignore[dict-item]
    }


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="10k,100k,1m", help="deal counts, e.g. 10k,100k,1m")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the stores go (default: a temp dir)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="full refreshes (each from nothing), then incremental refreshes, each after "
        "its own 1%% of new events: the median of each is shown",
    )
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    settings = Settings()
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = []
        for size in sizes:
            r = run(size, Path(tmp), settings, args.repeat)
            results.append(r)
            duck = r["duck_load_s"] + r["duck_compute_s"]
            print(
                f"{r['deals']:>9,} deals {r['events']:>11,} events "
                f"(built in {r['build_s']:.0f}s) | "
                f"full {r['full_s']:.2f}s (median of {r['full_runs']}; "
                f"{r['full_s'] / r['deals'] * 1e6:.1f} us/deal; "
                f"{r['settled'] / r['deals']:.0%} of deals settled) | "
                f"+{r['added']:,} events on {r['touched']:,} deals: "
                f"incremental {r['incr_s']:.3f}s (median of {r['incr_runs']}; "
                f"{r['incr_parts']}; "
                f"{r['written']:,} of {r['values']:,} values changed and stored) "
                f"= full/{r['full_s'] / r['incr_s']:.1f} | "
                f"DuckDB load {r['duck_load_s']:.2f}s + compute {r['duck_compute_s']:.2f}s: "
                f"full = {r['full_s'] / duck:.2f}x DuckDB (load+compute), "
                f"{r['full_s'] / r['duck_compute_s']:.1f}x DuckDB compute alone | "
                f"{r['checked']} values vs DuckDB, {r['mismatches']} differ {r['first_mismatch']}",
                flush=True,
            )
        base = results[0]
        base_duck = base["duck_load_s"] + base["duck_compute_s"]
        for r in results[1:]:
            growth = r["deals"] / base["deals"]
            duck = r["duck_load_s"] + r["duck_compute_s"]
            print(
                f"{base['deals']:,} -> {r['deals']:,} deals (x{growth:.0f}): "
                f"full x{r['full_s'] / base['full_s']:.1f} "
                f"(per deal x{r['full_s'] / r['deals'] / (base['full_s'] / base['deals']):.2f}), "
                f"incremental x{r['incr_s'] / base['incr_s']:.1f}, "
                f"DuckDB load+compute x{duck / base_duck:.1f}"
            )


if __name__ == "__main__":
    main()
