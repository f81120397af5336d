"""The facts KPIs are computed from: the object frames joined into deal, invoice and
billable-item rows that carry their slice codes and money in the reporting currency.

Every fact row belongs to one deal and depends only on that deal's objects, so facts for
a few changed deals can be rebuilt alone and swapped in (`FactTables.replace_deals`).
The joins work on numpy columns (each table's deal ids coded once, rows found through
those integer codes, minima with `np.fmin.at`), not on pandas frames: an incremental
refresh rebuilds the facts of a hundred deals, where the fixed cost of each pandas
operation would be most of the time; a full refresh of a million deals would otherwise
hash every row's deal id text several times. Slice values are carried as vocabulary
codes (`<dimension>_code`), ids as numpy object arrays."""

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


def _rows_of(deal_keys: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Per deal key, the row of the deal table that has it (-1 for none)."""
    rows = np.full(int(deal_keys.max(initial=-1)) + 1, -1, dtype=np.intp)
    rows[deal_keys] = np.arange(len(deal_keys), dtype=np.intp)
    return rows


def _deal_rows(rows_of: npt.NDArray[np.intp], keys: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Per key (of a row of another table), the row of its deal, -1 where it has none."""
    if not len(rows_of):
        return np.full(len(keys), -1, dtype=np.intp)
    inside = keys < len(rows_of)
    return np.asarray(np.where(inside, rows_of[np.where(inside, keys, 0)], -1), dtype=np.intp)


def _pick(values: Array, positions: npt.NDArray[np.intp], fill: Any) -> Array:
    """`values[positions]`, `fill` where the position is -1 (no match)."""
    found = positions >= 0
    if isinstance(fill, int):
        out = np.full(len(positions), fill, dtype=np.intp)
    else:
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


class _Coder:
    """Text columns coded with the vocabulary: each row's text is hashed once, and what
    follows (filling in a deal's slice values, choosing a rate) works on the codes."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def own(self, dimension: str, frame: Frame, column: str) -> npt.NDArray[np.intp]:
        """The codes of a text column, -1 where the value is missing."""
        return self.vocabulary.encode(dimension, _text(frame, column), -1)

    def filled(self, dimension: str, codes: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        """`codes` with `unknown`'s code for -1 (given a code only when needed)."""
        missing = codes < 0
        if missing.any():
            codes = codes.copy()
            codes[missing] = self.vocabulary.add(dimension, UNKNOWN)
        return codes

    def codes(self, dimension: str, frame: Frame, column: str) -> npt.NDArray[np.intp]:
        return self.filled(dimension, self.own(dimension, frame, column))

    def of_deal(
        self, dimension: str, deal_codes: npt.NDArray[np.intp], at: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.intp]:
        """Per row, its deal's code (`unknown` where the row has no deal)."""
        return self.filled(dimension, np.asarray(_pick(deal_codes, at, -1), dtype=np.intp))

    def money(
        self,
        amounts: npt.NDArray[np.float64],
        currency: npt.NDArray[np.intp],
        settings: KpiSettings,
    ) -> npt.NDArray[np.float64]:
        return to_reporting(amounts, currency, self.vocabulary.labels("currency"), settings)


@dataclass(frozen=True)
class Facts:
    deals: Columns
    """id, deal_key, slice codes, stage_code, staged, closed_won_at, amount_rc,
    activated_at, first_cash_at, contracted_rc, has_contract, cancelled"""
    invoices: Columns
    """id, deal_key, slice codes, legal_entity (text, for the posting SLA rules),
    credited, has_exception, issued_at, posted_at, paid_at, amount_rc, unpaid_rc,
    deal_amount_rc"""
    items: Columns
    """id, deal_key, slice codes, hours, rejected, consultant_key, quantity, approved_at,
    invoiced_at, paid_at, amount_rc, underbilled_rc"""
    vocabulary: Vocabulary
    """the codes of the deals, the slice values (`<dimension>_code` columns), the deal
    stages and the consultants"""


_CHILD_TABLES = ("projects", "contracts", "invoices", "items")
"""the tables with a deal_id, in the order of `_DealKeys`' deal-row fields"""


@dataclass(frozen=True)
class _DealKeys:
    """Every table's deal ids as vocabulary codes (each text hashed once), and per row of
    the project, contract, invoice and item tables the row of its deal (-1 for none)."""

    deals: npt.NDArray[np.intp]
    invoices: npt.NDArray[np.intp]
    items: npt.NDArray[np.intp]
    project_deal: npt.NDArray[np.intp]
    contract_deal: npt.NDArray[np.intp]
    invoice_deal: npt.NDArray[np.intp]
    item_deal: npt.NDArray[np.intp]

    @classmethod
    def of(cls, frames: StoreFrames | DealRows, vocabulary: Vocabulary) -> _DealKeys:
        # every table's deal ids coded in one pass: each distinct id is looked up once
        columns = [
            _text(frames.deals, "id"),
            *(_text(getattr(frames, t), "deal_id") for t in _CHILD_TABLES),
        ]
        bounds = np.cumsum([len(c) for c in columns])[:-1]
        deals, *children = np.split(vocabulary.encode("deal", np.concatenate(columns)), bounds)
        keys = dict(zip(_CHILD_TABLES, children, strict=True))
        rows_of = _rows_of(deals)
        return cls(
            deals,
            keys["invoices"],
            keys["items"],
            *(_deal_rows(rows_of, keys[t]) for t in _CHILD_TABLES),
        )


def _slices_of_deals(
    frames: StoreFrames | DealRows, keys: _DealKeys, coder: _Coder
) -> dict[str, npt.NDArray[np.intp]]:
    """Per deal row, the code of each slice dimension; a deal with no practice takes the
    practice of its first project (in row order) that has one."""
    deals, projects = frames.deals, frames.projects
    project_practice = coder.own("practice", projects, "practice")
    named = (keys.project_deal >= 0) & (project_practice >= 0)
    at, first = np.unique(keys.project_deal[named], return_index=True)
    from_project = np.full(len(keys.deals), -1, dtype=np.intp)
    from_project[at] = project_practice[named][first]
    practice = coder.own("practice", deals, "practice")
    return {
        "legal_entity": coder.codes("legal_entity", deals, "legal_entity"),
        "region": coder.codes("region", deals, "region"),
        "practice": coder.filled("practice", np.where(practice >= 0, practice, from_project)),
        "currency": coder.codes("currency", deals, "currency"),
    }


def _deal_facts(
    frames: StoreFrames | DealRows, settings: KpiSettings, keys: _DealKeys, coder: _Coder
) -> Columns:
    deals = frames.deals
    size = len(keys.deals)
    slices = _slices_of_deals(frames, keys, coder)
    contracts = frames.contracts
    contract_deal = keys.contract_deal
    found = contract_deal >= 0
    contract_currency = coder.codes("currency", contracts, "currency")
    value_rc = coder.money(_number(contracts, "value"), contract_currency, settings)
    has_contract = np.zeros(size, dtype=bool)
    has_contract[contract_deal[found]] = True
    stage = _text(deals, "stage").copy()
    staged = ~pd.isna(stage)
    stage[~staged] = ""
    columns: Columns = {
        "id": _text(deals, "id"),
        "deal_key": keys.deals,
        "closed_won_at": _number(deals, "closed_won_at"),
        "amount_rc": coder.money(_number(deals, "amount"), slices["currency"], settings),
        "activated_at": _min_at(keys.project_deal, _number(frames.projects, "activated_at"), size),
        "first_cash_at": _min_at(keys.invoice_deal, _number(frames.invoices, "paid_at"), size),
        "contracted_rc": np.bincount(
            contract_deal[found], weights=np.nan_to_num(value_rc[found]), minlength=size
        ),
        "has_contract": has_contract,
        "cancelled": stage == "cancelled",
        "staged": staged,
        "stage_code": coder.vocabulary.encode("stage", stage),
    }
    columns.update({f"{d}_code": codes for d, codes in slices.items()})
    return columns


def _invoice_facts(
    frames: StoreFrames | DealRows,
    deals: Columns,
    keys: _DealKeys,
    coder: _Coder,
    settings: KpiSettings,
) -> Columns:
    invoices = frames.invoices
    at = keys.invoice_deal
    entity = coder.own("legal_entity", invoices, "legal_entity")
    entity = np.where(
        entity >= 0, entity, coder.of_deal("legal_entity", deals["legal_entity_code"], at)
    )
    currency = coder.codes("currency", invoices, "currency")
    amount, paid = _number(invoices, "amount"), _number(invoices, "amount_paid")
    unpaid = np.clip(np.nan_to_num(amount) - np.nan_to_num(paid), 0.0, None)
    return {
        "id": _text(invoices, "id"),
        "deal_key": keys.invoices,
        "legal_entity": coder.vocabulary.labels("legal_entity")[entity],
        "legal_entity_code": entity,
        "region_code": coder.of_deal("region", deals["region_code"], at),
        "practice_code": coder.of_deal("practice", deals["practice_code"], at),
        "currency_code": currency,
        "issued_at": _number(invoices, "issued_at"),
        "posted_at": _number(invoices, "posted_at"),
        "paid_at": _number(invoices, "paid_at"),
        "credited": _text(invoices, "stage") == "credited",
        "has_exception": np.asarray(invoices["has_exception"], dtype=bool),
        "amount_rc": coder.money(amount, currency, settings),
        "unpaid_rc": coder.money(unpaid, currency, settings),
        "deal_amount_rc": _pick(deals["amount_rc"], at, np.nan),
    }


def _item_facts(
    frames: StoreFrames | DealRows,
    deals: Columns,
    keys: _DealKeys,
    invoices: Columns,
    coder: _Coder,
    settings: KpiSettings,
) -> Columns:
    items = frames.items
    at = keys.item_deal
    currency = coder.codes("currency", items, "currency")
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
        "deal_key": keys.items,
        "legal_entity_code": coder.of_deal("legal_entity", deals["legal_entity_code"], at),
        "region_code": coder.of_deal("region", deals["region_code"], at),
        "practice_code": coder.of_deal("practice", deals["practice_code"], at),
        "currency_code": currency,
        "quantity": quantity,
        "approved_at": _number(items, "approved_at"),
        "invoiced_at": _number(items, "invoiced_at"),
        "paid_at": _pick(invoices["paid_at"], invoice_at, np.nan),
        "amount_rc": coder.money(_number(items, "amount"), currency, settings),
        "underbilled_rc": coder.money(underbilled, currency, settings),
        "hours": _any_of(_text(items, "kind"), TIME_KINDS),
        "rejected": _text(items, "stage") == "rejected",
        "consultant_key": coder.vocabulary.encode("consultant", consultant),
    }


def build_facts(
    frames: StoreFrames | DealRows, settings: KpiSettings, vocabulary: Vocabulary | None = None
) -> Facts:
    """Facts from object frames; pass the vocabulary of facts these will be merged into."""
    vocabulary = vocabulary if vocabulary is not None else Vocabulary()
    coder = _Coder(vocabulary)
    keys = _DealKeys.of(frames, vocabulary)
    deals = _deal_facts(frames, settings, keys, coder)
    invoices = _invoice_facts(frames, deals, keys, coder, settings)
    items = _item_facts(frames, deals, keys, invoices, coder, settings)
    return Facts(deals=deals, invoices=invoices, items=items, vocabulary=vocabulary)
