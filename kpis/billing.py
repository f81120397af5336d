"""Unbilled WIP (aged), billing leakage by cause, time-to-invoice and billable hours."""

from __future__ import annotations

import pandas as pd

from kpis.context import KpiContext
from kpis.definitions import AGE_BUCKETS
from kpis.facts import Facts
from kpis.slicing import in_window, percentile, ratio, slices
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0
TIME_KINDS = ("time",)
"""billable_items.kind values that are hours (the rest are milestones and fees)."""


def _uninvoiced_at(items: pd.DataFrame, now: float) -> pd.Series:
    return items["invoiced_at"].isna() | (items["invoiced_at"] > now)


def compute_billing(facts: Facts, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    billable = facts.items[
        facts.items["approved_at"].notna() & (facts.items["stage"] != "rejected")
    ]

    wip = billable[(billable["approved_at"] <= now) & _uninvoiced_at(billable, now)]
    wip = wip.assign(age_days=(now - wip["approved_at"]) / DAY)
    for dim, dv, group in slices(wip, ctx.dimensions):
        s = (dim, dv)
        out.append(
            ctx.value(
                "unbilled_wip", POINT_IN_TIME, s, float(group["amount_rc"].sum()), group["id"]
            )
        )
        for bucket, low, high in AGE_BUCKETS:
            age = group["age_days"]
            aged = group[((age > low) | (low == 0)) & (age <= high)]
            out.append(
                ctx.value(
                    f"unbilled_wip_{bucket}",
                    POINT_IN_TIME,
                    s,
                    float(aged["amount_rc"].sum()),
                    aged["id"],
                )
            )

    allowance = (
        ctx.settings.kpis.billing_cycle.timedelta + ctx.settings.kpis.leakage_grace.timedelta
    ).total_seconds()
    invoiced = billable[billable["invoiced_at"].notna() & (billable["invoiced_at"] <= now)]
    invoiced = invoiced.assign(days=(invoiced["invoiced_at"] - invoiced["approved_at"]) / DAY)
    hours = facts.items[facts.items["kind"].isin(TIME_KINDS) & (facts.items["stage"] != "rejected")]
    for window in ctx.windows:
        w = window.label
        approved = billable[in_window(billable["approved_at"], now, window.seconds)]
        overdue = _uninvoiced_at(approved, now) & (approved["approved_at"] + allowance < now)
        underbilled = approved["underbilled_rc"].where(~_uninvoiced_at(approved, now), 0.0)
        approved = approved.assign(
            leak_uninvoiced=approved["amount_rc"].where(overdue, 0.0),
            leak_under=underbilled.fillna(0.0),
        )
        for dim, dv, group in slices(approved, ctx.dimensions):
            s = (dim, dv)
            uninvoiced = float(group["leak_uninvoiced"].sum())
            under = float(group["leak_under"].sum())
            leaking = group[(group["leak_uninvoiced"] > 0) | (group["leak_under"] > 0)]["id"]
            billable_value = float(group["amount_rc"].sum())
            total = round(uninvoiced, 2) + round(under, 2)
            out += [
                ctx.value(
                    "billing_leakage", w, s, total, leaking, billable_value=round(billable_value, 2)
                ),
                ctx.value("billing_leakage_uninvoiced", w, s, uninvoiced, leaking),
                ctx.value("billing_leakage_underbilled", w, s, under, leaking),
                ctx.value(
                    "billing_leakage_share",
                    w,
                    s,
                    ratio(total, round(billable_value, 2)),
                    leaking,
                    leakage=total,
                    billable_value=round(billable_value, 2),
                ),
            ]

        done = invoiced[in_window(invoiced["invoiced_at"], now, window.seconds)]
        for dim, dv, group in slices(done, ctx.dimensions):
            out += [
                ctx.value(
                    "time_to_invoice_p50", w, (dim, dv), percentile(group["days"], 0.5), group["id"]
                ),
                ctx.value(
                    "time_to_invoice_p90", w, (dim, dv), percentile(group["days"], 0.9), group["id"]
                ),
            ]

        worked = hours[in_window(hours["approved_at"], now, window.seconds)]
        for dim, dv, group in slices(worked, ctx.dimensions):
            out.append(
                ctx.value(
                    "billable_hours",
                    w,
                    (dim, dv),
                    float(group["quantity"].sum()),
                    group["id"],
                    capacity_hours=None,
                    note="utilization needs consultant capacity, which the store does not hold",
                )
            )
    return out
