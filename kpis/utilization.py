"""Utilization: billable hours approved / capacity hours of the consultants, per window,
by the consultant's practice and legal entity (DESIGN.md section 1).

Hours are the quantity of time items (`billable_items.kind = 'time'`, not rejected)
approved in the window, joined to `consultants` by `billable_items.consultant` (the PSA
user id). Capacity is each consultant's weekly capacity x the days of the window they
existed (since `consultants.created_at`) / 7. Hours of a consultant the store does not
know have no capacity to go with and are left out (`meta.hours_without_consultant`)."""

from __future__ import annotations

import numpy as np

from kpis.context import KpiContext
from kpis.frames import Columns
from kpis.slicing import Table, in_window, ratio, total
from kpis.tables import FactTables
from kpis.values import KpiValue

DAY = 86400.0
WEEK = 7 * DAY
UTILIZATION_DIMENSIONS: tuple[str, ...] = ("legal_entity", "practice")


def compute_utilization(
    tables: FactTables, consultants: Columns | None, ctx: KpiContext
) -> list[KpiValue]:
    out: list[KpiValue] = []
    if consultants is None:
        return out
    ids = np.asarray([str(i) for i in consultants["id"]], dtype=object)
    table = Table.factorized({**consultants, "id": ids}, UTILIZATION_DIMENSIONS)
    weekly = np.nan_to_num(np.asarray(consultants["weekly_capacity_hours"], dtype="float64"))
    created = np.nan_to_num(np.asarray(consultants["created_at"], dtype="float64"), nan=-np.inf)

    items = tables.items.rows()
    worked = items.where(items["hours"].astype(bool) & ~items["rejected"].astype(bool))
    # consultant ids are coded in the facts' vocabulary: code -> consultant row
    vocabulary = tables.vocabulary
    row_of = np.full(len(vocabulary.labels("consultant")) + 1, -1, dtype=np.intp)
    for row, person in enumerate(ids.tolist()):
        code = vocabulary.code("consultant", person)
        if code >= 0:
            row_of[code] = row
    who = row_of[np.asarray(worked["consultant_key"], dtype=np.intp)]
    quantity = np.nan_to_num(worked["quantity"].astype("float64"))
    for window in ctx.windows:
        start = ctx.now - window.seconds
        inside = in_window(worked["approved_at"], ctx.now, window.seconds)
        known = inside & (who >= 0)
        hours = np.bincount(who[known], weights=quantity[known], minlength=len(ids))
        existed = np.clip(ctx.now - np.maximum(created, start), 0.0, window.seconds)
        capacity = weekly * existed / WEEK
        unmatched = round(total(quantity[inside & (who < 0)]), 2)
        for dim, dv, group in table.rows().slices(UTILIZATION_DIMENSIONS):
            worked_hours = total(hours[group.positions])
            capacity_hours = total(capacity[group.positions])
            extra = {"hours_without_consultant": unmatched} if dim == "all" else {}
            out.append(
                ctx.value(
                    "utilization",
                    window.label,
                    (dim, dv),
                    ratio(worked_hours, capacity_hours) if capacity_hours > 0 else None,
                    group.members((capacity[group.positions] > 0) | (hours[group.positions] > 0)),
                    billable_hours=round(worked_hours, 2),
                    capacity_hours=round(capacity_hours, 2),
                    **extra,
                )
            )
    return out
