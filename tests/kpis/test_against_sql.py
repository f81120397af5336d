"""On a generated store history, the KPI code agrees with the same formulas written
independently in plain SQL (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, text

from kpis.compute import compute_kpis
from kpis.frames import load_integration_frames, load_store_frames
from kpis.values import KpiValue
from store.base import UTCDateTime
from tests.kpis.history import NOW, history_log
from tests.kpis.stores import module_store
from throughline.config import Settings

SETTINGS = Settings()
RATES = SETTINGS.kpis.fx_rates
WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "90d": 90}
UNPAID = "CASE WHEN amount > amount_paid THEN amount - amount_paid ELSE 0 END"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Engine, dict[Any, KpiValue]]]:
    with module_store(request) as engine:
        history_log().write(engine)
        with engine.connect() as conn:
            frames, integration = load_store_frames(conn), load_integration_frames(conn)
        values = compute_kpis(frames, integration, SETTINGS, NOW)
        yield engine, {v.key: v for v in values}


def rc(column: str, currency: str) -> str:
    """`column` in the reporting currency, as SQL."""
    cases = " ".join(f"WHEN '{c}' THEN {r}" for c, r in RATES.items())
    return f"(({column}) * CASE {currency} {cases} END)"


def epoch(engine: Engine, column: str) -> str:
    if engine.dialect.name == "sqlite":
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"


def sql(engine: Engine, statement: str, **params: Any) -> list[Any]:
    times = [
        bindparam(k, type_=UTCDateTime()) for k, v in params.items() if isinstance(v, dt.datetime)
    ]
    with engine.connect() as conn:
        return list(conn.execute(text(statement).bindparams(*times), params).all())


def since(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def percentile_cont(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, written out by hand."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def money_equal(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 0.006


@pytest.mark.parametrize("window", WINDOWS)
def test_invoice_exception_and_posting_success_rates(
    store: tuple[Engine, dict[Any, KpiValue]], window: str
) -> None:
    engine, kpi = store
    rows = sql(
        engine,
        "SELECT COALESCE(i.legal_entity, d.legal_entity), COUNT(*), "
        "SUM(CASE WHEN i.has_exception THEN 1 ELSE 0 END) FROM invoices i "
        "JOIN deals d ON d.id = i.deal_id WHERE i.issued_at > :since AND i.issued_at <= :now "
        "GROUP BY COALESCE(i.legal_entity, d.legal_entity)",
        since=since(WINDOWS[window]),
        now=NOW,
    )
    total = sum(r[1] for r in rows)
    exceptions = sum(r[2] for r in rows)
    assert total > 0 or window == "1d"
    expected = exceptions / total if total else None
    assert kpi[("invoice_exception_rate", window, "all", "all")].value == pytest.approx(expected)
    for entity, count, bad in rows:
        got = kpi[("invoice_exception_rate", window, "legal_entity", entity)].value
        assert got == pytest.approx(bad / count)

    issued, posted, now_s = (
        epoch(engine, "issued_at"),
        epoch(engine, "posted_at"),
        epoch(engine, ":now"),
    )
    due, on_time = sql(
        engine,
        f"SELECT COUNT(*), SUM(CASE WHEN posted_at IS NOT NULL AND {posted} <= {issued} + 3600 "
        f"THEN 1 ELSE 0 END) FROM invoices WHERE issued_at > :since AND issued_at <= :now "
        f"AND {issued} + 3600 <= {now_s}",
        since=since(WINDOWS[window]),
        now=NOW,
    )[0]
    expected_posting = (on_time or 0) / due if due else None
    assert kpi[("posting_success_rate", window, "all", "all")].value == pytest.approx(
        expected_posting
    )


def test_unbilled_wip_open_ar_and_dso(store: tuple[Engine, dict[Any, KpiValue]]) -> None:
    engine, kpi = store
    wip = sql(
        engine,
        f"SELECT currency, SUM({rc('amount', 'currency')}) FROM billable_items "
        "WHERE approved_at <= :now AND stage <> 'rejected' "
        "AND (invoiced_at IS NULL OR invoiced_at > :now) GROUP BY currency",
        now=NOW,
    )
    assert wip
    assert money_equal(
        kpi[("unbilled_wip", "now", "all", "all")].value, sum(float(r[1]) for r in wip)
    )
    for currency, value in wip:
        assert money_equal(kpi[("unbilled_wip", "now", "currency", currency)].value, float(value))

    open_ar, revenue = sql(
        engine,
        "SELECT SUM(CASE WHEN paid_at IS NOT NULL AND paid_at <= :now THEN 0 ELSE "
        f"{rc(UNPAID, 'currency')} END), "
        f"SUM(CASE WHEN issued_at > :since THEN {rc('amount', 'currency')} ELSE 0 END) "
        "FROM invoices WHERE issued_at <= :now AND stage <> 'credited'",
        now=NOW,
        since=since(90),
    )[0]
    assert money_equal(kpi[("open_ar", "now", "all", "all")].value, float(open_ar))
    expected = round(float(open_ar), 2) / round(float(revenue), 2) * 90
    assert kpi[("dso", "now", "all", "all")].value == pytest.approx(expected, rel=1e-9)


def test_funnel_and_backlog(store: tuple[Engine, dict[Any, KpiValue]]) -> None:
    engine, kpi = store
    for stage, count, value in sql(
        engine,
        f"SELECT stage, COUNT(*), SUM({rc('amount', 'currency')}) FROM deals GROUP BY stage",
    ):
        assert kpi[(f"funnel_count_{stage}", "now", "all", "all")].value == count
        assert money_equal(kpi[(f"funnel_value_{stage}", "now", "all", "all")].value, float(value))
    rows = sql(
        engine,
        "SELECT d.legal_entity, SUM(CASE WHEN c.v - COALESCE(i.v, 0) > 0 "
        "THEN c.v - COALESCE(i.v, 0) ELSE 0 END) FROM deals d "
        f"JOIN (SELECT deal_id, SUM({rc('value', 'currency')}) AS v FROM contracts "
        "GROUP BY deal_id) c ON c.deal_id = d.id "
        f"LEFT JOIN (SELECT deal_id, SUM({rc('amount', 'currency')}) AS v FROM invoices "
        "WHERE issued_at <= :now AND stage <> 'credited' GROUP BY deal_id) i "
        "ON i.deal_id = d.id WHERE d.stage <> 'cancelled' GROUP BY d.legal_entity",
        now=NOW,
    )
    for entity, backlog in rows:
        assert money_equal(kpi[("backlog", "now", "legal_entity", entity)].value, float(backlog))


def test_funnel_has_cancelled_deals_and_nothing_waits_on_them(
    store: tuple[Engine, dict[Any, KpiValue]],
) -> None:
    engine, kpi = store
    [(cancelled,)] = sql(engine, "SELECT COUNT(*) FROM deals WHERE stage = 'cancelled'")
    assert cancelled > 0, "the history has no cancelled deal"
    assert kpi[("funnel_count_cancelled", "now", "all", "all")].value == cancelled
    [(pending, value)] = sql(
        engine,
        f"SELECT COUNT(*), SUM({rc('amount', 'currency')}) FROM deals d "
        "WHERE closed_won_at <= :now AND stage <> 'cancelled' AND NOT EXISTS "
        "(SELECT 1 FROM projects p WHERE p.deal_id = d.id AND p.activated_at <= :now)",
        now=NOW,
    )
    assert kpi[("activation_pending_count", "now", "all", "all")].value == pending
    assert money_equal(kpi[("activation_pending_value", "now", "all", "all")].value, float(value))


@pytest.mark.parametrize("window", ["30d", "90d"])
def test_billing_leakage_and_billable_hours(
    store: tuple[Engine, dict[Any, KpiValue]], window: str
) -> None:
    engine, kpi = store
    approved, now_s = epoch(engine, "approved_at"), epoch(engine, ":now")
    allowance = 35 * 86400
    uninvoiced, under, value, hours = sql(
        engine,
        f"SELECT SUM(CASE WHEN (invoiced_at IS NULL OR invoiced_at > :now) "
        f"AND {approved} + {allowance} < {now_s} THEN {rc('amount', 'currency')} ELSE 0 END), "
        "SUM(CASE WHEN invoiced_at <= :now AND invoiced_amount IS NOT NULL "
        f"AND rate * quantity > invoiced_amount "
        f"THEN {rc('rate * quantity - invoiced_amount', 'currency')} ELSE 0 END), "
        f"SUM({rc('amount', 'currency')}), "
        "SUM(CASE WHEN kind = 'time' THEN quantity ELSE 0 END) "
        "FROM billable_items WHERE approved_at > :since AND approved_at <= :now "
        "AND stage <> 'rejected'",
        now=NOW,
        since=since(WINDOWS[window]),
    )[0]
    leakage = round(float(uninvoiced), 2) + round(float(under), 2)
    assert money_equal(kpi[("billing_leakage", window, "all", "all")].value, leakage)
    assert kpi[("billing_leakage_share", window, "all", "all")].value == pytest.approx(
        leakage / round(float(value), 2)
    )
    assert kpi[("billable_hours", window, "all", "all")].value == pytest.approx(float(hours))


@pytest.mark.parametrize("window", WINDOWS)
def test_activation_latency_and_time_to_invoice_to_the_second(
    store: tuple[Engine, dict[Any, KpiValue]], window: str
) -> None:
    engine, kpi = store
    latencies = [
        float(r[0])
        for r in sql(
            engine,
            f"SELECT {epoch(engine, 'p.at')} - {epoch(engine, 'd.closed_won_at')} FROM deals d "
            "JOIN (SELECT deal_id, MIN(activated_at) AS at FROM projects "
            "WHERE activated_at IS NOT NULL GROUP BY deal_id) p ON p.deal_id = d.id "
            "WHERE p.at > :since AND p.at <= :now",
            since=since(WINDOWS[window]),
            now=NOW,
        )
    ]
    assert kpi[("activation_latency_count", window, "all", "all")].value == len(latencies)
    for q in (0.5, 0.9):
        got = kpi[(f"activation_latency_p{int(q * 100)}", window, "all", "all")].value
        want = percentile_cont(latencies, q)
        assert (got is None and want is None) or got == pytest.approx(want, abs=0.5)
    days = [
        float(r[0]) / 86400
        for r in sql(
            engine,
            f"SELECT {epoch(engine, 'invoiced_at')} - {epoch(engine, 'approved_at')} "
            "FROM billable_items WHERE invoiced_at > :since AND invoiced_at <= :now "
            "AND stage <> 'rejected' AND approved_at IS NOT NULL",
            since=since(WINDOWS[window]),
            now=NOW,
        )
    ]
    got = kpi[("time_to_invoice_p50", window, "all", "all")].value
    want = percentile_cont(days, 0.5)
    assert (got is None and want is None) or got == pytest.approx(want, abs=1 / 86400)
