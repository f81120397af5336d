"""DSO (with open AR) and cash conversion: approval to cash per item, won to cash per deal."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.slicing import at_or_before, in_window, percentile, ratio, total
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0
DSO_DAYS = 90.0


def compute_cash(tables: FactTables, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    invoices = tables.invoices.rows()
    live = invoices.where(
        at_or_before(invoices["issued_at"], now) & ~invoices["credited"].astype(bool)
    )
    open_rc = np.where(at_or_before(live["paid_at"], now), 0.0, live["unpaid_rc"].astype("float64"))
    recent_rc = np.where(
        in_window(live["issued_at"], now, DSO_DAYS * DAY), live["amount_rc"].astype("float64"), 0.0
    )
    size = len(invoices.table.columns["id"])
    open_all, recent_all = np.zeros(size), np.zeros(size)
    open_all[live.positions] = open_rc
    recent_all[live.positions] = recent_rc
    for dim, dv, group in live.slices(ctx.dimensions):
        opened = open_all[group.positions]
        open_ar = round(total(opened), 2)
        revenue = round(total(recent_all[group.positions]), 2)
        open_ids = group.members(opened > 0)
        share = ratio(open_ar, revenue)
        out += [
            ctx.value("open_ar", POINT_IN_TIME, (dim, dv), open_ar, open_ids),
            ctx.value(
                "dso",
                POINT_IN_TIME,
                (dim, dv),
                None if share is None else share * DSO_DAYS,
                open_ids,
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
        for dim, dv, group in cashed.slices(ctx.dimensions):
            days = (group["paid_at"] - group["approved_at"]) / DAY
            out += [
                ctx.value(
                    "cash_conversion_p50", w, (dim, dv), percentile(days, 0.5), group.members()
                ),
                ctx.value(
                    "cash_conversion_p90", w, (dim, dv), percentile(days, 0.9), group.members()
                ),
            ]
        first = deals.where(in_window(deals["first_cash_at"], now, window.seconds))
        for dim, dv, group in first.slices(ctx.dimensions):
            days = (group["first_cash_at"] - group["closed_won_at"]) / DAY
            out += [
                ctx.value(
                    "deal_cash_conversion_p50", w, (dim, dv), percentile(days, 0.5), group.members()
                ),
                ctx.value(
                    "deal_cash_conversion_p90", w, (dim, dv), percentile(days, 0.9), group.members()
                ),
            ]
    return out
