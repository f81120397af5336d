"""KPI values for the cash-conversion page: from the latest snapshots when the filters are
one slice the snapshots hold, else computed by the KPI module on the filtered store (a
combination of filters, or no snapshot yet). Either way the numbers are the KPI module's."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from sqlalchemy import Connection, Engine, select

from kpis.compute import compute_kpis
from kpis.frames import StoreFrames, load_integration_frames, load_store_frames
from kpis.snapshot_rows import latest_refresh
from kpis.snapshots import latest_as_of, latest_snapshots
from kpis.windows import POINT_IN_TIME
from store.monitoring import KpiSnapshot
from throughline.config import Settings

ALL = "all"


@dataclass(frozen=True)
class SliceFilter:
    """The slicing filters of the sidebar; None means every value."""

    legal_entity: str | None = None
    region: str | None = None
    practice: str | None = None

    def chosen(self) -> list[tuple[str, str]]:
        return [
            (dimension, value)
            for dimension, value in (
                ("legal_entity", self.legal_entity),
                ("region", self.region),
                ("practice", self.practice),
            )
            if value is not None
        ]

    def snapshot_slice(self) -> tuple[str, str] | None:
        """The (dimension, value) a snapshot holds for these filters, or None when more
        than one filter is set (snapshots are cut one dimension at a time)."""
        chosen = self.chosen()
        if not chosen:
            return (ALL, ALL)
        return chosen[0] if len(chosen) == 1 else None


@dataclass(frozen=True)
class KpiPoint:
    value: float | None
    unit: str
    member_count: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class KpiBoard:
    as_of: dt.datetime | None
    source: Literal["snapshot", "live"]
    window: str
    values: dict[str, KpiPoint] = field(default_factory=dict)

    def value(self, kpi: str) -> float | None:
        point = self.values.get(kpi)
        return point.value if point is not None else None


def snapshot_board(engine: Engine, window: str, filters: SliceFilter) -> KpiBoard | None:
    """The latest snapshot's values for `window` (and the point-in-time KPIs) in the one
    slice the filters name; None when there is no snapshot or the filters combine slices."""
    wanted = filters.snapshot_slice()
    if wanted is None:
        return None
    as_of = latest_as_of(engine)
    if as_of is None:
        return None
    rows = latest_snapshots(engine)
    values = {
        r.kpi: KpiPoint(
            r.value,
            r.unit,
            r.member_count,
            tuple((r.meta or {}).get("members", ())),
        )
        for r in rows
        if r.window in (window, POINT_IN_TIME) and (r.dimension, r.dimension_value) == wanted
    }
    return KpiBoard(as_of, "snapshot", window, values)


def filtered_frames(frames: StoreFrames, filters: SliceFilter) -> StoreFrames:
    """The frames of the deals the filters keep (a deal's practice is its own, else its
    first project's, as the KPI module does)."""
    chosen = filters.chosen()
    if not chosen:
        return frames
    deals = frames.deals.copy()
    practice = frames.projects.dropna(subset=["practice"]).groupby("deal_id")["practice"].first()
    deals["practice"] = deals["practice"].fillna(deals["id"].map(practice))
    keep = pd.Series(True, index=deals.index)
    for dimension, value in chosen:
        keep &= deals[dimension].astype(str) == value
    ids = set(deals.loc[keep, "id"])
    return dataclasses.replace(
        frames,
        deals=frames.deals[frames.deals["id"].isin(ids)].reset_index(drop=True),
        projects=frames.projects[frames.projects["deal_id"].isin(ids)].reset_index(drop=True),
        contracts=frames.contracts[frames.contracts["deal_id"].isin(ids)].reset_index(drop=True),
        invoices=frames.invoices[frames.invoices["deal_id"].isin(ids)].reset_index(drop=True),
        items=frames.items[frames.items["deal_id"].isin(ids)].reset_index(drop=True),
    )


def live_board(
    conn: Connection, settings: Settings, now: dt.datetime, window: str, filters: SliceFilter
) -> KpiBoard:
    """Every KPI computed now by the KPI module over the deals the filters keep."""
    frames = filtered_frames(load_store_frames(conn), filters)
    integration = load_integration_frames(conn) if not filters.chosen() else None
    values = {
        v.kpi: KpiPoint(v.value, v.unit, v.member_count, tuple(v.members))
        for v in compute_kpis(frames, integration, settings, now)
        if v.window in (window, POINT_IN_TIME) and v.dimension == ALL
    }
    return KpiBoard(now, "live", window, values)


def kpi_board(
    engine: Engine, settings: Settings, now: dt.datetime, window: str, filters: SliceFilter
) -> KpiBoard:
    board = snapshot_board(engine, window, filters)
    if board is not None:
        return board
    with engine.connect() as conn:
        return live_board(conn, settings, now, window, filters)


def kpi_history(
    conn: Connection, kpis: list[str], window: str, dimension: str, dimension_value: str
) -> pd.DataFrame:
    """as_of, kpi, value of these KPIs in one slice, oldest first: one row per change (a
    refresh stores a value only when it changed), so the value at a moment is the last
    row at or before it; a value still current also gets a point at the latest refresh,
    so a trend reaches the present (a value that never changed is a flat line)."""
    rows = conn.execute(
        select(KpiSnapshot.as_of, KpiSnapshot.kpi, KpiSnapshot.value, KpiSnapshot.superseded_at)
        .where(KpiSnapshot.kpi.in_(kpis))
        .where(KpiSnapshot.window.in_([window, POINT_IN_TIME]))
        .where(KpiSnapshot.dimension == dimension)
        .where(KpiSnapshot.dimension_value == dimension_value)
        .order_by(KpiSnapshot.as_of)
    ).all()
    latest = latest_refresh(conn)
    points = [(as_of, kpi, value) for as_of, kpi, value, _ in rows]
    points += [
        (latest, kpi, value)
        for as_of, kpi, value, superseded in rows
        if superseded is None and latest is not None and as_of < latest
    ]
    frame = pd.DataFrame(points, columns=["as_of", "kpi", "value"])
    return frame.sort_values("as_of", kind="stable", ignore_index=True)


def previous_value(history: pd.DataFrame, kpi: str, before: dt.datetime) -> float | None:
    """The KPI's stored value at or before `before` (the end of the previous window)."""
    rows = history[(history["kpi"] == kpi) & (history["as_of"] <= before)]
    if rows.empty:
        return None
    value = rows.iloc[-1]["value"]
    return None if pd.isna(value) else float(value)


def has_snapshots(engine: Engine) -> bool:
    return latest_as_of(engine) is not None
