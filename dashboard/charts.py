"""Figures: pure functions from frames to plotly figures (no Streamlit, no queries)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from store.deal_queries import SyncStep, TimelineEvent

STATE_COLOURS = {"ok": 0, "idle": 1, "degraded": 2, "failing": 3}
SYSTEM_LANES = ["crm", "clm", "psa", "billing", "erp", "unknown"]
MARK_COLOURS = {"met": "#2e7d32", "running": "#1565c0", "late": "#ef6c00", "breached": "#c62828"}


def _compact(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def funnel_figure(funnel: pd.DataFrame, currency: str) -> go.Figure:
    """Value that reached each step, with deal counts and conversion in the labels."""
    labels = [
        f"{d} deals" + (f" · {c * 100:.0f} %" if pd.notna(c) else "")
        for d, c in zip(funnel["deals"], funnel["conversion"], strict=True)
    ]
    fig = go.Figure(
        go.Funnel(
            y=funnel["step"],
            x=funnel["value"],
            text=labels,
            textinfo="value+text",
            texttemplate=f"{currency} %{{value:,.0f}}<br>%{{text}}",
        )
    )
    return _compact(fig, 360)


def blockers_figure(groups: pd.DataFrame, currency: str) -> go.Figure:
    """Money at risk by system and cause, largest at the top."""
    ordered = groups.sort_values("money_at_risk")
    fig = go.Figure(
        go.Bar(
            x=ordered["money_at_risk"],
            y=ordered["system"].fillna("?") + " · " + ordered["cause"],
            orientation="h",
            text=ordered["items"].astype(str) + " stuck",
            hovertemplate=f"{currency} %{{x:,.0f}}<extra></extra>",
        )
    )
    fig.update_xaxes(title=f"money at risk ({currency})")
    return _compact(fig, max(220, 40 * len(ordered) + 80))


def forecast_figure(forecast: pd.DataFrame, currency: str) -> go.Figure:
    fig = go.Figure()
    for source, rows in forecast.groupby("source", sort=False):
        fig.add_bar(x=rows["month"], y=rows["amount"], name=str(source))
    fig.update_layout(barmode="stack", yaxis_title=currency)
    return _compact(fig, 300)


def health_matrix_figure(matrix: pd.DataFrame) -> go.Figure:
    """Systems (rows) x flows (columns) coloured by state."""
    grid = matrix.pivot_table(index="system", columns="flow", values="state", aggfunc="first")
    z = grid.map(lambda s: STATE_COLOURS.get(s) if isinstance(s, str) else None)
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(dtype="float64"),
            x=list(grid.columns),
            y=list(grid.index),
            text=grid.fillna("").to_numpy(),
            texttemplate="%{text}",
            zmin=0,
            zmax=3,
            colorscale=[[0, "#c8e6c9"], [0.33, "#eeeeee"], [0.66, "#ffe0b2"], [1, "#ffcdd2"]],
            showscale=False,
        )
    )
    return _compact(fig, 60 * len(grid.index) + 80)


def waterfall_figure(steps: Sequence[SyncStep]) -> go.Figure:
    """A span waterfall: one bar per span from its start, offset from the first start."""
    if not steps:
        return _compact(go.Figure(), 120)
    origin = min(s.started_at for s in steps)
    offsets = [(s.started_at - origin).total_seconds() * 1000 for s in steps]
    colours = ["#c62828" if s.status == "error" else "#1565c0" for s in steps]
    labels = [f"{s.system or s.service} · {s.name}" for s in steps]
    fig = go.Figure(
        go.Bar(
            base=offsets,
            x=[max(s.duration_ms, 0.5) for s in steps],
            y=[f"{i:02d} {label}" for i, label in enumerate(labels)],
            orientation="h",
            marker_color=colours,
            text=[f"{s.duration_ms:.0f} ms" for s in steps],
            hovertext=[s.status_message or s.status for s in steps],
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="ms since the first span")
    return _compact(fig, 28 * len(steps) + 90)


def timeline_figure(events: Sequence[TimelineEvent]) -> go.Figure:
    """Every lifecycle event on a lane per system, labelled with its object and stage."""
    frame = pd.DataFrame(
        {
            "at": [e.occurred_at for e in events],
            "system": [e.source_system or "unknown" for e in events],
            "label": [f"{e.object_type} {e.object_id}: {e.stage}" for e in events],
            "object": [e.object_type for e in events],
        }
    )
    fig = go.Figure()
    for object_type, rows in frame.groupby("object", sort=False):
        fig.add_scatter(
            x=rows["at"],
            y=rows["system"],
            mode="markers",
            name=str(object_type),
            text=rows["label"],
            hovertemplate="%{text}<br>%{x}<extra></extra>",
            marker={"size": 12},
        )
    fig.update_yaxes(categoryorder="array", categoryarray=SYSTEM_LANES)
    return _compact(fig, 300)


def sla_figure(marks: pd.DataFrame) -> go.Figure:
    """Each SLA clock as a bar from start to reached (or due), coloured by its mark."""
    fig = go.Figure()
    for mark, rows in marks.groupby("mark", sort=False):
        ends = rows["reached_at"].where(rows["reached_at"].notna(), rows["due_at"])
        fig.add_bar(
            base=rows["started_at"],
            x=(pd.to_datetime(ends, utc=True) - pd.to_datetime(rows["started_at"], utc=True))
            .dt.total_seconds()
            .mul(1000),
            y=rows["object"] + ": " + rows["from"] + " → " + rows["to"],
            orientation="h",
            name=str(mark),
            marker_color=MARK_COLOURS.get(str(mark), "#757575"),
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed")
    return _compact(fig, 34 * len(marks) + 90)
