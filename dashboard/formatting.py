"""How numbers read on the dashboard: money in the chosen currency view, ratios as
percentages, latencies in hours or days."""

from __future__ import annotations

from throughline.config import Settings

DASH = "—"


def convert(value_rc: float | None, settings: Settings, currency: str) -> float | None:
    """A reporting-currency amount in `currency` (the configured rates are the value of one
    unit of each currency in the reporting currency)."""
    if value_rc is None:
        return None
    rate = settings.kpis.fx_rates.get(currency)
    if rate is None:
        return None
    return value_rc / rate


def money(value: float | None, currency: str, compact: bool = False) -> str:
    """`USD 571,380`; `compact` (for a tile, whose width cuts longer text with an
    ellipsis): millions as `USD 2.43 M`."""
    if value is None:
        return DASH
    if compact and abs(value) >= 1_000_000:
        return f"{currency} {value / 1_000_000:,.2f} M"
    return f"{currency} {value:,.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def kpi_text(
    value: float | None, unit: str, settings: Settings, currency: str, compact: bool = False
) -> str:
    """A KPI value as a tile (`compact`) or a table shows it; money KPIs carry the
    reporting currency as unit."""
    if value is None:
        return DASH
    if unit == settings.kpis.reporting_currency:
        return money(convert(value, settings, currency), currency, compact)
    if unit == "seconds":
        return duration(value)
    if unit == "ratio":
        return f"{value * 100:.1f} %"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "months":
        return f"{value:.1f} months"
    return f"{value:,.0f} {unit}"
