"""Snapshots, incremental refresh, the Prometheus collector and the JSON API."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from kpis.api import kpis_router
from kpis.prometheus import KpiCollector
from kpis.snapshot_rows import MEMBERS_KEPT, SnapshotOrderError, encode_ids
from kpis.snapshots import KpiRefresher, latest_snapshots, refresh
from store.monitoring import KpiRefresh, KpiSnapshot
from tests.kpis.eventlog import EventLog
from tests.kpis.firm import NOW, firm_log
from throughline.config import Settings


def _by_key(rows: list[KpiSnapshot]) -> dict[tuple[str, str, str, str], float | None]:
    return {(r.kpi, r.window, r.dimension, r.dimension_value): r.value for r in rows}


def _more_work_for_d5() -> EventLog:
    """D5 gets activated and invoiced; recorded after the first refresh."""
    log = EventLog()
    log.event("deal", "D5", "D5", "project_activated", "2026-06-30 09:00")
    log.event("invoice", "I7", "D5", "invoiced", "2026-06-30 10:00", 800, "GBP")
    log.project("P5", "D5", "2026-06-30 09:00")
    log.invoice(
        "I7",
        "D5",
        entity="uk",
        currency="GBP",
        amount=800,
        stage="invoiced",
        issued="2026-06-30 10:00",
    )
    return log


def test_incremental_refresh_reads_only_changed_deals_and_matches_a_full_one(
    engine: Engine,
) -> None:
    settings = Settings()
    firm_log().write(engine)
    refresher = KpiRefresher(engine, settings)
    first = refresher.refresh(NOW)
    assert first.mode == "full" and first.deals_read == 5

    # The store changes under the refresher: D5 moves on; its project row exists, so the
    # deal must leave the pending-activation count.
    _more_work_for_d5().write(engine)
    later = NOW + dt.timedelta(minutes=1)
    second = refresher.refresh(later)
    assert second.mode == "incremental" and second.deals_read == 1
    incremental = _by_key(latest_snapshots(engine))

    full = refresh(engine, settings, later + dt.timedelta(minutes=1))
    assert full.mode == "full"
    assert _by_key(latest_snapshots(engine)) == incremental
    assert incremental[("activation_pending_count", "now", "all", "all")] == 1
    assert incremental[("invoice_exception_rate", "1d", "all", "all")] == 0.0  # I5, I7

    nothing = refresher.refresh(later + dt.timedelta(minutes=2))
    assert nothing.mode == "incremental" and nothing.deals_read == 0


Values = dict[tuple[str, str, str, str], float | None]


def _values_at(engine: Engine, at: dt.datetime) -> Values:
    """Every value as it stood at `at`: its row from then, not superseded by then."""
    with Session(engine) as session:
        rows = session.scalars(
            select(KpiSnapshot).where(
                KpiSnapshot.as_of <= at,
                (KpiSnapshot.superseded_at.is_(None)) | (KpiSnapshot.superseded_at > at),
            )
        ).all()
    return _by_key(list(rows))


def test_refreshes_store_only_what_changed_and_every_refresh_reads_back(engine: Engine) -> None:
    settings = Settings()
    firm_log().write(engine)
    refresher = KpiRefresher(engine, settings)
    moments = [NOW + dt.timedelta(minutes=m) for m in (0, 1, 2)]
    seen: list[Values] = []

    first = refresher.refresh(moments[0])
    assert first.written == first.values > 800
    seen.append(_by_key(latest_snapshots(engine)))
    quiet = refresher.refresh(moments[1])  # a minute later, nothing new in the store
    assert quiet.values == first.values and quiet.written == 0
    seen.append(_by_key(latest_snapshots(engine)))
    _more_work_for_d5().write(engine)
    busy = refresher.refresh(moments[2])
    assert 0 < busy.written < busy.values
    seen.append(_by_key(latest_snapshots(engine)))

    assert seen[0] == seen[1] != seen[2]
    assert seen[2][("activation_pending_count", "now", "all", "all")] == 1
    for at, values in zip(moments, seen, strict=True):
        assert _values_at(engine, at) == values
    with engine.connect() as conn:
        refreshes = conn.execute(
            select(KpiRefresh.as_of, KpiRefresh.values, KpiRefresh.changed).order_by(
                KpiRefresh.as_of
            )
        ).all()
        stored = conn.execute(select(func.count()).select_from(KpiSnapshot)).scalar()
    assert [tuple(r) for r in refreshes] == [
        (moments[0], first.values, first.written),
        (moments[1], quiet.values, 0),
        (moments[2], busy.values, busy.written),
    ]
    assert stored == first.written + busy.written

    # A new process (a fresh refresher) compares with what the store holds.
    again = refresh(engine, settings, moments[2] + dt.timedelta(minutes=1))
    assert again.mode == "full" and again.written == 0


def test_a_slice_that_empties_is_superseded_not_repeated(engine: Engine) -> None:
    firm_log().write(engine)
    refresh(engine, Settings(), NOW)
    key = ("invoice_exception_rate", "1d", "legal_entity", "de")  # I5, issued 06-30 11:30
    assert key in _by_key(latest_snapshots(engine))
    later = NOW + dt.timedelta(days=2)
    refresh(engine, Settings(), later)
    assert key not in _by_key(latest_snapshots(engine))
    with engine.connect() as conn:
        row = conn.execute(
            select(KpiSnapshot.as_of, KpiSnapshot.superseded_at).where(
                KpiSnapshot.kpi == key[0],
                KpiSnapshot.window == key[1],
                KpiSnapshot.dimension == key[2],
                KpiSnapshot.dimension_value == key[3],
            )
        ).one()
    assert tuple(row) == (NOW, later)


def test_a_refresh_before_the_latest_is_refused_and_stores_nothing(engine: Engine) -> None:
    firm_log().write(engine)
    refresh(engine, Settings(), NOW)
    before = _values_at(engine, NOW)
    with pytest.raises(SnapshotOrderError, match="before the latest stored one"):
        refresh(engine, Settings(), NOW - dt.timedelta(hours=1))
    assert _by_key(latest_snapshots(engine)) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(KpiRefresh)).scalar() == 1


def test_refresh_stores_formula_window_unit_and_members(engine: Engine) -> None:
    firm_log().write(engine)
    refresh(engine, Settings(), NOW)
    refresh(engine, Settings(), NOW)  # the same moment again replaces, never duplicates
    with engine.connect() as conn:
        assert conn.execute(select(func.count(func.distinct(KpiSnapshot.as_of)))).scalar() == 1
        assert conn.execute(select(func.count()).select_from(KpiRefresh)).scalar() == 1
    rows = {(r.kpi, r.window, r.dimension, r.dimension_value): r for r in latest_snapshots(engine)}
    rate = rows[("posting_success_rate", "30d", "all", "all")]
    assert rate.value == 0.5 and rate.unit == "ratio" and rate.member_count == 4
    assert rate.meta is not None
    assert rate.meta["window"] == "30d" and "SLA" in rate.meta["formula"]
    assert sorted(rate.meta["members"]) == ["I1", "I2", "I3", "I4"]
    assert rows[("unbilled_wip", "now", "currency", "GBP")].value == 1016.0


def test_collector_exposes_latest_snapshots_without_deal_ids(engine: Engine) -> None:
    registry = CollectorRegistry()
    registry.register(KpiCollector(engine))
    assert (
        registry.get_sample_value(
            "throughline_kpi_dso", {"window": "now", "dimension": "all", "slice": "all"}
        )
        is None
    )
    firm_log().write(engine)
    refresh(engine, Settings(), NOW)
    labels = {"window": "30d", "dimension": "all", "slice": "all"}
    assert registry.get_sample_value("throughline_kpi_invoice_exception_rate", labels) == 0.4
    assert (
        registry.get_sample_value(
            "throughline_kpi_unbilled_wip",
            {"window": "now", "dimension": "legal_entity", "slice": "us"},
        )
        == 3000.0
    )
    assert (
        registry.get_sample_value("throughline_kpi_snapshot_timestamp_seconds") == NOW.timestamp()
    )
    text = generate_latest(registry).decode()
    for deal in ("D1", "D2", "D3", "D4", "D5", "I1", "B1"):
        assert f'"{deal}"' not in text


def test_router_serves_values_definitions_and_members(engine: Engine) -> None:
    app = FastAPI()
    app.include_router(kpis_router(engine, Settings()), prefix="/api/v1")
    client = TestClient(app)
    assert client.get("/api/v1/kpis").json() == {"as_of": None, "values": []}
    firm_log().write(engine)
    refresh(engine, Settings(), NOW)

    body = client.get("/api/v1/kpis", params={"window": "30d", "by": "entity"}).json()
    values = {(v["kpi"], v["window"], v["slice"]): v for v in body["values"]}
    assert values[("posting_success_rate", "30d", "us")]["value"] == 0.5
    assert values[("backlog", "now", "uk")]["value"] == 50800.0
    assert values[("backlog", "now", "uk")]["since"] == NOW.isoformat()
    assert all(v["dimension"] == "legal_entity" for v in body["values"])

    one = client.get("/api/v1/kpis/dso").json()["values"][0]
    assert one["meta"]["revenue_90d"] == 68100.0

    members = client.get(
        "/api/v1/kpis/activation_latency_count/members", params={"window": "30d"}
    ).json()
    assert sorted(members["members"]) == ["D1", "D2", "D3"]
    assert members["member_type"] == "deal"
    definitions = client.get("/api/v1/kpis/definitions").json()
    assert {d["kpi"] for d in definitions} >= {"dso", "billing_leakage", "funnel_count_first_cash"}
    assert client.get("/api/v1/kpis/nope").status_code == 404


def test_router_refuses_an_unknown_slice_or_window_naming_the_choices(engine: Engine) -> None:
    app = FastAPI()
    app.include_router(kpis_router(engine, Settings()), prefix="/api/v1")
    client = TestClient(app)
    firm_log().write(engine)
    refresh(engine, Settings(), NOW)
    for path in ("/api/v1/kpis", "/api/v1/kpis/dso"):
        bad = client.get(path, params={"by": "country"})
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith("by: unknown slice 'country': choose from all")
        bad = client.get(path, params={"window": "14d"})
        assert bad.status_code == 422
        assert bad.json()["detail"].startswith(
            "window: '14d' is not a configured KPI window: choose from 1d, 7d, 30d, 90d, now"
        )
    bad = client.get("/api/v1/kpis/dso/members", params={"window": "now", "by": "country"})
    assert bad.status_code == 422


def test_members_come_a_page_at_a_time_beyond_what_the_snapshot_keeps(engine: Engine) -> None:
    log = EventLog()
    deals = [f"D{i:03d}" for i in range(MEMBERS_KEPT * 2 + 7)]  # 107: the snapshot keeps 50
    for deal in deals:
        log.deal(
            deal,
            entity="uk",
            region="emea",
            practice="data",
            currency="USD",
            amount=1000.0,
            stage="closed_won",
            closed_won="2026-06-20 09:00",
        )
    log.write(engine)
    refresh(engine, Settings(), NOW)
    app = FastAPI()
    app.include_router(kpis_router(engine, Settings()), prefix="/api/v1")
    client = TestClient(app)
    path = "/api/v1/kpis/activation_pending_count/members"

    pages, offset = [], 0
    while offset is not None:
        page = client.get(path, params={"window": "now", "limit": 40, "offset": offset}).json()
        assert page["total"] == len(deals) and page["limit"] == 40
        pages.append(page["members"])
        offset = page["next_offset"]
    assert [len(p) for p in pages] == [40, 40, 27]
    assert [m for p in pages for m in p] == deals  # every member once, sorted

    sliced = client.get(path, params={"window": "now", "by": "entity", "slice": "uk"}).json()
    assert sliced["total"] == len(deals) and sliced["members"] == deals[:100]
    assert client.get(path, params={"window": "now", "limit": 0}).status_code == 422
    missing = client.get(path, params={"window": "now", "by": "entity", "slice": "fr"})
    assert missing.status_code == 404
    assert "no entity='fr' value of activation_pending_count" in missing.json()["detail"]


@pytest.mark.parametrize(
    "ids",
    [[], ["D1"], ["D1", "I-2"], ["", ""], ['a"b', "c"], ["a\\b"], ["é"], ["tab\there"], ["\x7f"]],
    ids=["none", "one", "two", "empty", "quote", "backslash", "non-ascii", "control", "del"],
)
def test_member_ids_are_encoded_as_json_encodes_them(ids: list[str]) -> None:
    assert encode_ids(ids) == json.dumps(ids)


@pytest.mark.parametrize("immediate", [True, False])
def test_a_refresh_waits_for_a_writer_that_commits_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, immediate: bool
) -> None:
    """A sync commits between the refresh's first read and its first write (SQLite): with
    the write engine the runtime gives it, the refresh waits for the lock and both land;
    through a deferred engine it fails with "database is locked", as it did in the demo."""
    import threading

    from sqlalchemy.exc import OperationalError

    from kpis import snapshot_rows
    from store import migrate
    from store.engine import make_engine
    from store.outbox import SyncCursor
    from store.states import System

    url = f"sqlite:///{tmp_path}/store.db"
    engine = make_engine(url)
    migrate.upgrade(engine)
    firm_log().write(engine)
    write_engine = make_engine(url, immediate=True) if immediate else engine
    other = make_engine(url)

    def sync() -> None:
        with other.begin() as conn:
            conn.execute(
                SyncCursor.__table__.insert().values(
                    system=System.CRM, stream="s", cursor="c", updated_at=NOW
                )
            )

    first_read = snapshot_rows.latest_refresh
    writer = threading.Thread(target=sync)

    def read_then_let_the_sync_commit(conn: Any) -> dt.datetime | None:
        latest = first_read(conn)
        writer.start()
        writer.join(timeout=1.0)  # done at once unless our transaction holds the lock
        return latest

    monkeypatch.setattr(snapshot_rows, "latest_refresh", read_then_let_the_sync_commit)
    refresher = KpiRefresher(engine, Settings(), write_engine=write_engine)
    if not immediate:
        with pytest.raises(OperationalError, match="database is locked"):
            refresher.refresh(NOW)
        writer.join()
        return
    report = refresher.refresh(NOW)
    writer.join()
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(KpiSnapshot)).scalar_one()
        cursors = conn.execute(select(func.count()).select_from(SyncCursor)).scalar_one()
    assert report.written == stored > 0
    assert cursors == 1
