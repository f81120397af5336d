"""The fact frames as sliceable tables: built once per full refresh, then kept by the
refresher, which swaps in the rows of changed deals (`replace_deals`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kpis.definitions import BUSINESS_DIMENSIONS
from kpis.facts import Facts
from kpis.slicing import Table, Vocabulary


def keys_in(keys: npt.NDArray[np.intp], wanted: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
    """Per key, whether it is among `wanted` (deal keys are small non-negative integers:
    a flag per key, no hashing)."""
    flags = np.zeros(int(max(keys.max(initial=-1), wanted.max(initial=-1))) + 1, dtype=bool)
    flags[wanted] = True
    return flags[keys]


def invoice_deal_rows(deals: Table, invoices: Table) -> npt.NDArray[np.intp]:
    deal_keys = deals.columns["deal_key"].astype(np.intp)
    invoice_keys = invoices.columns["deal_key"].astype(np.intp)
    size = int(max(deal_keys.max(initial=-1), invoice_keys.max(initial=-1))) + 1
    row_of_key = np.full(size, -1, dtype=np.intp)
    row_of_key[deal_keys] = np.arange(len(deal_keys), dtype=np.intp)
    return row_of_key[invoice_keys]


# The fact columns the KPIs read (slices are kept as codes): fewer columns to copy when
# the rows of changed deals are swapped in.
DEAL_COLUMNS = (
    "id",
    "deal_key",
    "staged",
    "stage_code",
    "closed_won_at",
    "activated_at",
    "first_cash_at",
    "amount_rc",
    "contracted_rc",
    "has_contract",
    "cancelled",
)
INVOICE_COLUMNS = (
    "id",
    "deal_key",
    "legal_entity",
    "issued_at",
    "posted_at",
    "paid_at",
    "credited",
    "has_exception",
    "amount_rc",
    "unpaid_rc",
    "deal_amount_rc",
)
ITEM_COLUMNS = (
    "id",
    "deal_key",
    "hours",
    "rejected",
    "quantity",
    "approved_at",
    "invoiced_at",
    "paid_at",
    "amount_rc",
    "underbilled_rc",
    "consultant_key",
)


@dataclass(frozen=True)
class FactTables:
    deals: Table
    invoices: Table
    items: Table
    invoice_deal: npt.NDArray[np.intp]
    """per invoice, the row of its deal in `deals` (-1 if the deal is unknown)"""
    vocabulary: Vocabulary

    @classmethod
    def of(cls, facts: Facts) -> FactTables:
        vocabulary = facts.vocabulary
        deals = Table.coded(facts.deals, BUSINESS_DIMENSIONS, vocabulary, DEAL_COLUMNS)
        invoices = Table.coded(facts.invoices, BUSINESS_DIMENSIONS, vocabulary, INVOICE_COLUMNS)
        items = Table.coded(facts.items, BUSINESS_DIMENSIONS, vocabulary, ITEM_COLUMNS)
        return cls(deals, invoices, items, invoice_deal_rows(deals, invoices), facts.vocabulary)

    def replace_deals(self, fresh: FactTables, deal_ids: Iterable[str]) -> FactTables:
        """These tables with every row of `deal_ids` replaced by the rows of `fresh`
        (built with the same vocabulary). Costs a copy of the kept columns, no joins."""
        keys = [self.vocabulary.code("deal", d) for d in deal_ids]
        changed = np.asarray([k for k in keys if k >= 0], dtype=np.intp)

        def kept(table: Table) -> npt.NDArray[np.bool_]:
            column = table.columns["deal_key"].astype(np.intp)
            return ~keys_in(column, changed)

        deals = self.deals.keep_and_append(kept(self.deals), fresh.deals)
        invoices = self.invoices.keep_and_append(kept(self.invoices), fresh.invoices)
        items = self.items.keep_and_append(kept(self.items), fresh.items)
        return FactTables(
            deals, invoices, items, invoice_deal_rows(deals, invoices), self.vocabulary
        )
