"""Activation latency and the deals still waiting for activation, aged."""

from __future__ import annotations

from kpis.context import KpiContext
from kpis.definitions import AGE_BUCKETS
from kpis.facts import Facts
from kpis.slicing import in_window, percentile, slices
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0


def compute_activation(facts: Facts, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    deals = facts.deals
    activated = deals[deals["closed_won_at"].notna() & deals["activated_at"].notna()]
    activated = activated.assign(latency=activated["activated_at"] - activated["closed_won_at"])
    for window in ctx.windows:
        rows = activated[in_window(activated["activated_at"], ctx.now, window.seconds)]
        for dim, dv, group in slices(rows, ctx.dimensions):
            members = group["id"]
            latency = group["latency"]
            p50, p90 = percentile(latency, 0.5), percentile(latency, 0.9)
            out += [
                ctx.value("activation_latency_p50", window.label, (dim, dv), p50, members),
                ctx.value("activation_latency_p90", window.label, (dim, dv), p90, members),
                ctx.value("activation_latency_count", window.label, (dim, dv), len(group), members),
            ]

    won = deals["closed_won_at"].notna() & (deals["closed_won_at"] <= ctx.now)
    not_yet = deals["activated_at"].isna() | (deals["activated_at"] > ctx.now)
    pending = deals[won & not_yet]
    pending = pending.assign(age_days=(ctx.now - pending["closed_won_at"]) / DAY)
    for dim, dv, group in slices(pending, ctx.dimensions):
        s = (dim, dv)
        out += [
            ctx.value("activation_pending_count", POINT_IN_TIME, s, len(group), group["id"]),
            ctx.value(
                "activation_pending_value",
                POINT_IN_TIME,
                s,
                float(group["amount_rc"].sum()),
                group["id"],
            ),
        ]
        for bucket, low, high in AGE_BUCKETS:
            age = group["age_days"]
            aged = group[((age > low) | (low == 0)) & (age <= high)]
            out += [
                ctx.value(
                    f"activation_pending_count_{bucket}", POINT_IN_TIME, s, len(aged), aged["id"]
                ),
                ctx.value(
                    f"activation_pending_value_{bucket}",
                    POINT_IN_TIME,
                    s,
                    float(aged["amount_rc"].sum()),
                    aged["id"],
                ),
            ]
    return out
