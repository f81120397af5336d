"""DSO (with open AR) and cash conversion: approval to cash per item, won to cash per deal."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.parts import Parts, combine, part, put, slices_of
from kpis.slicing import NO_MEMBERS, Rows, Slices, at_or_before, in_window, ratio
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0
DSO_DAYS = 90.0


def open_ar_parts(invoices: Rows, now: float, dimensions: tuple[str, ...]) -> Parts:
    """Open AR and the revenue of the last 90 days, as parts, over the invoice rows given."""
    parts: Parts = {}
    live = invoices.where(
        at_or_before(invoices["issued_at"], now) & ~invoices["credited"].astype(bool)
    )
    open_rc = np.where(at_or_before(live["paid_at"], now), 0.0, live["unpaid_rc"].astype("float64"))
    recent_rc = np.where(
        in_window(live["issued_at"], now, DSO_DAYS * DAY), live["amount_rc"].astype("float64"), 0.0
    )
    slices = Slices(live, dimensions)
    opened = slices.entries(open_rc)
    is_open = opened > 0
    open_sums = slices.sum(opened).tolist()
    recent_sums = slices.sum(slices.entries(recent_rc)).tolist()
    for k, ((dim, dv), rows) in enumerate(zip(slices.keys, slices.counts.tolist(), strict=True)):
        members = slices.members(k, is_open)
        put(parts, ("open_ar", dim, dv), open_sums[k], rows, members, "invoices")
        put(parts, ("revenue_90d", dim, dv), recent_sums[k], rows, NO_MEMBERS, "invoices")
    return parts


def compute_cash(
    tables: FactTables, ctx: KpiContext, settled: Parts | None = None
) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    parts = combine(settled, open_ar_parts(tables.invoices.rows(), now, ctx.dimensions))
    for dim, dv in slices_of(parts, "open_ar"):
        p = part(parts, "open_ar", dim, dv)
        open_ar = round(p.total, 2) + 0.0
        revenue = round(part(parts, "revenue_90d", dim, dv).total, 2) + 0.0
        share = ratio(open_ar, revenue)
        out += [
            ctx.value("open_ar", POINT_IN_TIME, (dim, dv), open_ar, p.members),
            ctx.value(
                "dso",
                POINT_IN_TIME,
                (dim, dv),
                None if share is None else share * DSO_DAYS,
                p.members,
                open_ar=open_ar,
                revenue_90d=revenue,
            ),
        ]

    items = tables.items.rows()
    items = items.where(
        ~np.isnan(items["approved_at"].astype("float64"))
        & ~np.isnan(items["paid_at"].astype("float64"))
    )
    deals = tables.deals.rows()
    deals = deals.where(
        ~np.isnan(deals["closed_won_at"].astype("float64"))
        & ~np.isnan(deals["first_cash_at"].astype("float64"))
    )
    for window in ctx.windows:
        w = window.label
        cashed = items.where(in_window(items["paid_at"], now, window.seconds))
        slices = Slices(cashed, ctx.dimensions)
        days = (cashed["paid_at"] - cashed["approved_at"]) / DAY
        p50, p90 = slices.percentiles(days, (0.5, 0.9))
        for k, s in enumerate(slices.keys):
            members = slices.members(k)
            out += [
                ctx.value("cash_conversion_p50", w, s, p50[k], members),
                ctx.value("cash_conversion_p90", w, s, p90[k], members),
            ]
        first = deals.where(in_window(deals["first_cash_at"], now, window.seconds))
        slices = Slices(first, ctx.dimensions)
        days = (first["first_cash_at"] - first["closed_won_at"]) / DAY
        p50, p90 = slices.percentiles(days, (0.5, 0.9))
        for k, s in enumerate(slices.keys):
            members = slices.members(k)
            out += [
                ctx.value("deal_cash_conversion_p50", w, s, p50[k], members),
                ctx.value("deal_cash_conversion_p90", w, s, p90[k], members),
            ]
    return out
