"""Won deals (CRM) against contracts (CLM), ERP customers and PSA projects."""

from __future__ import annotations

import numpy as np
import pandas as pd

from probes.recon_common import (
    Grace,
    Result,
    by_text,
    duplicated,
    equals,
    findings,
    floats,
    member,
    ne,
    ne_text,
    past_grace,
    pick,
    positions,
    summary,
)


def deals_downstream(
    deals: pd.DataFrame,
    accounts: pd.DataFrame,
    contracts: pd.DataFrame,
    customers: pd.DataFrame,
    projects: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
) -> Result:
    """Won deals against their contract (request) in CLM; executed contracts against the
    ERP customer of their account and their PSA project; nothing doubled or orphaned."""
    result = Result()
    deals = deals.assign(
        legal_entity=pick(accounts.legal_entity, positions(deals.account_id, accounts.account_id))
    )
    # won deal -> contract (request) in CLM: its first contract
    c_at = positions(deals.deal_id, contracts.deal_id)
    has_contract = c_at >= 0
    missing = deals[~has_contract & past_grace(deals.won_at, grace.intake, now).to_numpy()]
    result.findings += findings(
        missing,
        "contract_missing",
        "deal",
        "deal_id",
        "clm",
        amount="amount",
        detail={"won_at": "won_at", "account_id": "account_id", "legal_entity": "legal_entity"},
    )
    is_executed = equals(contracts.status.array, "executed")
    executed = contracts[is_executed]
    result.findings += findings(
        duplicated(
            contracts[~equals(contracts.status.array, "cancelled")], ["deal_id"], "contract_id"
        ),
        "contract_duplicated",
        "deal",
        "deal_id",
        "clm",
        amount="value",
        detail={"contract_ids": "ids", "times": "times"},
    )
    result.findings += findings(
        duplicated(customers, ["account_id", "legal_entity"], "customer_id"),
        "customer_duplicated",
        "customer",
        "customer_id",
        "erp",
        deal=None,
        detail={"crm_account_id": "account_id", "customer_ids": "ids", "times": "times"},
    )
    result.findings += findings(
        duplicated(projects, ["contract_id"], "project_id"),
        "project_duplicated",
        "contract",
        "contract_id",
        "psa",
        amount="price",
        detail={"project_ids": "ids", "times": "times"},
    )
    result.findings += findings(
        contracts[~member(contracts.deal_id, deals.deal_id)],
        "orphan_contract",
        "contract",
        "contract_id",
        "clm",
        amount="value",
        detail={"status": "status", "crm_opportunity_id": "deal_id"},
    )
    # a won deal's executed contract at its value and currency
    both = has_contract & is_executed[np.where(has_contract, c_at, 0)]
    at = c_at[both]
    won = deals[both]
    value_off = ne(floats(won.amount), floats(contracts.value)[at])
    currency_off = ne_text(won.currency.array, pick(contracts.currency, at))
    for kind, off, detail, money_detail in (
        (
            "contract_value_mismatch",
            value_off,
            {"contract_id": "contract_id", "contract_currency": "contract_currency"},
            {"crm_amount": "amount", "clm_value": "contract_value"},
        ),
        (
            "contract_currency_mismatch",
            currency_off,
            {
                "contract_id": "contract_id",
                "crm_currency": "currency",
                "clm_currency": "contract_currency",
            },
            None,
        ),
    ):
        if off.any():
            where = at[off]
            result.findings += findings(
                won[off].assign(
                    contract_id=pick(contracts.contract_id, where),
                    contract_value=floats(contracts.value)[where],
                    contract_currency=pick(contracts.currency, where),
                ),
                kind,
                "deal",
                "deal_id",
                "clm",
                amount="amount",
                detail=detail,
                money_detail=money_detail,
            )
    # executed contract -> ERP customer of its account, and its PSA project
    due = executed[past_grace(executed.executed_at, grace.provisioning, now).to_numpy()]
    result.findings += findings(
        due[~member(due.account_id, customers.account_id)],
        "customer_missing",
        "contract",
        "contract_id",
        "erp",
        amount="value",
        detail={"crm_account_id": "account_id", "executed_at": "executed_at"},
    )
    result.findings += findings(
        customers[~member(customers.account_id, contracts.account_id)],
        "orphan_customer",
        "customer",
        "customer_id",
        "erp",
        deal=None,
        detail={"crm_account_id": "account_id", "legal_entity": "legal_entity"},
    )
    result.findings += findings(
        due[~member(due.contract_id, projects.contract_id)],
        "project_missing",
        "contract",
        "contract_id",
        "psa",
        amount="value",
        detail={"executed_at": "executed_at", "legal_entity": "legal_entity"},
    )
    p_at = positions(projects.contract_id, executed.contract_id)
    active = ~equals(projects.status.array, "closed")
    result.findings += findings(
        projects[active & (p_at < 0)],
        "orphan_project",
        "project",
        "project_id",
        "psa",
        amount="price",
        detail={"contract_id": "contract_id", "status": "status"},
    )
    linked = p_at >= 0
    at = p_at[linked]
    mine = projects[linked]
    off = ne(floats(mine.price), floats(executed.value)[at]) | ne_text(
        mine.currency.array, pick(executed.currency, at)
    )
    if off.any():
        result.findings += findings(
            mine[off].assign(
                value=floats(executed.value)[at[off]],
                contract_currency=pick(executed.currency, at[off]),
            ),
            "project_value_mismatch",
            "project",
            "project_id",
            "psa",
            amount="price",
            detail={
                "contract_id": "contract_id",
                "psa_currency": "currency",
                "clm_currency": "contract_currency",
            },
            money_detail={"psa_price": "price", "clm_value": "value"},
        )
    result.summary = summary(
        {
            "crm_won": by_text(deals.legal_entity, deals.currency, floats(deals.amount)),
            "clm_executed": by_text(
                executed.legal_entity, executed.currency, floats(executed.value)
            ),
            "psa_projects": by_text(
                projects.legal_entity, projects.currency, floats(projects.price)
            ),
            "erp_customers": by_text(
                customers.legal_entity, customers.currency, np.full(len(customers), np.nan)
            ).drop(columns="amount"),
        }
    )
    result.counts = {
        "won_deals": len(deals),
        "contracts": len(contracts),
        "customers": len(customers),
        "projects": len(projects),
    }
    return result


# --- executed contracts vs billing schedules ---------------------------------------------------
