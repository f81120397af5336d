"""Sections of the deal page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import cached_queries as cq
from dashboard import charts
from dashboard.data.deal_trace import DealTrace
from dashboard.formatting import DASH, money
from dashboard.sections.context import PageContext
from probes.stuck_work import DEAL_ORDER

QUERY_PARAM = "deal"


def search(ctx: PageContext) -> str | None:
    """The deal to show: from the link that led here, or found by deal, account or
    invoice id."""
    text = st.text_input(
        "Find a deal by deal, account or invoice id",
        key="deal_search",
        placeholder="e.g. OPP-1042, ACC-77 or INV-2031",
    )
    if text.strip():
        found = cq.search(ctx.url, text.strip()).deals
        if not found:
            st.warning(f"No deal, account or invoice has the id {text.strip()!r}.")
        elif len(found) == 1:
            st.query_params[QUERY_PARAM] = found[0].id
        else:
            chosen = st.selectbox(
                f"{len(found)} deals match",
                [d.id for d in found],
                format_func=lambda i: next(
                    f"{d.id} · {d.account_name or ''} · {d.stage}" for d in found if d.id == i
                ),
                key="deal_choice",
            )
            st.query_params[QUERY_PARAM] = chosen
    chosen_id = st.query_params.get(QUERY_PARAM)
    return str(chosen_id) if chosen_id else None


def read(ctx: PageContext, deal_id: str) -> DealTrace | None:
    return cq.deal(ctx.url, ctx.key, ctx.settings, deal_id, ctx.now)


def header(ctx: PageContext, trace: DealTrace) -> None:
    deal = trace.detail.deal
    st.header(f"{deal.id} · {deal.name or deal.account_name or ''}".strip(" ·"))
    stage, value, account, owner = st.columns(4)
    stage.metric("Stage", deal.stage or DASH)
    value.metric(
        "Deal value",
        money(float(deal.amount), deal.currency or "") if deal.amount is not None else DASH,
    )
    account.metric("Account", deal.account_name or DASH)
    owner.metric("Owner", trace.owner or DASH)
    st.caption(
        " · ".join(
            f"{k}: {v}"
            for k, v in (
                ("legal entity", deal.legal_entity),
                ("region", trace.region),
                ("practice", deal.practice),
            )
            if v
        )
    )


def stages(ctx: PageContext, trace: DealTrace) -> None:
    st.subheader("Stages and SLAs")
    rows = [
        {"stage": s, "reached_at": trace.first_reached.get(s)}
        for s in DEAL_ORDER
        if s in trace.first_reached
    ]
    left, right = st.columns([2, 3])
    left.dataframe(pd.DataFrame(rows), hide_index=True, key="deal_stages")
    if trace.sla_marks.empty:
        right.caption("No SLA clock has started for this deal yet.")
    else:
        right.dataframe(trace.sla_marks, hide_index=True, key="deal_slas")
        st.plotly_chart(charts.sla_figure(trace.sla_marks), key="deal_sla_chart")


def timeline(trace: DealTrace) -> None:
    st.subheader("Timeline across the five systems")
    if not trace.detail.events:
        st.caption("No lifecycle events recorded for this deal.")
        return
    st.plotly_chart(charts.timeline_figure(trace.detail.events), key="deal_timeline")


def objects(trace: DealTrace) -> None:
    st.subheader("Invoices")
    if trace.detail.invoices:
        st.dataframe(pd.DataFrame(trace.detail.invoices), hide_index=True, key="deal_invoices")
    else:
        st.caption("No invoices yet.")
    contracts, projects = st.columns(2)
    contracts.markdown("**Contracts**")
    contracts.dataframe(pd.DataFrame(trace.detail.contracts), hide_index=True, key="deal_contracts")
    projects.markdown("**Projects**")
    projects.dataframe(pd.DataFrame(trace.detail.projects), hide_index=True, key="deal_projects")


def sync_steps(trace: DealTrace) -> None:
    st.subheader("Sync steps")
    steps = trace.detail.steps
    if not steps:
        st.caption("No spans recorded for this deal (or they are past span retention).")
    else:
        by_trace: dict[str, list] = {}  # type: ignore[type-arg]
        for step in steps:
            by_trace.setdefault(step.trace_id, []).append(step)
        labels = {
            t: f"{s[0].started_at:%Y-%m-%d %H:%M} · {s[0].flow or s[0].name} · "
            f"{'error' if any(x.status == 'error' for x in s) else 'ok'} · {len(s)} spans"
            for t, s in by_trace.items()
        }
        chosen = st.selectbox(
            "Trace", list(by_trace), format_func=labels.__getitem__, key="deal_trace"
        )
        st.plotly_chart(charts.waterfall_figure(by_trace[chosen]), key="deal_waterfall")
    st.markdown("**Outbox: messages, retries, dead letters and replays**")
    if trace.messages.empty:
        st.caption("No sync messages for this deal.")
        return
    st.dataframe(trace.messages, hide_index=True, key="deal_messages")
    if not trace.attempts.empty:
        st.dataframe(trace.attempts, hide_index=True, key="deal_attempts")
    if not trace.dead_letters.empty:
        st.dataframe(trace.dead_letters, hide_index=True, key="deal_dead_letters")
    if not trace.replays.empty:
        st.dataframe(trace.replays, hide_index=True, key="deal_replays")
