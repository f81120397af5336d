"""Sections of the cash-conversion page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cached_queries as cq
from dashboard import charts
from dashboard.components import deal_link
from dashboard.data.forecast import cash_forecast
from dashboard.data.funnel import funnel_table
from dashboard.data.kpi_readings import KpiBoard, previous_value
from dashboard.formatting import DASH, kpi_text, money
from dashboard.sections.context import PageContext

TILES: tuple[tuple[str, str, bool], ...] = (
    # label, kpi, higher is better
    ("Activation latency p50", "activation_latency_p50", False),
    ("Activation latency p90", "activation_latency_p90", False),
    ("Invoice exception rate", "invoice_exception_rate", False),
    ("Posting success", "posting_success_rate", True),
    ("Unbilled WIP", "unbilled_wip", False),
    ("Billing leakage", "billing_leakage", False),
    ("DSO", "dso", False),
    ("Backlog", "backlog", True),
    ("Utilization", "utilization", True),
)


def read_board(ctx: PageContext) -> KpiBoard:
    return cq.board(ctx.url, ctx.key, ctx.settings, ctx.now, ctx.filters.window, ctx.filters.slices)


def source_caption(board: KpiBoard) -> None:
    when = board.as_of.strftime("%Y-%m-%d %H:%M UTC") if board.as_of else DASH
    if board.source == "snapshot":
        st.caption(f"KPI snapshot as of {when} · window {board.window}")
    else:
        st.caption(
            f"Computed now ({when}) from the store · window {board.window} · no stored "
            "snapshot holds this combination of filters (`throughline kpis refresh` stores them)"
        )


def kpi_tiles(ctx: PageContext, board: KpiBoard) -> None:
    """One tile per headline KPI: value, change against the previous window, trend."""
    wanted = ctx.filters.slices.snapshot_slice()
    history = (
        cq.history(ctx.url, tuple(k for _, k, _ in TILES), ctx.filters.window, *wanted)
        if board.source == "snapshot" and wanted is not None
        else pd.DataFrame(columns=["as_of", "kpi", "value"])
    )
    before = (board.as_of or ctx.now) - ctx.window
    for row_start in range(0, len(TILES), 4):
        columns = st.columns(4)
        for column, (label, kpi, higher_better) in zip(
            columns, TILES[row_start : row_start + 4], strict=False
        ):
            point = board.values.get(kpi)
            value = point.value if point is not None else None
            unit = point.unit if point is not None else ""
            earlier = previous_value(history, kpi, before)
            delta = None
            if value is not None and earlier is not None:
                change = value - earlier
                sign = "+" if change >= 0 else "-"
                delta = sign + kpi_text(
                    abs(change), unit, ctx.settings, ctx.filters.currency, compact=True
                )
            trend = history.loc[history["kpi"] == kpi, "value"].dropna().tolist()
            shown = kpi_text(value, unit, ctx.settings, ctx.filters.currency, compact=True)
            exact = kpi_text(value, unit, ctx.settings, ctx.filters.currency)
            column.metric(
                label,
                shown,
                delta=delta,
                delta_color="normal" if higher_better else "inverse",
                help=f"{kpi}: against the previous {ctx.filters.window}"
                + (f" ({point.member_count} members)" if point is not None else "")
                + (f"; exactly {exact}" if exact != shown else ""),
                chart_data=trend if len(trend) > 1 else None,
                border=True,
            )


def money_funnel(ctx: PageContext, board: KpiBoard) -> None:
    st.subheader("Money funnel")
    funnel = funnel_table(board)
    funnel["value"] = [ctx.in_view(v) or 0.0 for v in funnel["value"]]
    days = cq.stage_days(ctx.url, ctx.now - ctx.window, ctx.now, ctx.filters.slices)
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.funnel_figure(funnel, ctx.filters.currency), key="funnel")
    table = funnel.merge(days, on="step", how="left")
    table = table.assign(
        value=[money(v, ctx.filters.currency) for v in table["value"]],
        conversion=[f"{c * 100:.0f} %" if pd.notna(c) else DASH for c in table["conversion"]],
        days_from_previous=[f"{d:.1f}" if pd.notna(d) else DASH for d in table["median_days"]],
    )[["step", "deals", "value", "conversion", "days_from_previous"]]
    right.dataframe(table, hide_index=True, key="funnel_table")
    right.caption(
        f"Deals that reached each step (now); days: median from the step before, over deals "
        f"that reached the step in the last {ctx.filters.window}."
    )


def blockers(ctx: PageContext, limit: int = 10) -> None:
    st.subheader("Blockers by money at risk")
    stuck = ctx.keep_slices(cq.stuck(ctx.url, ctx.key, ctx.settings, ctx.now))
    if stuck.empty:
        st.success("Nothing is past its stage SLA.")
        return
    stuck = stuck.assign(money_at_risk=[ctx.in_view(v) for v in stuck["money_at_risk"]])
    groups = (
        stuck.assign(system=stuck["system"].fillna("?"))
        .groupby(["system", "cause"], as_index=False)
        .agg(money_at_risk=("money_at_risk", "sum"), items=("object_id", "count"))
        .sort_values("money_at_risk", ascending=False)
    )
    st.plotly_chart(charts.blockers_figure(groups, ctx.filters.currency), key="blockers")
    st.caption(f"Top {min(limit, len(stuck))} of {len(stuck)} items past their stage SLA")
    for n, row in enumerate(stuck.head(limit).itertuples()):
        deal, what, why, risk = st.columns([2, 3, 3, 2])
        with deal:
            deal_link(str(row.deal_id), f"{row.deal_id} · {row.account_name or ''}".strip(" ·"))
        what.write(f"{row.object_type} at **{row.stage}**, waiting for {row.waiting_for}")
        why.write(f"{row.system or '?'}: {row.cause} (overdue {row.overdue_hours:.0f} h)")
        risk.write(money(row.money_at_risk, ctx.filters.currency))
        if n == 0:
            st.session_state["top_blocker_deal"] = str(row.deal_id)


def backlog_forecast(ctx: PageContext, board: KpiBoard) -> None:
    st.subheader("Backlog and cash forecast")
    open_ar = cq.receivables(ctx.url, ctx.key, ctx.settings, ctx.filters.slices)
    forecast = cash_forecast(
        open_ar,
        board.value("backlog"),
        board.value("backlog_burn_months"),
        board.value("dso"),
        ctx.now,
    )
    forecast["amount"] = [ctx.in_view(v) or 0.0 for v in forecast["amount"]]
    if forecast["amount"].sum() == 0:
        st.info("No open receivables and no backlog to forecast.")
        return
    st.plotly_chart(charts.forecast_figure(forecast, ctx.filters.currency), key="forecast")
    st.caption(
        "Open receivables at their due date (overdue ones in this month), plus the backlog "
        "invoiced at the last 90 days' monthly rate and collected DSO days later."
    )


def has_deals(board: KpiBoard) -> bool:
    return any(
        (board.value(k) or 0) > 0 for k in board.values if k.startswith("funnel_count_")
    ) or bool(board.source == "snapshot" and board.values)
