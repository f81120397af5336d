"""Invoice exception rate and posting success rate (within the invoiced->posted SLA)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpis.context import KpiContext
from kpis.facts import Facts
from kpis.slicing import in_window, ratio, slices
from kpis.values import KpiValue
from throughline.config import StageSla


def posting_sla_seconds(invoices: pd.DataFrame, slas: list[StageSla]) -> pd.Series:
    """Per invoice, the invoiced->posted SLA in seconds: the most specific matching rule
    (legal entity before none, then the highest `min_amount` the deal value reaches);
    NaN where no rule applies. Business-day SLAs count as whole days here."""
    rules = [r for r in slas if r.from_stage == "invoiced" and r.to_stage == "posted"]
    rules.sort(key=lambda r: (r.legal_entity is not None, r.min_amount or 0.0))
    seconds = pd.Series(np.nan, index=invoices.index, dtype="float64")
    for rule in rules:  # least specific first, so later (more specific) rules win
        match = pd.Series(True, index=invoices.index)
        if rule.legal_entity is not None:
            match &= invoices["legal_entity"] == rule.legal_entity
        if rule.min_amount is not None:
            match &= invoices["deal_amount_rc"].fillna(0.0) >= rule.min_amount
        seconds[match] = rule.within.timedelta.total_seconds()
    return seconds


def compute_invoicing(facts: Facts, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    invoices = facts.invoices[facts.invoices["issued_at"].notna()]
    invoices = invoices.assign(
        deadline=invoices["issued_at"] + posting_sla_seconds(invoices, ctx.settings.slas)
    )
    for window in ctx.windows:
        issued = invoices[in_window(invoices["issued_at"], ctx.now, window.seconds)]
        for dim, dv, group in slices(issued, ctx.dimensions):
            exceptions = int(group["has_exception"].sum())
            out.append(
                ctx.value(
                    "invoice_exception_rate",
                    window.label,
                    (dim, dv),
                    ratio(exceptions, len(group)),
                    group["id"],
                    numerator=exceptions,
                    denominator=len(group),
                    exception_invoices=group.loc[group["has_exception"], "id"].astype(str).tolist(),
                )
            )
            due = group[group["deadline"].notna() & (group["deadline"] <= ctx.now)]
            on_time = due["posted_at"].notna() & (due["posted_at"] <= due["deadline"])
            out.append(
                ctx.value(
                    "posting_success_rate",
                    window.label,
                    (dim, dv),
                    ratio(int(on_time.sum()), len(due)),
                    due["id"],
                    numerator=int(on_time.sum()),
                    denominator=len(due),
                    late_or_unposted=due.loc[~on_time, "id"].astype(str).tolist(),
                )
            )
    return out
