"""The facts KPIs are computed from: the object frames joined into deal, invoice and
billable-item rows that carry their slice codes and money in the reporting currency.

Every fact row belongs to one deal and depends only on that deal's objects, so facts for
a few changed deals can be rebuilt alone and swapped in (`FactTables.replace_deals`).
The joins work on numpy columns (positions found with one index lookup, minima with
`np.fmin.at`), not on pandas frames: an incremental refresh rebuilds the facts of a
hundred deals, where the fixed cost of each pandas operation would be most of the time.
Text columns stay numpy object arrays, as the slicing reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from kpis.definitions import TIME_KINDS
from kpis.frames import DealRows, StoreFrames
from kpis.money import to_reporting
from kpis.slicing import UNKNOWN, Array, Vocabulary
from throughline.config import KpiSettings

SLICE_COLUMNS = ("legal_entity", "region", "practice", "currency")

Columns = dict[str, Array]


Frame = pd.DataFrame | Columns
"""the rows of one object table: a typed frame (kpis.frames) or its columns"""


def _text(frame: Frame, column: str) -> npt.NDArray[np.object_]:
    return np.asarray(frame[column], dtype=object)


def _number(frame: Frame, column: str) -> npt.NDArray[np.float64]:
    return np.asarray(frame[column], dtype=np.float64)


def _positions(index: pd.Index, keys: Array) -> npt.NDArray[np.intp]:
    """Per key, its row in `index` (-1 where it is not there)."""
    return np.asarray(index.get_indexer(pd.Index(keys, dtype=object)), dtype=np.intp)


def _pick(values: Array, positions: npt.NDArray[np.intp], fill: Any) -> Array:
    """`values[positions]`, `fill` where the position is -1 (no match)."""
    found = positions >= 0
    out = np.full(len(positions), fill, dtype=object if fill is None else np.float64)
    out[found] = values[positions[found]]
    return out


def _min_at(positions: npt.NDArray[np.intp], values: Array, size: int) -> Array:
    """Per row of a table of `size` rows, the least of the `values` (NaN left out) whose
    position is that row; NaN where there is none."""
    out = np.full(size, np.nan)
    usable = (positions >= 0) & ~np.isnan(values)
    np.fmin.at(out, positions[usable], values[usable])
    return out


def _any_of(values: Array, wanted: tuple[str, ...]) -> npt.NDArray[np.bool_]:
    found = np.zeros(len(values), dtype=bool)
    for value in wanted:
        found |= values == value
    return found


def _filled(values: Array) -> npt.NDArray[np.object_]:
    out = np.array(values, dtype=object)
    out[pd.isna(out)] = UNKNOWN
    return out


def _coded(columns: Columns, keys: Array, vocabulary: Vocabulary) -> None:
    """Slice columns filled (`unknown` for none) and coded; the deal key of each row."""
    for column in SLICE_COLUMNS:
        columns[column] = _filled(columns[column])
        columns[f"{column}_code"] = vocabulary.encode(column, columns[column])
    columns["deal_key"] = vocabulary.encode("deal", keys)


@dataclass(frozen=True)
class Facts:
    deals: Columns
    """id, slices, stage_code, staged, closed_won_at, amount_rc, activated_at,
    first_cash_at, contracted_rc, has_contract"""
    invoices: Columns
    """id, deal_id, slices, credited, has_exception, issued_at, posted_at, paid_at,
    amount_rc, unpaid_rc, deal_amount_rc"""
    items: Columns
    """id, deal_id, slices, hours, rejected, consultant_key, quantity, approved_at,
    invoiced_at, paid_at, amount_rc, underbilled_rc"""
    vocabulary: Vocabulary
    """the codes of the slice values (`<dimension>_code` columns) and of deal stages"""


def _deal_facts(
    frames: StoreFrames | DealRows, settings: KpiSettings, vocabulary: Vocabulary
) -> Columns:
    deals = frames.deals
    ids = _text(deals, "id")
    index = pd.Index(ids, dtype=object)
    size = len(ids)

    projects = frames.projects
    project_deal = _positions(index, _text(projects, "deal_id"))
    project_practice = _text(projects, "practice")
    named = (project_deal >= 0) & ~pd.isna(project_practice)
    # the first named project of a deal (in row order) gives a deal without one its practice
    at, first = np.unique(project_deal[named], return_index=True)
    practice = _text(deals, "practice").copy()
    from_project = np.full(size, None, dtype=object)
    from_project[at] = project_practice[named][first]
    unnamed = pd.isna(practice)
    practice[unnamed] = from_project[unnamed]

    contracts = frames.contracts
    contract_deal = _positions(index, _text(contracts, "deal_id"))
    found = contract_deal >= 0
    value_rc = to_reporting(_number(contracts, "value"), _text(contracts, "currency"), settings)
    has_contract = np.zeros(size, dtype=bool)
    has_contract[contract_deal[found]] = True
    stage = _text(deals, "stage").copy()
    columns: Columns = {
        "id": ids,
        "legal_entity": _text(deals, "legal_entity"),
        "region": _text(deals, "region"),
        "practice": practice,
        "currency": _text(deals, "currency"),
        "closed_won_at": _number(deals, "closed_won_at"),
        "amount_rc": to_reporting(_number(deals, "amount"), _text(deals, "currency"), settings),
        "activated_at": _min_at(project_deal, _number(projects, "activated_at"), size),
        "first_cash_at": _min_at(
            _positions(index, _text(frames.invoices, "deal_id")),
            _number(frames.invoices, "paid_at"),
            size,
        ),
        "contracted_rc": np.bincount(
            contract_deal[found], weights=np.nan_to_num(value_rc[found]), minlength=size
        ),
        "has_contract": has_contract,
        "staged": ~pd.isna(stage),
    }
    stage[~columns["staged"]] = ""
    columns["stage_code"] = vocabulary.encode("stage", stage)
    _coded(columns, ids, vocabulary)
    return columns


def _invoice_facts(
    frames: StoreFrames | DealRows, deals: Columns, index: pd.Index, settings: KpiSettings
) -> Columns:
    invoices = frames.invoices
    deal_ids = _text(invoices, "deal_id")
    at = _positions(index, deal_ids)
    entity = _text(invoices, "legal_entity").copy()
    missing = pd.isna(entity)
    entity[missing] = _pick(deals["legal_entity"], at, None)[missing]
    currency = _text(invoices, "currency")
    amount, paid = _number(invoices, "amount"), _number(invoices, "amount_paid")
    unpaid = np.clip(np.nan_to_num(amount) - np.nan_to_num(paid), 0.0, None)
    return {
        "id": _text(invoices, "id"),
        "deal_id": deal_ids,
        "legal_entity": entity,
        "region": _pick(deals["region"], at, None),
        "practice": _pick(deals["practice"], at, None),
        "currency": currency,
        "issued_at": _number(invoices, "issued_at"),
        "posted_at": _number(invoices, "posted_at"),
        "paid_at": _number(invoices, "paid_at"),
        "credited": _text(invoices, "stage") == "credited",
        "has_exception": np.asarray(invoices["has_exception"], dtype=bool),
        "amount_rc": to_reporting(amount, currency, settings),
        "unpaid_rc": to_reporting(unpaid, currency, settings),
        "deal_amount_rc": _pick(deals["amount_rc"], at, np.nan),
    }


def _item_facts(
    frames: StoreFrames | DealRows,
    deals: Columns,
    index: pd.Index,
    invoices: Columns,
    settings: KpiSettings,
    vocabulary: Vocabulary,
) -> Columns:
    items = frames.items
    deal_ids = _text(items, "deal_id")
    at = _positions(index, deal_ids)
    currency = _text(items, "currency")
    rate, quantity = _number(items, "rate"), _number(items, "quantity")
    invoiced_amount = _number(items, "invoiced_amount")
    with np.errstate(invalid="ignore"):
        shortfall = np.clip(rate * quantity - invoiced_amount, 0.0, None)
    underbilled = np.where(np.isnan(invoiced_amount), 0.0, shortfall)
    invoice_at = _positions(pd.Index(invoices["id"], dtype=object), _text(items, "invoice_id"))
    consultant = _text(items, "consultant").copy()
    consultant[pd.isna(consultant)] = ""
    return {
        "id": _text(items, "id"),
        "deal_id": deal_ids,
        "legal_entity": _pick(deals["legal_entity"], at, None),
        "region": _pick(deals["region"], at, None),
        "practice": _pick(deals["practice"], at, None),
        "currency": currency,
        "quantity": quantity,
        "approved_at": _number(items, "approved_at"),
        "invoiced_at": _number(items, "invoiced_at"),
        "paid_at": _pick(invoices["paid_at"], invoice_at, np.nan),
        "amount_rc": to_reporting(_number(items, "amount"), currency, settings),
        "underbilled_rc": to_reporting(underbilled, currency, settings),
        "hours": _any_of(_text(items, "kind"), TIME_KINDS),
        "rejected": _text(items, "stage") == "rejected",
        "consultant_key": vocabulary.encode("consultant", consultant),
    }


def build_facts(
    frames: StoreFrames | DealRows, settings: KpiSettings, vocabulary: Vocabulary | None = None
) -> Facts:
    """Facts from object frames; pass the vocabulary of facts these will be merged into."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    deals = _deal_facts(frames, settings, vocabulary)
    index = pd.Index(deals["id"], dtype=object)
    invoices = _invoice_facts(frames, deals, index, settings)
    _coded(invoices, invoices["deal_id"], vocabulary)
    items = _item_facts(frames, deals, index, invoices, settings, vocabulary)
    _coded(items, items["deal_id"], vocabulary)
    return Facts(deals=deals, invoices=invoices, items=items, vocabulary=vocabulary)
