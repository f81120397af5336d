"""Unbilled WIP (aged), billing leakage by cause, time-to-invoice and billable hours."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.definitions import AGE_BUCKETS, age_buckets
from kpis.slicing import Array, Slices, at_or_before, in_window, ratio
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
    slices = Slices(wip, ctx.dimensions)
    amount = slices.entries(wip["amount_rc"]).astype("float64")
    bucket = age_buckets((now - slices.entries(wip["approved_at"])) / DAY)
    inside = [bucket == i for i in range(len(AGE_BUCKETS))]
    values = slices.by_group(bucket, len(AGE_BUCKETS), amount).tolist()
    totals = slices.sum(amount).tolist()
    for k, s in enumerate(slices.keys):
        out.append(ctx.value("unbilled_wip", POINT_IN_TIME, s, totals[k], slices.members(k)))
        for i, (name, _, _) in enumerate(AGE_BUCKETS):
            out.append(
                ctx.value(
                    f"unbilled_wip_{name}",
                    POINT_IN_TIME,
                    s,
                    values[k][i],
                    slices.members(k, inside[i]),
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
        slices = Slices(approved, ctx.dimensions)
        by_overdue = leak_uninvoiced[slices.positions]
        by_under = leak_under[slices.positions]
        leaking = (by_overdue > 0) | (by_under > 0)
        amounts = slices.sum(slices.entries(approved["amount_rc"])).tolist()
        overdue_sums = slices.sum(by_overdue).tolist()
        under_sums = slices.sum(by_under).tolist()
        for k, s in enumerate(slices.keys):
            members = slices.members(k, leaking)
            value = round(amounts[k], 2)
            lost = round(overdue_sums[k], 2) + round(under_sums[k], 2)
            out += [
                ctx.value("billing_leakage", w, s, lost, members, billable_value=value),
                ctx.value("billing_leakage_uninvoiced", w, s, overdue_sums[k], members),
                ctx.value("billing_leakage_underbilled", w, s, under_sums[k], members),
                ctx.value(
                    "billing_leakage_share",
                    w,
                    s,
                    ratio(lost, value),
                    members,
                    leakage=lost,
                    billable_value=value,
                ),
            ]

        done = invoiced.where(in_window(invoiced["invoiced_at"], now, window.seconds))
        slices = Slices(done, ctx.dimensions)
        days = (done["invoiced_at"] - done["approved_at"]) / DAY
        p50, p90 = slices.percentiles(days, (0.5, 0.9))
        for k, s in enumerate(slices.keys):
            members = slices.members(k)
            out += [
                ctx.value("time_to_invoice_p50", w, s, p50[k], members),
                ctx.value("time_to_invoice_p90", w, s, p90[k], members),
            ]

        worked = hours.where(in_window(hours["approved_at"], now, window.seconds))
        slices = Slices(worked, ctx.dimensions)
        quantity = slices.sum(slices.entries(worked["quantity"])).tolist()
        for k, s in enumerate(slices.keys):
            out.append(ctx.value("billable_hours", w, s, quantity[k], slices.members(k)))
    return out
