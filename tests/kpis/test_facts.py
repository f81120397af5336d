"""What the facts make of rows that lack a slice value or have a currency with no rate:
a deal without a practice takes its project's, an invoice without a legal entity its
deal's, anything else missing is `unknown`; an amount with no rate is left out of sums
(not counted at a guessed rate) and named in a warning."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine

from kpis.compute import compute_kpis
from kpis.frames import load_integration_frames, load_store_frames
from kpis.values import KpiValue
from tests.kpis.eventlog import EventLog, at
from throughline.config import Settings

NOW = at("2026-06-30 12:00")
Values = dict[tuple[str, str, str, str], KpiValue]
WON = "2026-06-29 00:00"


def _values(engine: Engine) -> Values:
    log = EventLog()
    log.deal(
        "DA", entity=None, region=None, practice=None, currency="USD", amount=1000,
        stage="closed_won", closed_won=WON,
    )  # fmt: skip
    log.project("PA", "DA", None, practice="data")
    log.deal(
        "DB", entity="uk", region="emea", practice="apps", currency="JPY", amount=500000,
        stage="closed_won", closed_won=WON,
    )  # fmt: skip
    log.deal(
        "DC", entity="us", region="amer", practice="cloud", currency="USD", amount=2000,
        stage="closed_won", closed_won=WON,
    )  # fmt: skip
    for invoice, entity in (("IC1", None), ("IC2", "de")):
        log.invoice(
            invoice, "DC", entity=entity, currency="USD", amount=100, stage="invoiced",
            issued="2026-06-30 10:00",
        )  # fmt: skip
    log.write(engine)
    with engine.connect() as conn:
        frames, integration = load_store_frames(conn), load_integration_frames(conn)
    return {v.key: v for v in compute_kpis(frames, integration, Settings(), NOW)}


@pytest.fixture
def values(engine: Engine, caplog: pytest.LogCaptureFixture) -> Values:
    with caplog.at_level(logging.WARNING, logger="kpis.money"):
        return _values(engine)


def test_missing_slice_values_are_unknown_or_taken_from_the_deal_or_project(
    values: Values,
) -> None:
    def won(dimension: str, value: str) -> list[str]:
        return values[("funnel_count_closed_won", "now", dimension, value)].member_ids()

    assert won("legal_entity", "unknown") == ["DA"]
    assert won("region", "unknown") == ["DA"]
    assert won("practice", "data") == ["DA"]  # from its project
    assert ("funnel_count_closed_won", "now", "practice", "unknown") not in values

    def issued(entity: str) -> list[str]:
        return values[("invoice_exception_rate", "1d", "legal_entity", entity)].member_ids()

    assert issued("us") == ["IC1"]  # from its deal
    assert issued("de") == ["IC2"]  # its own, not the deal's
    assert values[("invoice_exception_rate", "1d", "region", "amer")].meta["denominator"] == 2


def test_an_amount_without_a_rate_is_left_out_and_named(
    values: Values, caplog: pytest.LogCaptureFixture
) -> None:
    assert values[("funnel_value_closed_won", "now", "all", "all")].value == 3000.0
    jpy = values[("funnel_value_closed_won", "now", "currency", "JPY")]
    assert jpy.value == 0.0 and jpy.member_ids() == ["DB"]
    warned = [r.getMessage() for r in caplog.get_records("setup")]
    assert any("no fx rate for ['JPY']: 1 amounts left out" in m for m in warned)
