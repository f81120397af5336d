"""The KPI API: `kpis_router(engine, settings)` serves the latest snapshots as JSON under
`/kpis` (the collector mounts it at `/api/v1`), and drills into the members of a value."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kpis.compute import compute_kpis
from kpis.definitions import DEFINITIONS, dimension_named
from kpis.frames import load_integration_frames, load_store_frames
from kpis.snapshots import current_values, latest_as_of
from kpis.windows import POINT_IN_TIME, windows_from
from store.monitoring import KpiSnapshot
from throughline.config import Settings

MEMBERS_CACHED = 8
"""member lists recomputed for truncated values, kept so paging through one is cheap"""


def _dimension(by: str) -> str:
    try:
        return dimension_named(by)
    except ValueError as exc:
        raise HTTPException(422, f"by: {exc}") from None


def _window(window: str | None, labels: list[str]) -> str | None:
    """`window` if it is one of the configured `labels` (or `now`), else a 422 naming
    them."""
    if window is None or window in labels:
        return window
    raise HTTPException(
        422,
        f"window: {window!r} is not a configured KPI window: choose from "
        f"{', '.join(labels)} (kpis.windows in the configuration)",
    )


def _row(s: KpiSnapshot, with_meta: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kpi": s.kpi,
        "window": s.window,
        "dimension": s.dimension,
        "slice": s.dimension_value,
        "value": s.value,
        "unit": s.unit,
        "member_count": s.member_count,
        "since": s.as_of.isoformat(),
        "formula": DEFINITIONS[s.kpi].formula if s.kpi in DEFINITIONS else None,
    }
    if with_meta:
        out["meta"] = s.meta
    return out


def kpis_router(engine: Engine, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/kpis", tags=["kpis"])
    labels = [w.label for w in windows_from(settings.kpis)] + [POINT_IN_TIME]

    def _snapshots(kpi: str | None, window: str | None, dimension: str) -> list[KpiSnapshot]:
        query = current_values().where(KpiSnapshot.dimension == dimension)
        if kpi is not None:
            query = query.where(KpiSnapshot.kpi == kpi)
        if window is not None:
            query = query.where(KpiSnapshot.window.in_([window, POINT_IN_TIME]))
        with Session(engine) as session:
            return list(
                session.scalars(
                    query.order_by(KpiSnapshot.kpi, KpiSnapshot.window, KpiSnapshot.dimension_value)
                )
            )

    @router.get("")
    def list_kpis(
        window: str | None = Query(None, description="e.g. 30d; point-in-time KPIs always"),
        by: str = Query("all", description="all, entity, region, practice, currency, flow, system"),
    ) -> dict[str, Any]:
        """The latest snapshot of every KPI for one window and one way of slicing."""
        dimension, window = _dimension(by), _window(window, labels)
        as_of = latest_as_of(engine)
        if as_of is None:
            return {"as_of": None, "values": []}
        rows = _snapshots(None, window, dimension)
        return {"as_of": as_of.isoformat(), "values": [_row(s, False) for s in rows]}

    @router.get("/definitions")
    def definitions() -> list[dict[str, Any]]:
        """Every KPI: name, unit, formula, whether it is windowed, what its members are."""
        return [
            {
                "kpi": d.name,
                "unit": settings.kpis.reporting_currency if d.unit == "money" else d.unit,
                "formula": d.formula,
                "scope": d.scope,
                "member_type": d.member_type,
            }
            for d in DEFINITIONS.values()
        ]

    @router.get("/{kpi}")
    def one_kpi(kpi: str, window: str | None = None, by: str = "all") -> dict[str, Any]:
        """The latest values of one KPI with their metadata (formula, window, members)."""
        if kpi not in DEFINITIONS:
            raise HTTPException(404, f"unknown kpi {kpi!r}")
        dimension, window = _dimension(by), _window(window, labels)
        as_of = latest_as_of(engine)
        if as_of is None:
            raise HTTPException(404, "no KPI snapshot yet: run `throughline kpis refresh`")
        rows = _snapshots(kpi, window, dimension)
        return {"as_of": as_of.isoformat(), "values": [_row(s, True) for s in rows]}

    recomputed: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()
    lock = threading.Lock()

    def _all_members(key: tuple[Any, ...], as_of: dt.datetime) -> list[str]:
        """Every member of the value `key` (kpi, window, dimension, slice) as of `as_of`,
        sorted; recomputed once, then kept for the next pages."""
        with lock:
            found = recomputed.get((as_of, *key))
        if found is not None:
            return found
        with engine.connect() as conn:
            frames, integration = load_store_frames(conn), load_integration_frames(conn)
        value = next(
            (v for v in compute_kpis(frames, integration, settings, as_of) if v.key == key), None
        )
        found = sorted(value.member_ids()) if value is not None else []
        with lock:
            recomputed[(as_of, *key)] = found
            while len(recomputed) > MEMBERS_CACHED:
                recomputed.popitem(last=False)
        return found

    @router.get("/{kpi}/members")
    def members(
        kpi: str,
        window: str,
        by: str = "all",
        slice: str = "all",
        limit: int = Query(100, ge=1, le=1000, description="members per page"),
        offset: int = Query(0, ge=0, description="members to skip (`next_offset` of a page)"),
    ) -> dict[str, Any]:
        """The members (deal, invoice, item, message ids) behind one value of the latest
        snapshot, sorted, a page at a time; recomputed as of that snapshot when more were
        found than it stores."""
        if kpi not in DEFINITIONS:
            raise HTTPException(404, f"unknown kpi {kpi!r}")
        dimension = _dimension(by)
        _window(window, labels)
        as_of = latest_as_of(engine)
        if as_of is None:
            raise HTTPException(404, "no KPI snapshot yet: run `throughline kpis refresh`")
        with Session(engine) as session:
            snap = session.scalars(
                current_values().where(
                    KpiSnapshot.kpi == kpi,
                    KpiSnapshot.window == window,
                    KpiSnapshot.dimension == dimension,
                    KpiSnapshot.dimension_value == slice,
                )
            ).first()
        if snap is None:
            raise HTTPException(
                404, f"no {by}={slice!r} value of {kpi} {window} in the latest snapshot"
            )
        meta = snap.meta or {}
        if meta.get("members_truncated"):
            listed = _all_members((kpi, window, dimension, slice), as_of)
        else:
            listed = sorted(meta.get("members", []))
        page = listed[offset : offset + limit]
        following = offset + limit
        return {
            "kpi": kpi,
            "window": window,
            "dimension": dimension,
            "slice": slice,
            "as_of": as_of.isoformat(),
            "member_type": DEFINITIONS[kpi].member_type,
            "total": len(listed),
            "offset": offset,
            "limit": limit,
            "next_offset": following if following < len(listed) else None,
            "members": page,
        }

    return router
