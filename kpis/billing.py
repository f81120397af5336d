"""Unbilled WIP (aged), billing leakage by cause, time-to-invoice and billable hours."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.definitions import AGE_BUCKETS
from kpis.slicing import Array, at_or_before, in_window, p50_p90, ratio, total
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0


def compute_billing(tables: FactTables, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    items = tables.items.rows()
    billable = items.where(
        ~np.isnan(items["approved_at"].astype("float64")) & ~items["rejected"].astype(bool)
    )
    uninvoiced: Array = ~at_or_before(billable["invoiced_at"], now)

    wip = billable.where(at_or_before(billable["approved_at"], now) & uninvoiced)
    for dim, dv, group in wip.slices(ctx.dimensions):
        s = (dim, dv)
        ids, amount = group.members(), group["amount_rc"]
        out.append(ctx.value("unbilled_wip", POINT_IN_TIME, s, total(amount), ids))
        age = (now - group["approved_at"]) / DAY
        for bucket, low, high in AGE_BUCKETS:
            inside = ((age > low) | (low == 0)) & (age <= high)
            out.append(
                ctx.value(
                    f"unbilled_wip_{bucket}",
                    POINT_IN_TIME,
                    s,
                    total(amount[inside]),
                    group.members(inside),
                )
            )

    allowance = (
        ctx.settings.kpis.billing_cycle.timedelta + ctx.settings.kpis.leakage_grace.timedelta
    ).total_seconds()
    # Per billable item, what leaked: uninvoiced past cycle + grace, or under-billed.
    leak_uninvoiced = np.full(len(items.table.columns["id"]), 0.0)
    leak_under = np.full(len(leak_uninvoiced), 0.0)
    overdue = uninvoiced & (billable["approved_at"] + allowance < now)
    leak_uninvoiced[billable.positions] = np.where(overdue, billable["amount_rc"], 0.0)
    leak_under[billable.positions] = np.where(
        uninvoiced, 0.0, np.nan_to_num(billable["underbilled_rc"].astype("float64"))
    )
    invoiced = billable.where(~uninvoiced)
    hours = items.where(items["hours"].astype(bool) & ~items["rejected"].astype(bool))
    for window in ctx.windows:
        w = window.label
        approved = billable.where(in_window(billable["approved_at"], now, window.seconds))
        for dim, dv, group in approved.slices(ctx.dimensions):
            s = (dim, dv)
            by_overdue = leak_uninvoiced[group.positions]
            by_under = leak_under[group.positions]
            leaking = group.members((by_overdue > 0) | (by_under > 0))
            value = round(total(group["amount_rc"]), 2)
            lost = round(total(by_overdue), 2) + round(total(by_under), 2)
            out += [
                ctx.value("billing_leakage", w, s, lost, leaking, billable_value=value),
                ctx.value("billing_leakage_uninvoiced", w, s, total(by_overdue), leaking),
                ctx.value("billing_leakage_underbilled", w, s, total(by_under), leaking),
                ctx.value(
                    "billing_leakage_share",
                    w,
                    s,
                    ratio(lost, value),
                    leaking,
                    leakage=lost,
                    billable_value=value,
                ),
            ]

        done = invoiced.where(in_window(invoiced["invoiced_at"], now, window.seconds))
        for dim, dv, group in done.slices(ctx.dimensions):
            days = (group["invoiced_at"] - group["approved_at"]) / DAY
            p50, p90 = p50_p90(days)
            out += [
                ctx.value("time_to_invoice_p50", w, (dim, dv), p50, group.members()),
                ctx.value("time_to_invoice_p90", w, (dim, dv), p90, group.members()),
            ]

        worked = hours.where(in_window(hours["approved_at"], now, window.seconds))
        for dim, dv, group in worked.slices(ctx.dimensions):
            out.append(
                ctx.value(
                    "billable_hours",
                    w,
                    (dim, dv),
                    total(group["quantity"]),
                    group.members(),
                )
            )
    return out
