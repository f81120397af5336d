"""Every KPI on the hand-built firm (tests/kpis/firm.py), checked to the cent / second."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from kpis.compute import compute_kpis
from kpis.frames import load_integration_frames, load_store_frames
from kpis.values import KpiValue
from tests.kpis.firm import NOW, firm_log
from tests.kpis.stores import module_store
from throughline.config import Settings

Key = tuple[str, str, str, str]


def _values(engine: Engine, now: dt.datetime = NOW) -> dict[Key, KpiValue]:
    firm_log().write(engine)
    with engine.connect() as conn:
        frames, integration = load_store_frames(conn), load_integration_frames(conn)
    values = compute_kpis(frames, integration, Settings(), now)
    keyed = {v.key: v for v in values}
    assert len(keyed) == len(values), "one value per kpi, window and slice"
    return keyed


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kpi(request: pytest.FixtureRequest) -> Iterator[dict[Key, KpiValue]]:
    """The firm's values, computed once per backend for the whole module."""
    with module_store(request) as engine:
        yield _values(engine)


def _get(
    values: dict[Key, KpiValue], name: str, window: str, dim: str = "all", dv: str = "all"
) -> KpiValue:
    return values[(name, window, dim, dv)]


def test_activation_latency_percentiles_in_seconds(kpi: dict[Key, KpiValue]) -> None:
    # 30d: D3 86400 s, D1 194400 s, D2 864000 s (its events arrived out of order).
    assert _get(kpi, "activation_latency_p50", "30d").value == 194400
    assert _get(kpi, "activation_latency_p90", "30d").value == pytest.approx(730080, abs=1e-6)
    count = _get(kpi, "activation_latency_count", "30d")
    assert count.value == 3
    assert sorted(count.members) == ["D1", "D2", "D3"]
    assert _get(kpi, "activation_latency_p50", "7d").value == 86400
    assert _get(kpi, "activation_latency_p50", "30d", "legal_entity", "uk").value == 864000


def test_unactivated_deals_counted_valued_and_aged(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "activation_pending_count", "now").value == 2
    value = _get(kpi, "activation_pending_value", "now")
    assert value.value == 20160.00  # 10000 USD + 8000 GBP x 1.27
    assert value.unit == "USD"
    assert list(_get(kpi, "activation_pending_value_61_90d", "now").members) == ["D4"]
    assert _get(kpi, "activation_pending_value_0_30d", "now").value == 10160.00
    assert _get(kpi, "activation_pending_count_31_60d", "now").value == 0


def test_invoice_exception_rate_counts_the_credited_invoice_and_its_reissue(
    kpi: dict[Key, KpiValue],
) -> None:
    rate = _get(kpi, "invoice_exception_rate", "30d")
    assert rate.value == pytest.approx(0.4)  # I2 (posting failed), I3 (credited) of 5
    assert rate.meta["numerator"] == 2 and rate.meta["denominator"] == 5
    assert sorted(rate.meta["exception_invoices"]) == ["I2", "I3"]
    assert _get(kpi, "invoice_exception_rate", "7d").value == 0.0  # I4, I5
    assert _get(kpi, "invoice_exception_rate", "30d", "currency", "GBP").value == 0.5


def test_posting_success_counts_only_invoices_past_their_deadline(
    kpi: dict[Key, KpiValue],
) -> None:
    rate = _get(kpi, "posting_success_rate", "30d")
    assert rate.value == pytest.approx(0.5)  # I1, I4 on time; I2 late; I3 never; I5 not due
    assert sorted(rate.members) == ["I1", "I2", "I3", "I4"]
    assert _get(kpi, "posting_success_rate", "7d").value == 1.0
    empty = _get(kpi, "posting_success_rate", "1d")  # only I5, not yet due
    assert empty.value is None and empty.member_count == 0


def test_unbilled_wip_aged_excludes_rejected_items(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "unbilled_wip", "now").value == 4016.00
    assert _get(kpi, "unbilled_wip_0_30d", "now").value == 1016.00
    assert _get(kpi, "unbilled_wip_31_60d", "now").value == 0.0
    assert _get(kpi, "unbilled_wip_61_90d", "now").value == 2000.00
    assert list(_get(kpi, "unbilled_wip_90d_plus", "now").members) == ["B8"]


