"""The KPI API: `kpis_router(engine, settings)` serves the latest snapshots as JSON under
`/kpis` (the collector mounts it at `/api/v1`), and drills into the members of a value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from kpis.compute import compute_kpis
from kpis.definitions import DEFINITIONS, DIMENSION_ALIASES
from kpis.frames import load_integration_frames, load_store_frames
from kpis.snapshots import current_values, latest_as_of
from kpis.windows import POINT_IN_TIME
from store.monitoring import KpiSnapshot
from throughline.config import Settings


def _dimension(by: str) -> str:
    return DIMENSION_ALIASES.get(by, by)


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
        as_of = latest_as_of(engine)
        if as_of is None:
            return {"as_of": None, "values": []}
        rows = _snapshots(None, window, _dimension(by))
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
        as_of = latest_as_of(engine)
        if as_of is None:
            raise HTTPException(404, "no KPI snapshot yet: run `throughline kpis refresh`")
        rows = _snapshots(kpi, window, _dimension(by))
        return {"as_of": as_of.isoformat(), "values": [_row(s, True) for s in rows]}

    @router.get("/{kpi}/members")
    def members(kpi: str, window: str, by: str = "all", slice: str = "all") -> dict[str, Any]:
        """Every member (deal, invoice, item, message id) behind one value of the latest
        snapshot; recomputed as of that snapshot when more were found than it stores."""
        if kpi not in DEFINITIONS:
            raise HTTPException(404, f"unknown kpi {kpi!r}")
        as_of = latest_as_of(engine)
        if as_of is None:
            raise HTTPException(404, "no KPI snapshot yet: run `throughline kpis refresh`")
        dimension = _dimension(by)
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
            raise HTTPException(404, "no such value in the latest snapshot")
        meta = snap.meta or {}
        listed: list[str] = list(meta.get("members", []))
        if meta.get("members_truncated"):
            with engine.connect() as conn:
                frames, integration = load_store_frames(conn), load_integration_frames(conn)
            found = next(
                (
                    v
                    for v in compute_kpis(frames, integration, settings, as_of)
                    if v.key == (kpi, window, dimension, slice)
                ),
                None,
            )
            listed = found.member_ids() if found is not None else listed
        return {
            "kpi": kpi,
            "window": window,
            "dimension": dimension,
            "slice": slice,
            "as_of": as_of.isoformat(),
            "member_type": DEFINITIONS[kpi].member_type,
            "members": listed,
        }

    return router
