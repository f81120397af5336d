"""Approved billable time and milestones (PSA) against charges and invoice lines:
leakage."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from probes.recon_common import (
    Grace,
    Result,
    approved_items,
    equals,
    findings,
    floats,
    member,
    ne,
    past_grace,
    per_project,
    pick,
    positions,
    positions_many,
    summary,
    take_floats,
    with_project,
)


def billable_vs_billed(
    time: pd.DataFrame,
    milestones: pd.DataFrame,
    projects: pd.DataFrame,
    charges: pd.DataFrame,
    schedules: pd.DataFrame,
    lines: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
    refused_items: Collection[str],
    refused_invoices: Collection[str],
) -> Result:
    """Approved PSA time (on hourly projects) and milestones against the charges that bill
    them and the invoice lines that bill the charges. Rows are matched by position (one
    factorization of the ids per join), so only mismatching rows are gathered."""
    result = Result()
    items = approved_items(time, milestones, projects)
    # each charge against the item it bills (and the refused items: one factorization)
    refused_ids = pd.Series(list(refused_items), dtype=items.item_id.dtype)
    at, refused_at = positions_many(items.item_id, charges.item_id, refused_ids)
    refused = np.zeros(len(items), dtype=bool)
    refused[refused_at[refused_at >= 0]] = True
    has_item = at >= 0
    times_charged = np.bincount(at[has_item], minlength=len(items))
    unbilled = (
        (times_charged == 0)
        & ~refused
        & past_grace(items.approved_at, grace.charge, now).to_numpy()
    )
    for which, name in (("time", "unbilled_time"), ("milestone", "unbilled_milestone")):
        result.findings += findings(
            with_project(items[unbilled & equals(items.kind.array, which)], projects),
            name,
            "billable_item",
            "item_id",
            "billing",
            amount="amount",
            detail={"project_id": "project_id", "contract_id": "contract_id", "role": "role"},
            money_detail={"approved_hours": "hours"},
        )
    twice = times_charged > 1
    if twice.any():
        dup = charges[has_item & twice[np.where(has_item, at, 0)]].sort_values("charge_id")
        listed = dup.groupby("item_id", sort=False).charge_id.agg(list).rename("ids")
        doubled = with_project(items[twice], projects).merge(
            listed, left_on="item_id", right_index=True
        )
        result.findings += findings(
            doubled.assign(times=doubled.ids.str.len()),
            "charge_duplicated",
            "billable_item",
            "item_id",
            "billing",
            amount="amount",
            detail={"charge_ids": "ids", "times": "times", "kind": "kind"},
        )
    item_at = at[has_item]
    billed = charges[has_item]
    hours, rate = floats(items.hours)[item_at], floats(items.rate)[item_at]
    quantity, unit_price = floats(billed.quantity), floats(billed.unit_price)
    billed_amount = np.rint(quantity * unit_price / 100)
    leaked = floats(items.amount)[item_at] - billed_amount
    for name, off, money_detail in (
        (
            "quantity_mismatch",
            ne(hours, quantity),
            {"approved_hours": "hours", "charged_hours": "quantity"},
        ),
        (
            "rate_mismatch",
            ne(rate, unit_price),
            {"psa_rate": "rate", "billing_rate": "unit_price"},
        ),
    ):
        if not off.any():
            continue
        rows = with_project(items.iloc[item_at[off]], projects).assign(
            charge_id=billed.charge_id.to_numpy()[off],
            quantity=billed.quantity.to_numpy()[off],
            unit_price=billed.unit_price.to_numpy()[off],
            leaked=np.rint(leaked[off]),
        )
        result.findings += findings(
            rows,
            name,
            "billable_item",
            "item_id",
            "billing",
            amount="leaked",
            detail={"charge_id": "charge_id", "kind": "kind", "role": "role"},
            money_detail=money_detail,
        )
    # charged but never invoiced past the billing cycle and its grace
    on = positions(charges.schedule_id, schedules.schedule_id)
    stale = (
        equals(charges.status.array, "pending")
        & equals(pick(schedules.status, on), "active")
        & past_grace(charges.created_at, grace.billing_cycle, now).to_numpy()
    )
    if stale.any():
        picked = charges[stale]
        where = on[stale]
        rows = picked.assign(
            contract_id=pick(schedules.contract_id, where),
            deal_id=pick(schedules.deal_id, where),
            currency=pick(schedules.currency, where),
            amount=np.rint(floats(picked.quantity) * floats(picked.unit_price) / 100),
        )
        result.findings += findings(
            rows,
            "uninvoiced_charge",
            "charge",
            "charge_id",
            "billing",
            amount="amount",
            detail={
                "psa_item_id": "item_id",
                "created_at": "created_at",
                "contract_id": "contract_id",
            },
        )
    # the invoice line billing a charge must bill its quantity at its price
    kept = lines[~member(lines.invoice_id, refused_invoices).to_numpy()]
    line_at = positions(kept.charge_id, charges.charge_id)
    charge_quantity = take_floats(floats(charges.quantity), line_at)
    charge_price = take_floats(floats(charges.unit_price), line_at)
    line_quantity, line_price = floats(kept.line_quantity), floats(kept.line_unit_price)
    line_off = ne(charge_quantity, line_quantity) | ne(charge_price, line_price)
    if line_off.any():
        where = line_at[line_off]
        sched = positions(pd.Series(pick(charges.schedule_id, where)), schedules.schedule_id)
        rows = kept[line_off].assign(
            item_id=pick(charges.item_id, where),
            quantity=charge_quantity[line_off],
            unit_price=charge_price[line_off],
            deal_id=pick(schedules.deal_id, sched),
            currency=pick(schedules.currency, sched),
            leaked=np.rint(
                (charge_quantity * charge_price - line_quantity * line_price)[line_off] / 100
            ),
        )
        result.findings += findings(
            rows,
            "invoice_line_mismatch",
            "invoice",
            "invoice_id",
            "billing",
            amount="leaked",
            detail={"charge_id": "charge_id", "psa_item_id": "item_id"},
            money_detail={
                "charged_hours": "quantity",
                "invoiced_hours": "line_quantity",
                "charged_price": "unit_price",
                "invoiced_price": "line_unit_price",
            },
        )
    project_at = items.project_at.to_numpy()
    result.summary = summary(
        {
            "psa_approved": per_project(projects, project_at, floats(items.amount)),
            "billing_charged": per_project(projects, project_at[item_at], billed_amount),
        }
    )
    result.counts = {
        "approved_items": len(items),
        "charges": len(charges),
        "refused_by_validation": int(refused.sum()),
    }
    return result
