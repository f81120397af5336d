"""The facts KPIs are computed from: the object frames joined into deal, invoice and
billable-item rows that carry their slice columns and money in the reporting currency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kpis.frames import StoreFrames
from kpis.money import to_reporting
from kpis.slicing import UNKNOWN
from throughline.config import KpiSettings

SLICE_COLUMNS = ("legal_entity", "region", "practice", "currency")


@dataclass(frozen=True)
class Facts:
    deals: pd.DataFrame
    """id, slices, stage, closed_won_at, amount_rc, activated_at, first_cash_at"""
    invoices: pd.DataFrame
    """id, deal_id, slices, stage, credited, has_exception, issued_at, posted_at, paid_at,
    amount_rc, unpaid_rc, deal_amount_rc"""
    items: pd.DataFrame
    """id, deal_id, slices, kind, quantity, stage, approved_at, invoiced_at, paid_at,
    amount_rc, underbilled_rc"""
    contracts: pd.DataFrame
    """deal_id, value_rc"""


def _min_by_deal(frame: pd.DataFrame, column: str) -> pd.Series:
    present = frame[frame[column].notna()]
    return present.groupby("deal_id")[column].min()


def build_facts(frames: StoreFrames, settings: KpiSettings) -> Facts:
    deals = frames.deals.copy()
    # Practice: the deal's, else its (first) project's.
    project_practice = (
        frames.projects.dropna(subset=["practice"]).groupby("deal_id")["practice"].first()
    )
    deals["practice"] = deals["practice"].fillna(deals["id"].map(project_practice))
    deals["amount_rc"] = to_reporting(deals["amount"], deals["currency"], settings)
    deals["activated_at"] = deals["id"].map(_min_by_deal(frames.projects, "activated_at"))
    deals["first_cash_at"] = deals["id"].map(_min_by_deal(frames.invoices, "paid_at"))
    for column in SLICE_COLUMNS:
        deals[column] = deals[column].fillna(UNKNOWN).astype(str)
    by_deal = deals.set_index("id")

    invoices = frames.invoices.copy()
    invoices["legal_entity"] = invoices["legal_entity"].fillna(
        invoices["deal_id"].map(by_deal["legal_entity"])
    )
    for column in ("region", "practice"):
        invoices[column] = invoices["deal_id"].map(by_deal[column])
    invoices["amount_rc"] = to_reporting(invoices["amount"], invoices["currency"], settings)
    unpaid = (invoices["amount"].fillna(0.0) - invoices["amount_paid"].fillna(0.0)).clip(lower=0)
    invoices["unpaid_rc"] = to_reporting(unpaid, invoices["currency"], settings)
    invoices["credited"] = invoices["stage"] == "credited"
    invoices["deal_amount_rc"] = invoices["deal_id"].map(by_deal["amount_rc"])
    for column in SLICE_COLUMNS:
        invoices[column] = invoices[column].fillna(UNKNOWN).astype(str)

    items = frames.items.copy()
    for column in ("legal_entity", "region", "practice"):
        items[column] = items["deal_id"].map(by_deal[column])
    items["amount_rc"] = to_reporting(items["amount"], items["currency"], settings)
    shortfall = (items["rate"] * items["quantity"] - items["invoiced_amount"]).clip(lower=0)
    items["underbilled"] = np.where(items["invoiced_amount"].notna(), shortfall, 0.0)
    items["underbilled_rc"] = to_reporting(items["underbilled"], items["currency"], settings)
    items["paid_at"] = items["invoice_id"].map(invoices.set_index("id")["paid_at"])
    for column in SLICE_COLUMNS:
        items[column] = items[column].fillna(UNKNOWN).astype(str)

    contracts = frames.contracts.copy()
    contracts["value_rc"] = to_reporting(contracts["value"], contracts["currency"], settings)
    return Facts(deals=deals, invoices=invoices, items=items, contracts=contracts)
