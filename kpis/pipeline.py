"""The funnel (deals at each stage) and the backlog (contracted, not yet invoiced)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from kpis.context import KpiContext
from kpis.slicing import at_or_before, in_window, ratio, total
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME
from store.states import DealStage

DAY = 86400.0


def _per_deal(tables: FactTables, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sum of a per-invoice value by deal, aligned with the deal table."""
    deal = tables.invoice_deal
    found = deal >= 0
    size = len(tables.deals.columns["id"])
    sums = np.bincount(deal[found], weights=np.nan_to_num(values[found]), minlength=size)
    return np.asarray(sums, dtype=np.float64)


def compute_pipeline(tables: FactTables, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    deals = tables.deals.rows()
    staged = deals.where(pd.notna(deals["stage"]))
    for dim, dv, group in staged.slices(ctx.dimensions):
        stage, amount = group["stage_code"], group["amount_rc"]
        for name in DealStage:
            at = stage == tables.vocabulary.code("stage", name.value)
            out += [
                ctx.value(
                    f"funnel_count_{name.value}",
                    POINT_IN_TIME,
                    (dim, dv),
                    int(at.sum()),
                    group.members(at),
                ),
                ctx.value(
                    f"funnel_value_{name.value}",
                    POINT_IN_TIME,
                    (dim, dv),
                    total(amount[at]),
                    group.members(at),
                ),
            ]

    inv = tables.invoices.columns
    issued = inv["issued_at"].astype("float64")
    billed = at_or_before(issued, now) & ~inv["credited"].astype(bool)
    amount = inv["amount_rc"].astype("float64")
    invoiced = _per_deal(tables, np.where(billed, amount, 0.0))
    recent = _per_deal(tables, np.where(billed & in_window(issued, now, 90 * DAY), amount, 0.0))
    contracted = tables.deals.columns["contracted_rc"].astype("float64")
    backlog = np.clip(contracted - invoiced, 0.0, None)
    for dim, dv, group in deals.where(deals["has_contract"].astype(bool)).slices(ctx.dimensions):
        left = backlog[group.positions]
        value = round(total(left), 2)
        monthly = round(total(recent[group.positions]), 2) / 3.0
        members = group.members(left > 0)
        out += [
            ctx.value("backlog", POINT_IN_TIME, (dim, dv), value, members),
            ctx.value(
                "backlog_burn_months",
                POINT_IN_TIME,
                (dim, dv),
                ratio(value, monthly),
                members,
                monthly_invoicing=round(monthly, 2),
            ),
        ]
    return out
