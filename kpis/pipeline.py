"""The funnel (deals at each stage) and the backlog (contracted, not yet invoiced)."""

from __future__ import annotations

from kpis.context import KpiContext
from kpis.facts import Facts
from kpis.slicing import in_window, ratio, slices
from kpis.values import KpiValue
from kpis.windows import POINT_IN_TIME
from store.states import DealStage

DAY = 86400.0


def compute_pipeline(facts: Facts, ctx: KpiContext) -> list[KpiValue]:
    out: list[KpiValue] = []
    now = ctx.now
    deals = facts.deals
    for dim, dv, group in slices(deals[deals["stage"].notna()], ctx.dimensions):
        for stage in DealStage:
            at = group[group["stage"] == stage.value]
            out += [
                ctx.value(
                    f"funnel_count_{stage.value}", POINT_IN_TIME, (dim, dv), len(at), at["id"]
                ),
                ctx.value(
                    f"funnel_value_{stage.value}",
                    POINT_IN_TIME,
                    (dim, dv),
                    float(at["amount_rc"].sum()),
                    at["id"],
                ),
            ]

    contracted = facts.contracts.groupby("deal_id")["value_rc"].sum()
    inv = facts.invoices
    billed = inv[inv["issued_at"].notna() & (inv["issued_at"] <= now) & ~inv["credited"]]
    invoiced = billed.groupby("deal_id")["amount_rc"].sum()
    recent = (
        billed[in_window(billed["issued_at"], now, 90 * DAY)].groupby("deal_id")["amount_rc"].sum()
    )
    with_contract = deals[deals["id"].isin(contracted.index)]
    with_contract = with_contract.assign(
        backlog=(
            with_contract["id"].map(contracted).fillna(0.0)
            - with_contract["id"].map(invoiced).fillna(0.0)
        ).clip(lower=0.0),
        recent=with_contract["id"].map(recent).fillna(0.0),
    )
    for dim, dv, group in slices(with_contract, ctx.dimensions):
        backlog = round(float(group["backlog"].sum()), 2)
        monthly = round(float(group["recent"].sum()), 2) / 3.0
        members = group.loc[group["backlog"] > 0, "id"]
        out += [
            ctx.value("backlog", POINT_IN_TIME, (dim, dv), backlog, members),
            ctx.value(
                "backlog_burn_months",
                POINT_IN_TIME,
                (dim, dv),
                ratio(backlog, monthly),
                members,
                monthly_invoicing=round(monthly, 2),
            ),
        ]
    return out
