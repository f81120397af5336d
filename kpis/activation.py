"""Activation latency and the deals still waiting for activation, aged."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.definitions import AGE_BUCKETS, age_buckets
from kpis.slicing import Slices, at_or_before, in_window
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
        slices = Slices(rows, ctx.dimensions)
        latency = rows["activated_at"] - rows["closed_won_at"]
        p50, p90 = slices.percentiles(latency, (0.5, 0.9))
        for k, (s, count) in enumerate(zip(slices.keys, slices.counts.tolist(), strict=True)):
            members = slices.members(k)
            out += [
                ctx.value("activation_latency_p50", window.label, s, p50[k], members),
                ctx.value("activation_latency_p90", window.label, s, p90[k], members),
                ctx.value("activation_latency_count", window.label, s, count, members),
            ]

    won = at_or_before(won_at, ctx.now)
    not_yet = ~at_or_before(activated_at, ctx.now)
    # a deal whose contract was cancelled waits for nothing
    pending = deals.where(won & not_yet & ~deals["cancelled"].astype(bool))
    slices = Slices(pending, ctx.dimensions)
    amount = slices.entries(pending["amount_rc"]).astype("float64")
    bucket = age_buckets((ctx.now - slices.entries(pending["closed_won_at"])) / DAY)
    inside = [bucket == i for i in range(len(AGE_BUCKETS))]
    counts = slices.by_group(bucket, len(AGE_BUCKETS)).astype(np.intp).tolist()
    values = slices.by_group(bucket, len(AGE_BUCKETS), amount).tolist()
    totals = slices.sum(amount).tolist()
    for k, (s, count) in enumerate(zip(slices.keys, slices.counts.tolist(), strict=True)):
        ids = slices.members(k)
        out += [
            ctx.value("activation_pending_count", POINT_IN_TIME, s, count, ids),
            ctx.value("activation_pending_value", POINT_IN_TIME, s, totals[k], ids),
        ]
        for i, (name, _, _) in enumerate(AGE_BUCKETS):
            members = slices.members(k, inside[i])
            out += [
                ctx.value(
                    f"activation_pending_count_{name}", POINT_IN_TIME, s, counts[k][i], members
                ),
                ctx.value(
                    f"activation_pending_value_{name}", POINT_IN_TIME, s, values[k][i], members
                ),
            ]
    return out
