"""DSO (with open AR) and cash conversion: approval to cash per item, won to cash per deal."""

from __future__ import annotations

from kpis.context import KpiContext
from kpis.facts import Facts
from kpis.slicing import in_window, percentile, ratio, slices
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0
DSO_DAYS = 90.0


def compute_cash(facts: Facts, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    inv = facts.invoices
    live = inv[inv["issued_at"].notna() & (inv["issued_at"] <= now) & ~inv["credited"]]
    paid_by_now = live["paid_at"].notna() & (live["paid_at"] <= now)
    live = live.assign(
        open_rc=live["unpaid_rc"].where(~paid_by_now, 0.0),
        recent_rc=live["amount_rc"].where(in_window(live["issued_at"], now, DSO_DAYS * DAY), 0.0),
    )
    for dim, dv, group in slices(live, ctx.dimensions):
        open_ar = round(float(group["open_rc"].sum()), 2)
        revenue = round(float(group["recent_rc"].sum()), 2)
        open_ids = group.loc[group["open_rc"] > 0, "id"]
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

    items = facts.items[facts.items["approved_at"].notna() & facts.items["paid_at"].notna()]
    items = items.assign(days=(items["paid_at"] - items["approved_at"]) / DAY)
    deals = facts.deals[facts.deals["closed_won_at"].notna() & facts.deals["first_cash_at"].notna()]
    deals = deals.assign(days=(deals["first_cash_at"] - deals["closed_won_at"]) / DAY)
    for window in ctx.windows:
        w = window.label
        cashed = items[in_window(items["paid_at"], now, window.seconds)]
        for dim, dv, group in slices(cashed, ctx.dimensions):
            out += [
                ctx.value(
                    "cash_conversion_p50", w, (dim, dv), percentile(group["days"], 0.5), group["id"]
                ),
                ctx.value(
                    "cash_conversion_p90", w, (dim, dv), percentile(group["days"], 0.9), group["id"]
                ),
            ]
        first = deals[in_window(deals["first_cash_at"], now, window.seconds)]
        for dim, dv, group in slices(first, ctx.dimensions):
            out += [
                ctx.value(
                    "deal_cash_conversion_p50",
                    w,
                    (dim, dv),
                    percentile(group["days"], 0.5),
                    group["id"],
                ),
                ctx.value(
                    "deal_cash_conversion_p90",
                    w,
                    (dim, dv),
                    percentile(group["days"], 0.9),
                    group["id"],
                ),
            ]
    return out
