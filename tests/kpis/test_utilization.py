"""Utilization on a hand-built firm: approved billable hours of the consultants over their
capacity in the window, by their practice and legal entity (worked in docs/kpis.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from kpis.compute import compute_kpis
from kpis.frames import load_integration_frames, load_store_frames
from kpis.values import KpiValue
from tests.kpis.eventlog import EventLog, at
from tests.kpis.stores import module_store
from throughline.config import Settings

NOW = at("2026-06-30 12:00")
Key = tuple[str, str, str, str]


def utilization_log() -> EventLog:
    log = EventLog()
    log.consultant("A", entity="us", practice="data", weekly_hours=40)
    log.consultant("B", entity="uk", practice="data", weekly_hours=37.5)
    log.consultant("C", entity="us", practice="cloud", weekly_hours=35, created="2026-06-23 12:00")
    log.deal(
        "D1",
        entity="us",
        region="amer",
        practice="data",
        currency="USD",
        amount=100000,
        stage="billing_scheduled",
        closed_won="2026-05-01 00:00",
    )
    items = [
        ("T1", "A", "time", 30, "2026-06-30 09:00", "billable_approved"),
        ("T2", "A", "time", 20, "2026-06-26 00:00", "billable_approved"),
        ("T3", "B", "time", 25, "2026-06-29 13:00", "billable_approved"),
        ("T4", "C", "time", 14, "2026-06-28 00:00", "billable_approved"),
        ("T5", "B", "time", 10, "2026-06-10 00:00", "invoiced"),
        ("T6", "A", "time", 8, "2026-06-29 00:00", "rejected"),  # rejected: not billable
        ("T7", "A", "milestone", 1, "2026-06-29 00:00", "billable_approved"),  # not hours
        ("T8", "Z", "time", 5, "2026-06-29 00:00", "billable_approved"),  # unknown consultant
        ("T9", None, "time", 3, "2026-06-30 10:00", "billable_approved"),  # nobody named
    ]
    for item, who, kind, hours, approved, stage in items:
        log.item(
            item,
            "D1",
            kind=kind,
            quantity=hours,
            rate=150,
            currency="USD",
            approved=approved,
            stage=stage,
            consultant=who,
        )
    return log


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kpi(request: pytest.FixtureRequest) -> Iterator[dict[Key, KpiValue]]:
    with module_store(request) as engine:
        utilization_log().write(engine)
        yield _values(engine)


def _values(engine: Engine) -> dict[Key, KpiValue]:
    with engine.connect() as conn:
        frames, integration = load_store_frames(conn), load_integration_frames(conn)
    return {v.key: v for v in compute_kpis(frames, integration, Settings(), NOW)}


def _u(kpi: dict[Key, KpiValue], window: str, dim: str = "all", dv: str = "all") -> KpiValue:
    return kpi[("utilization", window, dim, dv)]


def test_seven_days_by_entity_and_practice(kpi: dict[Key, KpiValue]) -> None:
    # Hours: A 30 + 20, B 25, C 14 = 89. Capacity: A 40, B 37.5, C 35 (created exactly at
    # the window's start, so present for all 7 days) = 112.5.
    every = _u(kpi, "7d")
    assert every.value == pytest.approx(89 / 112.5, abs=1e-12)
    assert every.meta["billable_hours"] == 89.0 and every.meta["capacity_hours"] == 112.5
    assert every.meta["hours_without_consultant"] == 8.0  # T8 (Z) 5 + T9 (nobody) 3
    assert sorted(every.members) == ["A", "B", "C"] and every.unit == "ratio"
    assert _u(kpi, "7d", "legal_entity", "us").value == pytest.approx(64 / 75, abs=1e-12)
    assert _u(kpi, "7d", "legal_entity", "uk").value == pytest.approx(25 / 37.5, abs=1e-12)
    assert _u(kpi, "7d", "practice", "data").value == pytest.approx(75 / 77.5, abs=1e-12)
    cloud = _u(kpi, "7d", "practice", "cloud")
    assert cloud.value == pytest.approx(0.4, abs=1e-12) and list(cloud.members) == ["C"]


def test_capacity_counts_only_the_days_a_consultant_existed(kpi: dict[Key, KpiValue]) -> None:
    # 30d: hours 50 + 35 + 14 = 99; capacity (40 + 37.5) x 30/7 + C's 7 days 35 = 2570/7.
    month = _u(kpi, "30d")
    assert month.value == pytest.approx(693 / 2570, abs=1e-12)  # 0.2696
    assert month.meta["capacity_hours"] == pytest.approx(367.14, abs=0.005)
    assert _u(kpi, "30d", "practice", "cloud").meta["capacity_hours"] == 35.0
    # 1d: T1 30 + T3 25 approved in the last day, against a day's capacity 112.5 / 7:
    # approvals come in weekly lumps, so a one-day window can pass 100 %.
    assert _u(kpi, "1d").value == pytest.approx(55 / (112.5 / 7), abs=1e-12)
    assert _u(kpi, "1d", "practice", "cloud").meta["billable_hours"] == 0.0


def test_no_consultants_no_value(request: pytest.FixtureRequest) -> None:
    request.param = "sqlite"
    with module_store(request) as engine:
        log = utilization_log()
        log.rows.pop(next(t for t in log.rows if t.__name__ == "Consultant"))
        log.write(engine)
        values = _values(engine)
    assert _u(values, "30d").value is None
    assert _u(values, "30d").meta["hours_without_consultant"] == 99.0 + 5 + 3
