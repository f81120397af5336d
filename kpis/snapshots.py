"""KPI snapshots: `refresh` computes every KPI and stores one row per value in
`kpi_snapshots`. A `KpiRefresher` kept between refreshes (the scheduler's job) re-reads only
the deals whose lifecycle events arrived since its last refresh."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Select, select

from kpis.compute import compute_from_tables
from kpis.facts import build_facts
from kpis.frames import (
    changed_deals,
    load_consultants,
    load_deal_rows,
    load_integration_frames,
    load_store_frames,
)
from kpis.incremental import SplitFacts, horizon_seconds
from kpis.snapshot_rows import CURRENT, SnapshotWriter, latest_refresh
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import windows_from
from store.monitoring import KpiSnapshot
from throughline.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshReport:
    as_of: dt.datetime
    mode: str
    """`full` (whole history read) or `incremental` (only changed deals read)"""
    deals_read: int
    values: int
    written: int
    """snapshot rows written: the values that changed since the previous refresh"""
    seconds: float
    read_seconds: float = 0.0
    """reading the store and rebuilding the fact rows (all of them, or the changed deals')"""
    compute_seconds: float = 0.0
    """computing every value"""
    store_seconds: float = 0.0
    """comparing the values with the stored ones and writing the changes"""


def write_snapshots(
    engine: Engine,
    values: list[KpiValue],
    as_of: dt.datetime,
    writer: SnapshotWriter | None = None,
) -> int:
    """Store the values as of `as_of` (the ones that changed: kpis/snapshot_rows.py),
    replacing a refresh stored for the same moment; returns the rows written."""
    with engine.begin() as conn:
        return (writer or SnapshotWriter()).write(conn, values, as_of)


class KpiRefresher:
    """Holds the fact rows of the last refresh, split into settled deals (kept as sums) and
    the rest (kpis.incremental), and the lifecycle-event watermark, so the next refresh
    reads and rebuilds only the deals with events recorded since, and computes over the
    unsettled rows only."""

    def __init__(
        self, engine: Engine, settings: Settings, *, write_engine: Engine | None = None
    ) -> None:
        """`write_engine` stores the snapshots (default `engine`). On SQLite give one made
        with `immediate=True`: a write transaction that begins as a read fails at once with
        "database is locked" when another connection wrote since, instead of waiting."""
        self._engine = engine
        self._write_engine = write_engine or engine
        self._settings = settings
        self._split: SplitFacts | None = None
        self._events_seen = 0
        self._horizon = horizon_seconds(windows_from(settings.kpis))
        self._writer = SnapshotWriter()

    @property
    def split(self) -> SplitFacts | None:
        """The kept fact rows (None before the first refresh)."""
        return self._split

    def compute(self, now: dt.datetime) -> tuple[list[KpiValue], str, int]:
        values, mode, read, _ = self._compute(now)
        return values, mode, read

    def _compute(self, now: dt.datetime) -> tuple[list[KpiValue], str, int, float]:
        """The values, the mode, the deals read and the seconds spent reading."""
        started = time.perf_counter()
        at = now.timestamp()
        try:
            with self._engine.connect() as conn:
                if self._split is None:
                    frames = load_store_frames(conn)
                    tables = FactTables.of(build_facts(frames, self._settings.kpis))
                    split = SplitFacts.split(tables, at, self._horizon)
                    seen, mode, read = frames.events_seen, "full", len(frames.deals)
                    consultants = frames.consultants
                else:
                    ids, seen = changed_deals(conn, self._events_seen)
                    split = self._split
                    if ids:
                        fresh = load_deal_rows(conn, ids)
                        rebuilt = build_facts(fresh, self._settings.kpis, split.active.vocabulary)
                        split.replace_deals(FactTables.of(rebuilt), ids)
                    if split.due_for_split(at):
                        split = SplitFacts.split(split.merged(), at, self._horizon)
                    mode, read = "incremental", len(ids)
                    consultants = load_consultants(conn)
                integration = load_integration_frames(conn)
        except BaseException:
            self._split = None  # half-applied changes: start over from the store next time
            raise
        self._split, self._events_seen = split, seen
        reading = time.perf_counter() - started
        values = compute_from_tables(
            split.active,
            integration,
            self._settings,
            now,
            settled=split.settled_parts(),
            consultants=consultants,
        )
        return values, mode, read, reading

    def refresh(self, now: dt.datetime) -> RefreshReport:
        started = time.perf_counter()
        values, mode, read, reading = self._compute(now)
        computed = time.perf_counter()
        written = write_snapshots(self._write_engine, values, now, self._writer)
        done = time.perf_counter()
        report = RefreshReport(
            now,
            mode,
            read,
            len(values),
            written,
            seconds=done - started,
            read_seconds=reading,
            compute_seconds=computed - started - reading,
            store_seconds=done - computed,
        )
        logger.info(
            "kpi refresh (%s): %d deals read, %d values (%d changed) in %.2fs "
            "(read %.3f, compute %.3f, store %.3f)",
            mode,
            read,
            len(values),
            written,
            report.seconds,
            report.read_seconds,
            report.compute_seconds,
            report.store_seconds,
        )
        return report


def refresh(
    engine: Engine,
    settings: Settings,
    now: dt.datetime,
    refresher: KpiRefresher | None = None,
    write_engine: Engine | None = None,
) -> RefreshReport:
    """Compute and store every KPI as of `now`: in full, or incrementally through a
    `refresher` that has refreshed before."""
    return (refresher or KpiRefresher(engine, settings, write_engine=write_engine)).refresh(now)


def latest_as_of(engine: Engine) -> dt.datetime | None:
    """The moment of the latest stored refresh (None before the first)."""
    with engine.connect() as conn:
        return latest_refresh(conn)


def current_values() -> Select[Any]:
    """The snapshot rows of the latest refresh: those no later refresh superseded."""
    return select(KpiSnapshot).where(CURRENT)


def latest_snapshots(engine: Engine) -> list[KpiSnapshot]:
    """Every value of the latest refresh (each row's `as_of` says since when it holds)."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(
            session.scalars(
                current_values().order_by(
                    KpiSnapshot.kpi,
                    KpiSnapshot.window,
                    KpiSnapshot.dimension,
                    KpiSnapshot.dimension_value,
                )
            )
        )
