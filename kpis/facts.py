"""The facts KPIs are computed from: the object frames joined into deal, invoice and
billable-item rows that carry their slice columns and money in the reporting currency.

Every fact row belongs to one deal and depends only on that deal's objects, so facts for
a few changed deals can be rebuilt alone and swapped in (`FactTables.replace_deals`).
Text columns stay numpy object arrays: the slicing works on numpy, and converting
pandas' Arrow strings back on every refresh would cost more than the KPIs themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from kpis.definitions import TIME_KINDS
from kpis.frames import StoreFrames
from kpis.money import to_reporting
from kpis.slicing import UNKNOWN, Vocabulary
from throughline.config import KpiSettings

SLICE_COLUMNS = ("legal_entity", "region", "practice", "currency")


def _text(values: Any, index: pd.Index) -> pd.Series:
    return pd.Series(values, index=index, dtype=object)


def _pick(values: npt.NDArray[Any], positions: npt.NDArray[np.intp], fill: Any) -> npt.NDArray[Any]:
    """`values[positions]`, `fill` where the position is -1 (no match)."""
    if len(values) == 0:
        return np.full(len(positions), fill, dtype=object if fill is None else "float64")
    found = values[positions]
    missing = positions < 0
    if missing.any():
        found = found.astype(object) if fill is None else found.astype("float64")
        found[missing] = fill
    return found


def _positions(index: pd.Index, keys: pd.Series) -> npt.NDArray[np.intp]:
    return np.asarray(index.get_indexer(pd.Index(keys, dtype=object)), dtype=np.intp)


def _min_by_deal(frame: pd.DataFrame, column: str, deals: pd.Index) -> npt.NDArray[Any]:
    present = frame[frame[column].notna()]
    first = present.groupby("deal_id", sort=False)[column].min()
    return _pick(
        first.to_numpy("float64"),
        _positions(pd.Index(first.index, dtype=object), deals.to_series()),
        np.nan,
    )


def _slices(frame: pd.DataFrame, vocabulary: Vocabulary) -> None:
    for column in SLICE_COLUMNS:
        frame[column] = _text(frame[column].fillna(UNKNOWN).to_numpy(dtype=object), frame.index)
        frame[f"{column}_code"] = vocabulary.encode(column, frame[column])
    key = "id" if "deal_id" not in frame.columns else "deal_id"
    frame["deal_key"] = vocabulary.encode("deal", frame[key])


@dataclass(frozen=True)
class Facts:
    deals: pd.DataFrame
    """id, slices, stage, closed_won_at, amount_rc, activated_at, first_cash_at,
    contracted_rc, has_contract"""
    invoices: pd.DataFrame
    """id, deal_id, slices, stage, credited, has_exception, issued_at, posted_at, paid_at,
    amount_rc, unpaid_rc, deal_amount_rc"""
    items: pd.DataFrame
    """id, deal_id, slices, kind, quantity, stage, approved_at, invoiced_at, paid_at,
    amount_rc, underbilled_rc"""
    vocabulary: Vocabulary
    """the codes of the slice values (`<dimension>_code` columns) and of deal stages"""


def build_facts(
    frames: StoreFrames, settings: KpiSettings, vocabulary: Vocabulary | None = None
) -> Facts:
    """Facts from object frames; pass the vocabulary of facts these will be merged into."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    deals = frames.deals.copy()
    deal_index = pd.Index(deals["id"], dtype=object)
    projects = frames.projects
    named = projects.dropna(subset=["practice"]).groupby("deal_id", sort=False)["practice"].first()
    project_practice = _pick(
        named.to_numpy(dtype=object),
        _positions(pd.Index(named.index, dtype=object), deals["id"]),
        None,
    )
    deals["practice"] = _text(
        np.where(
            deals["practice"].isna(), project_practice, deals["practice"].to_numpy(dtype=object)
        ),
        deals.index,
    )
    deals["amount_rc"] = to_reporting(deals["amount"], deals["currency"], settings)
    deals["activated_at"] = _min_by_deal(projects, "activated_at", deal_index)
    deals["first_cash_at"] = _min_by_deal(frames.invoices, "paid_at", deal_index)
    contracts = frames.contracts
    contract_pos = _positions(deal_index, contracts["deal_id"])
    found = contract_pos >= 0
    value_rc = to_reporting(contracts["value"], contracts["currency"], settings).to_numpy("float64")
    deals["contracted_rc"] = np.bincount(
        contract_pos[found], weights=np.nan_to_num(value_rc[found]), minlength=len(deals)
    )
    has_contract = np.zeros(len(deals), dtype=bool)
    has_contract[contract_pos[found]] = True
    deals["has_contract"] = has_contract
    _slices(deals, vocabulary)
    deals["stage_code"] = vocabulary.encode("stage", deals["stage"].fillna(""))
    deals["staged"] = deals["stage"].notna().to_numpy(dtype=bool)

    invoices = frames.invoices.copy()
    at = _positions(deal_index, invoices["deal_id"])
    entity = _pick(deals["legal_entity"].to_numpy(dtype=object), at, None)
    invoices["legal_entity"] = _text(
        np.where(
            invoices["legal_entity"].isna(), entity, invoices["legal_entity"].to_numpy(dtype=object)
        ),
        invoices.index,
    )
    for column in ("region", "practice"):
        invoices[column] = _text(
            _pick(deals[column].to_numpy(dtype=object), at, None), invoices.index
        )
    invoices["amount_rc"] = to_reporting(invoices["amount"], invoices["currency"], settings)
    unpaid = (invoices["amount"].fillna(0.0) - invoices["amount_paid"].fillna(0.0)).clip(lower=0)
    invoices["unpaid_rc"] = to_reporting(unpaid, invoices["currency"], settings)
    invoices["credited"] = (invoices["stage"] == "credited").to_numpy(dtype=bool)
    invoices["deal_amount_rc"] = _pick(deals["amount_rc"].to_numpy("float64"), at, np.nan)
    _slices(invoices, vocabulary)

    items = frames.items.copy()
    at = _positions(deal_index, items["deal_id"])
    for column in ("legal_entity", "region", "practice"):
        items[column] = _text(_pick(deals[column].to_numpy(dtype=object), at, None), items.index)
    items["amount_rc"] = to_reporting(items["amount"], items["currency"], settings)
    shortfall = (items["rate"] * items["quantity"] - items["invoiced_amount"]).clip(lower=0)
    items["underbilled"] = np.where(items["invoiced_amount"].notna(), shortfall, 0.0)
    items["underbilled_rc"] = to_reporting(items["underbilled"], items["currency"], settings)
    items["paid_at"] = _pick(
        invoices["paid_at"].to_numpy("float64"),
        _positions(pd.Index(invoices["id"], dtype=object), items["invoice_id"]),
        np.nan,
    )
    items["hours"] = items["kind"].isin(TIME_KINDS).to_numpy(dtype=bool)
    items["rejected"] = (items["stage"] == "rejected").to_numpy(dtype=bool)
    items["consultant_key"] = vocabulary.encode("consultant", items["consultant"].fillna(""))
    _slices(items, vocabulary)
    return Facts(deals=deals, invoices=invoices, items=items, vocabulary=vocabulary)
