"""The filters every page shares (window, legal entity, region, practice, currency view),
kept in session state so they hold across pages and reruns."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.data.kpi_readings import SliceFilter
from throughline.config import Settings

EVERY = "All"
KEYS = {
    "window": "filter_window",
    "legal_entity": "filter_legal_entity",
    "region": "filter_region",
    "practice": "filter_practice",
    "currency": "filter_currency",
}
STORED = "filters"


@dataclass(frozen=True)
class DashboardFilters:
    window: str
    slices: SliceFilter
    currency: str


def window_labels(settings: Settings) -> list[str]:
    return [str(w) for w in settings.kpis.windows]


def currency_views(settings: Settings) -> list[str]:
    reporting = settings.kpis.reporting_currency
    return [reporting, *sorted(c for c in settings.kpis.fx_rates if c != reporting)]


def _pick(label: str, options: list[str], key: str, default: str, help_text: str) -> str:
    stored = st.session_state.get(STORED, {}).get(key, default)
    index = options.index(stored) if stored in options else options.index(default)
    return str(st.sidebar.selectbox(label, options, index=index, key=key, help=help_text))


def sidebar_filters(settings: Settings, dimensions: dict[str, list[str]]) -> DashboardFilters:
    """Draw the filters in the sidebar and return what they say."""
    windows = window_labels(settings)
    default_window = "30d" if "30d" in windows else windows[0]
    st.sidebar.subheader("Filters")
    window = _pick(
        "Window",
        windows,
        KEYS["window"],
        default_window,
        "KPIs over the last N days (point-in-time KPIs are as of now)",
    )
    chosen: dict[str, str | None] = {}
    for dimension, label in (
        ("legal_entity", "Legal entity"),
        ("region", "Region"),
        ("practice", "Practice"),
    ):
        value = _pick(label, [EVERY, *dimensions.get(dimension, [])], KEYS[dimension], EVERY, "")
        chosen[dimension] = None if value == EVERY else value
    currency = _pick(
        "Currency view",
        currency_views(settings),
        KEYS["currency"],
        settings.kpis.reporting_currency,
        "Money shown in this currency, converted at the configured rates",
    )
    st.session_state[STORED] = {
        KEYS["window"]: window,
        **{KEYS[d]: v or EVERY for d, v in chosen.items()},
        KEYS["currency"]: currency,
    }
    return DashboardFilters(window, SliceFilter(**chosen), currency)


def current_filters(settings: Settings) -> DashboardFilters:
    """The filters as last drawn (pages read them; the entry point draws them)."""
    stored = st.session_state.get(STORED, {})
    windows = window_labels(settings)
    window = stored.get(KEYS["window"], "30d" if "30d" in windows else windows[0])

    def value(dimension: str) -> str | None:
        v = stored.get(KEYS[dimension], EVERY)
        return None if v == EVERY else str(v)

    return DashboardFilters(
        window,
        SliceFilter(value("legal_entity"), value("region"), value("practice")),
        stored.get(KEYS["currency"], settings.kpis.reporting_currency),
    )
