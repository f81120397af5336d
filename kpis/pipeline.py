"""The funnel (deals at each stage) and the backlog (contracted, not yet invoiced).

Both are sums over deals, computed as parts (kpis.parts) so that the parts of settled
deals can be kept between refreshes and only the rest recomputed."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from kpis.context import KpiContext
from kpis.parts import Parts, combine, part, put, slices_of
from kpis.slicing import NO_MEMBERS, Rows, at_or_before, in_window, ratio, total
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
    sums = np.bincount(deal[found], weights=np.nan_to_num(values[invoices][found]), minlength=size)
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
    codes = [(s.value, tables.vocabulary.code("stage", s.value)) for s in DealStage]
    for dim, dv, group in staged.slices(dimensions):
        stage, amount = group["stage_code"], group["amount_rc"]
        put(parts, ("funnel", dim, dv), 0.0, len(group), NO_MEMBERS, "deals")
        for name, code in codes:
            at = stage == code
            count = int(at.sum())
            if count:
                put(
                    parts,
                    (f"funnel:{name}", dim, dv),
                    total(amount[at]),
                    count,
                    group.members(at),
                    "deals",
                )

    inv = tables.invoices.columns
    issued = inv["issued_at"].astype("float64")
    billed = at_or_before(issued, now) & ~inv["credited"].astype(bool)
    amount_rc = inv["amount_rc"].astype("float64")
    invoiced = _per_deal(tables, np.where(billed, amount_rc, 0.0), invoices)
    recent = _per_deal(
        tables, np.where(billed & in_window(issued, now, 90 * DAY), amount_rc, 0.0), invoices
    )
    contracted = tables.deals.columns["contracted_rc"].astype("float64")
    backlog = np.clip(contracted - invoiced, 0.0, None)
    for dim, dv, group in deals.where(deals["has_contract"].astype(bool)).slices(dimensions):
        left = backlog[group.positions]
        put(parts, ("backlog", dim, dv), total(left), len(group), group.members(left > 0), "deals")
        put(
            parts,
            ("backlog_recent", dim, dv),
            total(recent[group.positions]),
            len(group),
            NO_MEMBERS,
            "deals",
        )
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
