"""An incremental refresh gives exactly what a full one gives: on the generated history,
after new events on settled deals (long finished, kept as sums), on deals still moving and
on a new deal, every value, member count and member list of the incremental refresh is
the one a full computation from the store gives (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, text

from kpis.compute import compute_kpis
from kpis.frames import load_integration_frames, load_store_frames
from kpis.snapshots import KpiRefresher, latest_snapshots
from kpis.values import KpiValue
from tests.kpis.eventlog import EventLog
from tests.kpis.history import NOW, history_log
from tests.kpis.stores import module_store
from throughline.config import Settings

SETTINGS = Settings()
Key = tuple[str, str, str, str]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with module_store(request) as engine:
        log = history_log()
        for n, (entity, practice) in enumerate(
            [("us", "data"), ("uk", "cloud"), ("de", "apps"), ("us", None)]
        ):
            log.consultant(f"U{n}", entity=entity, practice=practice, weekly_hours=40 - n)
        _with_consultants(log)
        log.write(engine)
        yield engine


def _with_consultants(log: EventLog) -> None:
    """Spread the history's time items over the consultants (some over nobody we know)."""
    from store.objects import BillableItem

    for n, row in enumerate(log.rows.get(BillableItem, [])):
        row["consultant"] = f"U{n % 5}"  # U4 is not a known consultant


def full_values(engine: Engine, now: dt.datetime) -> dict[Key, KpiValue]:
    with engine.connect() as conn:
        frames, integration = load_store_frames(conn), load_integration_frames(conn)
    return {v.key: v for v in compute_kpis(frames, integration, SETTINGS, now)}


def assert_same(refresher: KpiRefresher, engine: Engine, now: dt.datetime) -> None:
    """The refresher's values as of `now` are those of a full computation, member lists
    included; and what it stored is what it computed."""
    values, _mode, _read = refresher.compute(now)
    ours = {v.key: v for v in values}
    full = full_values(engine, now)
    assert set(ours) == set(full)
    differ = [
        (k, ours[k].value, full[k].value, ours[k].member_count, full[k].member_count)
        for k in full
        if ours[k].value != full[k].value or ours[k].member_count != full[k].member_count
    ]
    assert differ == []
    for key, value in full.items():
        assert sorted(ours[key].member_ids()) == sorted(value.member_ids()), key


def _deal_ids(engine: Engine, sql: str, **params: Any) -> list[str]:
    with engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(text(sql), params)]


def _changes(engine: Engine, settled: list[str], active: list[str], when: str) -> None:
    """New events on settled deals (an invoice credited, a new invoice with time, a late
    payment), on active ones (new WIP) and a deal that did not exist."""
    log = EventLog()
    for n, deal in enumerate(settled[:3]):
        log.event("invoice", f"X{n}", deal, "invoiced", when)
        log.invoice(
            f"X{n}",
            deal,
            entity="us",
            currency="USD",
            amount=1234.5,
            stage="invoiced",
            issued=when,
        )
        log.item(
            f"XB{n}",
            deal,
            kind="time",
            quantity=7.5,
            rate=100,
            currency="USD",
            approved=when,
            consultant=f"U{n}",
        )
    for deal in active[:3]:
        log.event("billable_item", f"Y{deal}", deal, "billable_approved", when)
        log.item(
            f"Y{deal}",
            deal,
            kind="time",
            quantity=3,
            rate=150,
            currency="GBP",
            approved=when,
            consultant="U1",
        )
    log.event("deal", "NEW1", "NEW1", "closed_won", when, 9000, "EUR")
    log.deal(
        "NEW1",
        entity="de",
        region="emea",
        practice="security",
        currency="EUR",
        amount=9000,
        stage="closed_won",
        closed_won=when,
    )
    log.write(engine)
    # Changes to existing rows of settled deals: an invoice credited, one paid in full.
    with engine.begin() as conn:
        invoices = [
            str(r[0])
            for r in conn.execute(
                text("SELECT id FROM invoices WHERE deal_id IN :ids ORDER BY id").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": settled[3:8]},
            )
        ]
        assert len(invoices) >= 2
        conn.execute(
            text("UPDATE invoices SET stage = 'credited' WHERE id = :i"), {"i": invoices[0]}
        )
        conn.execute(
            text("UPDATE invoices SET amount_paid = amount WHERE id = :i"), {"i": invoices[1]}
        )
    extra = EventLog()
    extra._event = 10_000  # distinct dedup keys from the first log's
    for deal in settled[3:8]:
        extra.event("deal", deal, deal, "first_cash", when)
    extra.write(engine)


def test_incremental_refresh_equals_a_full_one_across_settled_and_active_deals(
    store: Engine,
) -> None:
    engine = store
    start = NOW - dt.timedelta(hours=2)
    refresher = KpiRefresher(engine, SETTINGS)
    first = refresher.refresh(start)
    assert first.mode == "full"
    split = refresher.split
    assert split is not None
    settled = [str(i) for i in split.settled.deals.columns["id"]]
    active = [str(i) for i in split.active.deals.columns["id"]]
    assert len(settled) >= 10 and len(active) >= 100  # both halves are exercised
    with_invoices = set(_deal_ids(engine, "SELECT DISTINCT deal_id FROM invoices"))
    settled = [d for d in settled if d in with_invoices]
    assert len(settled) >= 8
    assert_same(refresher, engine, start)

    _changes(engine, settled, active, "2026-06-30 11:00")
    later = NOW
    report = refresher.refresh(later)
    assert report.mode == "incremental" and report.deals_read == 3 + 3 + 1 + 5
    assert refresher.split is split  # not split again: the changed deals moved over
    stored = {
        (r.kpi, r.window, r.dimension, r.dimension_value): (r.value, r.member_count)
        for r in latest_snapshots(engine)
    }
    full = full_values(engine, later)
    assert stored == {k: (v.value, v.member_count) for k, v in full.items()}
    assert_same(refresher, engine, later)

    # Two days on, the split is redone from the kept rows (deals settle as time passes).
    much_later = NOW + dt.timedelta(days=2)
    again = refresher.refresh(much_later)
    assert again.mode == "incremental" and again.deals_read == 0
    assert refresher.split is not split
    assert_same(refresher, engine, much_later)


def test_incremental_refreshes_follow_time_across_window_edges_and_slas(store: Engine) -> None:
    """No new events, only time passing (within a day, so no new split): rows leave the
    1d window, invoices pass their posting SLA, pending deals age into the next bucket;
    every refresh still equals a full computation at its moment."""
    start = NOW - dt.timedelta(days=1)
    refresher = KpiRefresher(engine := store, SETTINGS)
    refresher.refresh(start)
    split = refresher.split
    seen = []
    for hours in (0.5, 1.25, 7, 16, 23.5):
        later = start + dt.timedelta(hours=hours)
        report = refresher.refresh(later)
        assert report.mode == "incremental" and report.deals_read == 0
        assert refresher.split is split
        assert_same(refresher, engine, later)
        seen.append(
            {
                (r.kpi, r.window, r.dimension, r.dimension_value): r.value
                for r in latest_snapshots(engine)
            }
        )
    assert all(a != b for a, b in itertools.pairwise(seen))  # time moved values
