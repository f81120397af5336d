"""Activation latency and the deals still waiting for activation, aged."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.definitions import AGE_BUCKETS
from kpis.slicing import at_or_before, in_window, p50_p90, total
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME

DAY = 86400.0


def compute_activation(tables: FactTables, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    deals = tables.deals.rows()
    won_at, activated_at = deals["closed_won_at"], deals["activated_at"]
    activated = deals.where(~np.isnan(won_at) & ~np.isnan(activated_at))
    for window in ctx.windows:
        rows = activated.where(in_window(activated["activated_at"], ctx.now, window.seconds))
        for dim, dv, group in rows.slices(ctx.dimensions):
            latency = group["activated_at"] - group["closed_won_at"]
            p50, p90 = p50_p90(latency)
            members = group.members()
            out += [
                ctx.value(
                    "activation_latency_p50",
                    window.label,
                    (dim, dv),
                    p50,
                    members,
                ),
                ctx.value(
                    "activation_latency_p90",
                    window.label,
                    (dim, dv),
                    p90,
                    members,
                ),
                ctx.value("activation_latency_count", window.label, (dim, dv), len(group), members),
            ]

    won = at_or_before(won_at, ctx.now)
    not_yet = ~at_or_before(activated_at, ctx.now)
    pending = deals.where(won & not_yet)
    for dim, dv, group in pending.slices(ctx.dimensions):
        s = (dim, dv)
        ids, amount = group.members(), group["amount_rc"]
        out += [
            ctx.value("activation_pending_count", POINT_IN_TIME, s, len(group), ids),
            ctx.value("activation_pending_value", POINT_IN_TIME, s, total(amount), ids),
        ]
        age = (ctx.now - group["closed_won_at"]) / DAY
        for bucket, low, high in AGE_BUCKETS:
            inside = ((age > low) | (low == 0)) & (age <= high)
            out += [
                ctx.value(
                    f"activation_pending_count_{bucket}",
                    POINT_IN_TIME,
                    s,
                    int(inside.sum()),
                    group.members(inside),
                ),
                ctx.value(
                    f"activation_pending_value_{bucket}",
                    POINT_IN_TIME,
                    s,
                    total(amount[inside]),
                    group.members(inside),
                ),
            ]
    return out
