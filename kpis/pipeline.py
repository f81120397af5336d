"""The funnel (deals at each stage) and the backlog (contracted, not yet invoiced).

Both are sums over deals, computed as parts (kpis.parts) so that the parts of settled
deals can be kept between refreshes and only the rest recomputed."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kpis.context import KpiContext
from kpis.parts import Parts, combine, part, put, slices_of
from kpis.slicing import NO_MEMBERS, Rows, Slices, at_or_before, in_window, ratio, zero_nan
from kpis.tables import FactTables
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME
from store.states import DealStage

DAY = 86400.0


def _per_deal(
    tables: FactTables, values: npt.NDArray[np.float64], invoices: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """Sum of a per-invoice value (over the invoice rows `invoices`) by deal, aligned with
    the deal table."""
    deal = tables.invoice_deal[invoices]
    found = deal >= 0
    size = len(tables.deals.columns["id"])
    sums = np.bincount(deal[found], weights=zero_nan(values[invoices][found]), minlength=size)
    return np.asarray(sums, dtype=np.float64)


def pipeline_parts(
    tables: FactTables,
    deals: Rows,
    invoices: npt.NDArray[np.intp],
    now: float,
    dimensions: tuple[str, ...],
) -> Parts:
    """Funnel and backlog parts of the deal rows `deals`, whose invoices are the invoice
    rows `invoices` of the same tables."""
    parts: Parts = {}
    staged = deals.where(deals["staged"].astype(bool))
    slices = Slices(staged, dimensions)
    # per entry, the index of its deal stage in DealStage (-1: a stage not listed there)
    codes = np.asarray(slices.entries(staged["stage_code"]), dtype=np.intp)
    listed = [tables.vocabulary.code("stage", s.value) for s in DealStage]
    index = np.full(max([*listed, int(codes.max(initial=-1))]) + 1, -1, dtype=np.intp)
    for i, code in enumerate(listed):
        if code >= 0:
            index[code] = i
    stage = index[codes]
    amount = slices.entries(staged["amount_rc"]).astype("float64")
    counts = slices.by_group(stage, len(DealStage)).astype(np.intp).tolist()
    sums = slices.by_group(stage, len(DealStage), amount).tolist()
    at = [stage == i for i in range(len(DealStage))]
    for k, ((dim, dv), rows) in enumerate(zip(slices.keys, slices.counts.tolist(), strict=True)):
        put(parts, ("funnel", dim, dv), 0.0, rows, NO_MEMBERS, "deals")
        for i, s in enumerate(DealStage):
            if counts[k][i]:
                key = (f"funnel:{s.value}", dim, dv)
                put(parts, key, sums[k][i], counts[k][i], slices.members(k, at[i]), "deals")

    inv = tables.invoices.columns
    issued = inv["issued_at"].astype("float64")
    billed = at_or_before(issued, now) & ~inv["credited"].astype(bool)
    amount_rc = inv["amount_rc"].astype("float64")
    invoiced = _per_deal(tables, np.where(billed, amount_rc, 0.0), invoices)
    recent = _per_deal(
        tables, np.where(billed & in_window(issued, now, 90 * DAY), amount_rc, 0.0), invoices
    )
    contracted = tables.deals.columns["contracted_rc"].astype("float64")
    # a cancelled contract will not be invoiced further: none of it is backlog
    backlog = np.where(
        tables.deals.columns["cancelled"].astype(bool),
        0.0,
        np.clip(contracted - invoiced, 0.0, None),
    )
    contracted_rows = deals.where(deals["has_contract"].astype(bool))
    slices = Slices(contracted_rows, dimensions)
    left = backlog[slices.positions]
    positive = left > 0
    left_sums = slices.sum(left).tolist()
    recent_sums = slices.sum(recent[slices.positions]).tolist()
    for k, ((dim, dv), rows) in enumerate(zip(slices.keys, slices.counts.tolist(), strict=True)):
        members = slices.members(k, positive)
        put(parts, ("backlog", dim, dv), left_sums[k], rows, members, "deals")
        put(parts, ("backlog_recent", dim, dv), recent_sums[k], rows, NO_MEMBERS, "deals")
    return parts


def compute_pipeline(
    tables: FactTables, ctx: KpiContext, settled: Parts | None = None
) -> list[KpiValue]:
    """The funnel and backlog values over `tables` plus the `settled` parts kept from
    deals that are not in `tables`."""
    rows = tables.deals.rows()
    every_invoice = np.arange(len(tables.invoices.columns["id"]), dtype=np.intp)
    parts = combine(settled, pipeline_parts(tables, rows, every_invoice, ctx.now, ctx.dimensions))
    out: list[KpiValue] = []
    for dim, dv in slices_of(parts, "funnel"):
        for name in DealStage:
            p = part(parts, f"funnel:{name.value}", dim, dv)
            out += [
                ctx.value(
                    f"funnel_count_{name.value}", POINT_IN_TIME, (dim, dv), p.rows, p.members
                ),
                ctx.value(
                    f"funnel_value_{name.value}", POINT_IN_TIME, (dim, dv), p.total, p.members
                ),
            ]
    for dim, dv in slices_of(parts, "backlog"):
        p = part(parts, "backlog", dim, dv)
        value = round(p.total, 2) + 0.0
        monthly = round(part(parts, "backlog_recent", dim, dv).total, 2) / 3.0
        out += [
            ctx.value("backlog", POINT_IN_TIME, (dim, dv), value, p.members),
            ctx.value(
                "backlog_burn_months",
                POINT_IN_TIME,
                (dim, dv),
                ratio(value, monthly),
                p.members,
                monthly_invoicing=round(monthly, 2),
            ),
        ]
    return out
