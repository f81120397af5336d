"""Invoice exception rate and posting success rate (within the invoiced->posted SLA)."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.slicing import Array, Rows, in_window, ratio
from kpis.tables import FactTables
from kpis.values import KpiValue
from throughline.config import StageSla

MEMBERS_LISTED = 50
"""Exception and late invoices named in a value's metadata (all are in its members)."""


def posting_sla_seconds(rows: Rows, slas: list[StageSla]) -> Array:
    """Per invoice, the invoiced->posted SLA in seconds: the most specific matching rule
    (legal entity before none, then the highest `min_amount` the deal value reaches);
    NaN where no rule applies. Business-day SLAs count as whole days here."""
    rules = [r for r in slas if r.from_stage == "invoiced" and r.to_stage == "posted"]
    rules.sort(key=lambda r: (r.legal_entity is not None, r.min_amount or 0.0))
    seconds = np.full(len(rows), np.nan)
    entity = rows["legal_entity"]
    deal_amount = np.nan_to_num(np.asarray(rows["deal_amount_rc"], dtype="float64"))
    for rule in rules:  # least specific first, so later (more specific) rules win
        match = np.ones(len(rows), dtype=bool)
        if rule.legal_entity is not None:
            match &= entity == rule.legal_entity
        if rule.min_amount is not None:
            match &= deal_amount >= rule.min_amount
        seconds[match] = rule.within.timedelta.total_seconds()
    return seconds


def compute_invoicing(tables: FactTables, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    invoices = tables.invoices.rows()
    invoices = invoices.where(~np.isnan(invoices["issued_at"].astype("float64")))
    deadline_all = invoices["issued_at"] + posting_sla_seconds(invoices, ctx.settings.slas)
    table_deadline = np.full(len(tables.invoices.columns["id"]), np.nan)
    table_deadline[invoices.positions] = deadline_all
    for window in ctx.windows:
        issued = invoices.where(in_window(invoices["issued_at"], ctx.now, window.seconds))
        for dim, dv, group in issued.slices(ctx.dimensions):
            flagged = group["has_exception"].astype(bool)
            exceptions = int(flagged.sum())
            ids = group.members()
            out.append(
                ctx.value(
                    "invoice_exception_rate",
                    window.label,
                    (dim, dv),
                    ratio(exceptions, len(group)),
                    ids,
                    numerator=exceptions,
                    denominator=len(group),
                    exception_invoices=group.members(flagged).head(MEMBERS_LISTED),
                )
            )
            deadline = table_deadline[group.positions]
            with np.errstate(invalid="ignore"):
                due_mask = deadline <= ctx.now
                posted = group["posted_at"].astype("float64")
                on_time = (posted <= deadline)[due_mask]
            due_ids = group.members(due_mask)
            late = group.where(due_mask).members(~on_time)
            out.append(
                ctx.value(
                    "posting_success_rate",
                    window.label,
                    (dim, dv),
                    ratio(int(on_time.sum()), len(due_ids)),
                    due_ids,
                    numerator=int(on_time.sum()),
                    denominator=len(due_ids),
                    late_or_unposted=late.head(MEMBERS_LISTED),
                )
            )
    return out
