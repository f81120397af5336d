"""The fact frames as sliceable tables, built once per computation and shared."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from kpis.definitions import BUSINESS_DIMENSIONS
from kpis.facts import Facts
from kpis.slicing import Table, Vocabulary


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
        deal_index = pd.Index(facts.deals["id"], dtype=object)
        return cls(
            deals=Table.of(facts.deals, BUSINESS_DIMENSIONS, facts.vocabulary),
            invoices=Table.of(facts.invoices, BUSINESS_DIMENSIONS, facts.vocabulary),
            items=Table.of(facts.items, BUSINESS_DIMENSIONS, facts.vocabulary),
            invoice_deal=np.asarray(
                deal_index.get_indexer(pd.Index(facts.invoices["deal_id"], dtype=object)),
                dtype=np.intp,
            ),
            vocabulary=facts.vocabulary,
        )