def test_billing_leakage_amount_share_and_causes(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "billing_leakage", "30d").value == 1000.00  # B2 under-billed
    assert _get(kpi, "billing_leakage_share", "30d").value == pytest.approx(1000 / 63716)
    assert _get(kpi, "billing_leakage", "90d").value == 3000.00  # + B5 uninvoiced past 35d
    assert _get(kpi, "billing_leakage_uninvoiced", "90d").value == 2000.00
    assert _get(kpi, "billing_leakage_underbilled", "90d").value == 1000.00
    assert _get(kpi, "billing_leakage_share", "90d").value == pytest.approx(3000 / 65716)
    assert _get(kpi, "billing_leakage_share", "7d").value == 0.0
    assert _get(kpi, "billing_leakage_share", "1d").value is None


def test_dso_uses_open_ar_and_the_last_90_days_of_revenue(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "open_ar", "now").value == 34020.00
    dso = _get(kpi, "dso", "now")
    assert dso.meta["revenue_90d"] == 68100.00
    assert dso.value == pytest.approx(34020 / 68100 * 90, abs=1e-9)
    assert dso.unit == "days"


def test_cash_conversion_item_and_deal_level_in_days(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "cash_conversion_p50", "30d").value == pytest.approx(23.5)
    assert _get(kpi, "cash_conversion_p90", "30d").value == pytest.approx(23.9)
    assert _get(kpi, "deal_cash_conversion_p50", "30d").value == pytest.approx(24.0)
    assert list(_get(kpi, "deal_cash_conversion_p90", "30d").members) == ["D1"]


def test_time_to_invoice_and_billable_hours(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "time_to_invoice_p50", "30d").value == pytest.approx(3.9166666667)
    assert _get(kpi, "time_to_invoice_p90", "30d").value == pytest.approx(5.0875)
    assert _get(kpi, "billable_hours", "30d").value == 248.0


def test_funnel_and_backlog(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "funnel_count_closed_won", "now").value == 2
    assert _get(kpi, "funnel_value_closed_won", "now").value == 20160.00
    assert _get(kpi, "funnel_value_project_activated", "now").value == 63500.00
    assert _get(kpi, "funnel_count_contract_executed", "now").value == 0
    assert _get(kpi, "backlog", "now").value == 136000.00
    assert _get(kpi, "backlog", "now", "legal_entity", "uk").value == 50800.00
    assert _get(kpi, "backlog_burn_months", "now").value == pytest.approx(136000 / 22700)


def test_integration_health_per_flow_and_system(kpi: dict[Key, KpiValue]) -> None:
    assert _get(kpi, "sync_success_rate", "30d").value == pytest.approx(2 / 3)
    assert _get(kpi, "sync_success_rate", "30d", "flow", "invoice_to_ar").value == 1.0
    assert _get(kpi, "sync_retries", "30d").value == 3
    assert _get(kpi, "first_attempt_posting_success", "30d").value == 0.5
    assert _get(kpi, "dead_letters", "30d", "system", "clm").value == 1
    assert _get(kpi, "replay_success_rate", "30d").value == 1.0
    assert _get(kpi, "probe_availability", "1d", "system", "erp").value == pytest.approx(2 / 3)
    assert _get(kpi, "probe_latency_p95", "1d", "system", "erp").value == pytest.approx(822.0)
    # The least headroom a run saw: 4 of 40 requests left (the failed run saw no headers).
    assert _get(kpi, "rate_limit_headroom_min", "1d", "system", "erp").value == pytest.approx(0.1)


def test_every_value_carries_formula_window_and_unit(kpi: dict[Key, KpiValue]) -> None:
    meta = _get(kpi, "invoice_exception_rate", "7d").metadata()
    assert meta["window"] == "7d" and meta["unit"] == "ratio"
    assert "invoices issued in the window" in meta["formula"]
    assert meta["member_type"] == "invoice"


def test_an_empty_store_gives_empty_windows_not_errors(engine: Engine) -> None:
    with engine.connect() as conn:
        frames, integration = load_store_frames(conn), load_integration_frames(conn)
    values = {v.key: v for v in compute_kpis(frames, integration, Settings(), NOW)}
    assert values[("activation_latency_p50", "30d", "all", "all")].value is None
    assert values[("invoice_exception_rate", "1d", "all", "all")].value is None
    assert values[("unbilled_wip", "now", "all", "all")].value == 0.0
    assert values[("dso", "now", "all", "all")].value is None
