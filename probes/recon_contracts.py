"""Executed contracts (terms, rate cards, milestones) against billing schedules, PSA
milestones and milestone charges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from probes.base import Finding
from probes.recon_common import (
    Grace,
    Result,
    differs,
    duplicated,
    findings,
    floats,
    member,
    ne,
    ne_text,
    past_grace,
    pick,
    positions,
    summary,
    take_floats,
)


def contracts_vs_schedules(
    contracts: pd.DataFrame,
    terms: pd.DataFrame,
    contract_rates: pd.DataFrame,
    contract_milestones: pd.DataFrame,
    schedules: pd.DataFrame,
    schedule_rates: pd.DataFrame,
    projects: pd.DataFrame,
    milestones: pd.DataFrame,
    charges: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
    billing_models: Mapping[str, str],
) -> Result:
    result = Result()
    executed = contracts[contracts.status == "executed"]
    result.findings += findings(
        duplicated(schedules[schedules.status != "cancelled"], ["contract_id"], "schedule_id"),
        "schedule_duplicated",
        "contract",
        "contract_id",
        "billing",
        detail={"schedule_ids": "ids", "times": "times"},
    )
    executed = executed.reset_index(drop=True)
    s_at = positions(executed.contract_id, schedules.contract_id)  # its (first) schedule
    scheduled = s_at >= 0
    missing = executed[
        ~scheduled & past_grace(executed.executed_at, grace.scheduling, now).to_numpy()
    ]
    result.findings += findings(
        missing,
        "schedule_missing",
        "contract",
        "contract_id",
        "billing",
        amount="value",
        detail={"executed_at": "executed_at", "legal_entity": "legal_entity"},
    )
    orphans = schedules[
        (schedules.status != "cancelled") & ~member(schedules.contract_id, executed.contract_id)
    ]
    result.findings += findings(
        orphans,
        "orphan_schedule",
        "billing_schedule",
        "schedule_id",
        "billing",
        detail={"contract_id": "contract_id"},
    )
    cancelled = contracts[contracts.status == "cancelled"]
    still = schedules[
        (schedules.status == "active") & member(schedules.contract_id, cancelled.contract_id)
    ]
    result.findings += findings(
        still,
        "schedule_not_cancelled",
        "billing_schedule",
        "schedule_id",
        "billing",
        detail={"contract_id": "contract_id"},
    )
    # each scheduled contract's terms against its schedule, once its amendments settled
    paired = executed[scheduled].reset_index(drop=True)
    at = s_at[scheduled]
    t_at = positions(paired.contract_id, terms.contract_id)
    settled_rows = past_grace(
        pd.Series(pick(terms.amended_at, t_at)), grace.amendment, now
    ).to_numpy()
    settled = paired[settled_rows].reset_index(drop=True)
    at, t_at = at[settled_rows], t_at[settled_rows]
    settled["schedule_id"] = pick(schedules.schedule_id, at)
    expected_model = settled.billing_model.map(dict(billing_models))
    checks: list[tuple[str, Any, str, bool]] = [
        ("currency_mismatch", settled.currency.array, "currency", False),
        ("billing_model_mismatch", expected_model.array, "billing_model", False),
        ("cap_mismatch", pick(terms.cap, t_at), "cap", True),
        ("po_mismatch", pick(terms.po_number, t_at), "po_number", False),
        ("monthly_fee_mismatch", pick(terms.monthly_fee, t_at), "monthly_fee", True),
        ("term_mismatch", pick(terms.term_months, t_at), "term_months", False),
    ]
    for kind, clm, column, is_money in checks:
        billing = pick(schedules[column], at)
        if is_money:
            off = ne(floats(pd.Series(clm)), floats(pd.Series(billing)))
        else:
            off = ne_text(pd.Series(clm, dtype=object), pd.Series(billing, dtype=object))
        if not off.any():
            continue
        rows = settled[off].assign(
            clm=pd.Series(clm)[off].to_numpy(), billing=pd.Series(billing)[off].to_numpy()
        )
        result.findings += findings(
            rows,
            kind,
            "contract",
            "contract_id",
            "billing",
            amount="value",
            detail={"schedule_id": "schedule_id"}
            | ({} if is_money else {"clm": "clm", "billing": "billing"}),
            money_detail={"clm": "clm", "billing": "billing"} if is_money else None,
        )
    result.findings += _rate_cards(contract_rates, settled, at, schedules, schedule_rates)
    result.findings += _milestones(
        contract_milestones, executed, projects, milestones, charges, now=now, grace=grace
    )
    result.summary = summary(
        {
            "clm_executed": executed.rename(columns={"value": "amount"}),
            "billing_schedules": pd.DataFrame(
                {
                    "legal_entity": pick(
                        executed.legal_entity,
                        positions(schedules.contract_id, executed.contract_id),
                    ),
                    "currency": schedules.currency.array,
                }
            ),
        }
    )
    result.counts = {
        "executed_contracts": len(executed),
        "schedules": len(schedules),
        "awaiting_amendment": int((~settled_rows).sum()),
    }
    return result


def _rate_cards(
    contract_rates: pd.DataFrame,
    settled: pd.DataFrame,
    at: np.ndarray,
    schedules: pd.DataFrame,
    schedule_rates: pd.DataFrame,
) -> list[Finding]:
    """Rate cards role by role: each contract rate against its schedule's rate for the role
    (missing: a mismatch), and each schedule role the contract does not have."""
    c_at = positions(contract_rates.contract_id, settled.contract_id)  # settled row, or -1
    clm = contract_rates[c_at >= 0]
    c_at = c_at[c_at >= 0]
    b_at = positions(schedule_rates.schedule_id, settled.schedule_id)  # settled row, or -1
    billed = schedule_rates[b_at >= 0]
    b_at = b_at[b_at >= 0]
    roles, _names = pd.factorize(pd.concat([clm.role, billed.role], ignore_index=True))
    width = int(roles.max()) + 2 if len(roles) else 1
    clm_key = pd.Series(c_at * width + roles[: len(clm)] + 1)
    billed_key = pd.Series(b_at * width + roles[len(clm) :] + 1)
    match = positions(clm_key, billed_key)  # the schedule's line for each contract line
    back = positions(billed_key, clm_key)  # and the contract's line for each schedule line
    clm_rate = floats(clm.rate)
    billed_rate = take_floats(floats(billed.rate), match)
    off = ne(clm_rate, billed_rate)
    extra = back < 0
    rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "at": c_at[off],
                    "role": clm.role.array[off],
                    "rate_clm": clm_rate[off],
                    "rate_billing": billed_rate[off],
                }
            ),
            pd.DataFrame(
                {
                    "at": b_at[extra],
                    "role": billed.role.array[extra],
                    "rate_clm": np.nan,
                    "rate_billing": floats(billed.rate)[extra],
                }
            ),
        ],
        ignore_index=True,
    )
    if rows.empty:
        return []
    where = rows["at"].to_numpy()
    rows = rows.assign(
        contract_id=pick(settled.contract_id, where),
        schedule_id=pick(settled.schedule_id, where),
        deal_id=pick(settled.deal_id, where),
        currency=pick(settled.currency, where),
    )
    return findings(
        rows,
        "rate_mismatch",
        "contract",
        "contract_id",
        "billing",
        amount="rate_clm",
        detail={"schedule_id": "schedule_id", "role": "role"},
        money_detail={"clm_rate": "rate_clm", "billing_rate": "rate_billing"},
    )


def _milestones(
    contract_milestones: pd.DataFrame,
    executed: pd.DataFrame,
    projects: pd.DataFrame,
    milestones: pd.DataFrame,
    charges: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
) -> list[Finding]:
    """Contract milestones (of executed contracts with a project) against the PSA
    milestone and the charges that bill it."""
    out: list[Finding] = []
    if contract_milestones.empty or executed.empty:
        return out  # (an empty frame's columns carry no dtype to merge on)
    ms = contract_milestones.merge(
        executed[["contract_id", "deal_id", "executed_at"]], on="contract_id"
    )
    ms = ms[member(ms.contract_id, projects.contract_id)]
    psa = milestones.merge(projects[["project_id", "contract_id"]], on="project_id")
    ms = ms.merge(
        psa[["contract_id", "milestone_id", "item_id", "price"]],
        on=["contract_id", "milestone_id"],
        how="left",
    )
    gone = ms[ms.item_id.isna() & past_grace(ms.executed_at, grace.provisioning, now)]
    out += findings(
        gone,
        "milestone_missing",
        "contract",
        "contract_id",
        "psa",
        amount="amount",
        detail={"milestone_id": "milestone_id"},
    )
    ms = ms[ms.item_id.notna()].merge(
        charges[["item_id", "charge_id", "quantity", "unit_price"]], on="item_id", how="left"
    )
    ms["charged"] = (ms.quantity * ms.unit_price / 100).round().astype("Int64")
    off = ms[differs(ms.amount, ms.price) | (ms.charge_id.notna() & differs(ms.amount, ms.charged))]
    out += findings(
        off,
        "milestone_amount_mismatch",
        "contract",
        "contract_id",
        "psa",
        amount="amount",
        detail={"milestone_id": "milestone_id", "psa_item_id": "item_id", "charge_id": "charge_id"},
        money_detail={"clm_amount": "amount", "psa_amount": "price", "billing_amount": "charged"},
    )
    return out


# --- approved billable time vs billed quantity (leakage) --------------------------------------
