"""The reads the pages make, cached per database, settings and arguments. Time-dependent
reads take `now` to the minute, so a page re-rendered within the ttl costs no query.
Writes (replays) clear the caches they make stale."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from connectors.approvals import list_approvals
from dashboard.data import audit, deal_trace, dimensions, forecast, funnel, health
from dashboard.data.kpi_readings import KpiBoard, SliceFilter, kpi_board, kpi_history
from dashboard.resources import store_engine
from probes import stuck_work
from store.deal_queries import DealPage, SyncStep, trace_spans
from store.states import ApprovalState, ProbeKind
from throughline.config import Settings

TTL = dt.timedelta(seconds=60)
SHORT_TTL = dt.timedelta(seconds=10)


@st.cache_data(ttl=TTL, show_spinner="Reading the filters' values...")
def dimension_values(url: str) -> dict[str, list[str]]:
    with store_engine(url).connect() as conn:
        return dimensions.dimension_values(conn)


@st.cache_data(ttl=TTL, show_spinner="Reading the KPIs...")
def board(
    url: str, key: str, _settings: Settings, now: dt.datetime, window: str, slices: SliceFilter
) -> KpiBoard:
    return kpi_board(store_engine(url), _settings, now, window, slices)


@st.cache_data(ttl=TTL, show_spinner=False)
def history(
    url: str, kpis: tuple[str, ...], window: str, dimension: str, value: str
) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return kpi_history(conn, list(kpis), window, dimension, value)


@st.cache_data(ttl=TTL, show_spinner="Measuring the days between stages...")
def stage_days(
    url: str, since: dt.datetime, until: dt.datetime, slices: SliceFilter
) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return funnel.stage_days(conn, since, until, slices)


@st.cache_data(ttl=TTL, show_spinner="Finding stuck work...")
def stuck(url: str, key: str, _settings: Settings, now: dt.datetime) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return stuck_work.stuck_work(conn, _settings, now)


@st.cache_data(ttl=TTL, show_spinner="Reading open receivables...")
def receivables(url: str, key: str, _settings: Settings, slices: SliceFilter) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return forecast.open_receivables(conn, _settings, slices)


@st.cache_data(ttl=SHORT_TTL, show_spinner="Reading sync outcomes...")
def sync_matrix(url: str, since: dt.datetime) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return health.sync_matrix(conn, since)


@st.cache_data(ttl=SHORT_TTL, show_spinner=False)
def dead_letters(url: str) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return health.open_dead_letters(conn)


@st.cache_data(ttl=SHORT_TTL, show_spinner=False)
def replays(url: str) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return health.recent_replays(conn)


@st.cache_data(ttl=SHORT_TTL, show_spinner=False)
def failed_traces(url: str, since: dt.datetime) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return health.failed_traces(conn, since)


@st.cache_data(ttl=TTL, show_spinner=False)
def findings(url: str, kinds: tuple[ProbeKind, ...]) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return health.probe_findings(conn, kinds)


@st.cache_data(ttl=TTL, show_spinner=False)
def probes(url: str) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return health.latest_probes(conn)


@st.cache_data(ttl=TTL, show_spinner=False)
def trace(url: str, trace_id: str) -> list[SyncStep]:
    with store_engine(url).connect() as conn:
        return trace_spans(conn, trace_id)


@st.cache_data(ttl=SHORT_TTL, show_spinner="Reading the deal...")
def deal(
    url: str, key: str, _settings: Settings, deal_id: str, now: dt.datetime
) -> deal_trace.DealTrace | None:
    with store_engine(url).connect() as conn:
        return deal_trace.deal_trace(conn, deal_id, _settings, now)


@st.cache_data(ttl=TTL, show_spinner="Searching...")
def search(url: str, text: str) -> DealPage:
    with store_engine(url).connect() as conn:
        return deal_trace.search_deals(conn, text)


@st.cache_data(ttl=SHORT_TTL, show_spinner=False)
def audit_log(url: str) -> pd.DataFrame:
    with store_engine(url).connect() as conn:
        return audit.recent_audit(conn)


@st.cache_data(ttl=SHORT_TTL, show_spinner=False)
def approvals(url: str) -> pd.DataFrame:
    """The open approval checkpoints, the longest waiting first (at most 500)."""
    rows, _total = list_approvals(store_engine(url), ApprovalState.OPEN, limit=500)
    return pd.DataFrame(
        {
            "id": [r.id for r in rows],
            "object_type": [r.object_type for r in rows],
            "object_id": [r.object_id for r in rows],
            "deal_id": [r.deal_id for r in rows],
            "amount": [float(r.amount) for r in rows],
            "currency": [r.currency for r in rows],
            "requested_at": [r.requested_at for r in rows],
            "reason": [r.reason for r in rows],
        }
    )


def forget_outbox_reads() -> None:
    """After a replay or a decision: the dead letters, replays, approvals, matrix and deals
    read before are stale."""
    for cached in (dead_letters, replays, approvals, sync_matrix, deal, audit_log, stuck):
        cached.clear()
