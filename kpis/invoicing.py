"""Invoice exception rate and posting success rate (within the invoiced->posted SLA)."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.slicing import Array, Rows, Slices, in_window, ratio
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
    table_posted = tables.invoices.columns["posted_at"].astype("float64")
    for window in ctx.windows:
        issued = invoices.where(in_window(invoices["issued_at"], ctx.now, window.seconds))
        slices = Slices(issued, ctx.dimensions)
        flagged = slices.entries(issued["has_exception"].astype(bool))
        exceptions = slices.count(flagged).tolist()
        deadline = table_deadline[slices.positions]
        with np.errstate(invalid="ignore"):
            due = deadline <= ctx.now
            on_time = table_posted[slices.positions] <= deadline
        due_counts = slices.count(due).tolist()
        on_time_counts = slices.count(due & on_time).tolist()
        late = due & ~on_time
        for k, (s, count) in enumerate(zip(slices.keys, slices.counts.tolist(), strict=True)):
            out.append(
                ctx.value(
                    "invoice_exception_rate",
                    window.label,
                    s,
                    ratio(exceptions[k], count),
                    slices.members(k),
                    numerator=exceptions[k],
                    denominator=count,
                    exception_invoices=slices.members(k, flagged).head(MEMBERS_LISTED),
                )
            )
            out.append(
                ctx.value(
                    "posting_success_rate",
                    window.label,
                    s,
                    ratio(on_time_counts[k], due_counts[k]),
                    slices.members(k, due),
                    numerator=on_time_counts[k],
                    denominator=due_counts[k],
                    late_or_unposted=slices.members(k, late).head(MEMBERS_LISTED),
                )
            )
    return out
