"""What makes a refresh after a few new events cheap: the fact rows split into *settled*
deals, whose KPI contributions can no longer change as time moves on, and the rest.

A deal is settled at a moment `since` when every timestamp of the deal, its invoices and
its billable items is unset or older than `since - horizon` (the longest window, at
least the 90 days of DSO and backlog burn), it is not waiting for activation, and none of
its items is unbilled WIP. From then on, for every `now >= since` and as long as the store
does not change the deal:

- no row of it falls in any window (windows end at `now` and reach back at most
  `horizon`), so the windowed KPIs and percentiles never see it;
- its point-in-time contributions (funnel stage and value, backlog, open AR) are fixed:
  every invoice of it is issued and paid (or not) for good before `since`.

So the refresher keeps the sums of the settled deals' point-in-time contributions per
slice (kpis.parts) and computes everything else over the remaining rows only. A deal with
new lifecycle events leaves the settled set (its parts are subtracted, its rows marked
replaced) and its rebuilt rows join the rest. The split is redone from the kept rows
(no store read) when `now` is a day past it or the rest has doubled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from kpis.cash import DSO_DAYS, open_ar_parts
from kpis.definitions import BUSINESS_DIMENSIONS
from kpis.parts import Parts, subtract
from kpis.pipeline import pipeline_parts
from kpis.slicing import LiveMembers, Rows, Table
from kpis.tables import FactTables, invoice_deal_rows, keys_in
from kpis.windows import Window

DAY = 86400.0
RESPLIT_AFTER = DAY
"""Redo the split once `now` is this far past it: deals settle as time moves on."""
RESPLIT_GROWTH = 2.0
"""... or once the unsettled rows have grown this much (deals that changed since)."""


def horizon_seconds(windows: Iterable[Window]) -> float:
    return max([w.seconds for w in windows] + [DSO_DAYS * DAY])


def _done(times: npt.NDArray[np.float64], before: float) -> npt.NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return np.asarray(np.isnan(times) | (times <= before), dtype=bool)


def _keys(table: Table) -> npt.NDArray[np.intp]:
    return np.asarray(table.columns["deal_key"], dtype=np.intp)


def settled_deals(tables: FactTables, now: float, horizon: float) -> npt.NDArray[np.bool_]:
    """Per row of `tables.deals`: whether the deal is settled as of `now`."""
    before = now - horizon

    def times(table: Table, column: str) -> npt.NDArray[np.float64]:
        return np.asarray(table.columns[column], dtype="float64")

    deals, invoices, items = tables.deals, tables.invoices, tables.items
    won, activated = times(deals, "closed_won_at"), times(deals, "activated_at")
    pending = ~np.isnan(won) & np.isnan(activated) & ~deals.columns["cancelled"].astype(bool)
    deal_ok = _done(activated, before) & _done(times(deals, "first_cash_at"), before) & ~pending
    invoice_ok = _done(times(invoices, "issued_at"), before) & _done(
        times(invoices, "paid_at"), before
    )
    approved, invoiced = times(items, "approved_at"), times(items, "invoiced_at")
    with np.errstate(invalid="ignore"):
        billed = invoiced <= now
    wip = ~np.isnan(approved) & ~items.columns["rejected"].astype(bool) & ~billed
    item_ok = (
        _done(approved, before)
        & _done(invoiced, before)
        & _done(times(items, "paid_at"), before)
        & ~wip
    )
    unsettled = np.concatenate(
        [_keys(deals)[~deal_ok], _keys(invoices)[~invoice_ok], _keys(items)[~item_ok]]
    )
    return ~keys_in(_keys(deals), unsettled)


def _tables(deals: Table, invoices: Table, items: Table, base: FactTables) -> FactTables:
    return FactTables(deals, invoices, items, invoice_deal_rows(deals, invoices), base.vocabulary)


def settled_parts_of(
    tables: FactTables, deals: Rows, invoices: npt.NDArray[np.intp], now: float
) -> Parts:
    """The point-in-time parts of some deal rows (and their invoice rows) of `tables`."""
    dims = BUSINESS_DIMENSIONS
    return {
        **pipeline_parts(tables, deals, invoices, now, dims),
        **open_ar_parts(Rows(tables.invoices, invoices), now, dims),
    }


@dataclass(frozen=True)
class KeyIndex:
    """The rows of a table by deal key, sorted once: finding the rows of a few deals costs
    a binary search each, not a pass over the table."""

    order: npt.NDArray[np.intp]
    keys: npt.NDArray[np.intp]

    @classmethod
    def of(cls, table: Table) -> KeyIndex:
        keys = _keys(table)
        order = np.argsort(keys, kind="stable")
        return cls(np.asarray(order, dtype=np.intp), keys[order])

    def rows(self, wanted: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
        low = np.searchsorted(self.keys, wanted, side="left")
        high = np.searchsorted(self.keys, wanted, side="right")
        if not len(wanted) or not (high > low).any():
            return np.zeros(0, dtype=np.intp)
        return np.concatenate([self.order[a:b] for a, b in zip(low, high, strict=True) if b > a])


@dataclass
class SplitFacts:
    """The fact rows split at `since` into settled deals (kept with their parts) and the
    rest (`active`, recomputed at every refresh)."""

    since: float
    horizon: float
    active: FactTables
    settled: FactTables
    parts: Parts
    live: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    """per settled table, the rows not replaced since the split"""
    lookup: dict[str, KeyIndex] = field(default_factory=dict)
    """per settled table, its rows by deal key"""
    active_at_split: int = 0

    @classmethod
    def split(cls, tables: FactTables, now: float, horizon: float) -> SplitFacts:
        keep = settled_deals(tables, now, horizon)
        keys = _keys(tables.deals)[keep]
        settled_invoices = keys_in(_keys(tables.invoices), keys)
        settled_items = keys_in(_keys(tables.items), keys)
        settled = _tables(
            tables.deals.take(keep),
            tables.invoices.take(settled_invoices),
            tables.items.take(settled_items),
            tables,
        )
        active = _tables(
            tables.deals.take(~keep),
            tables.invoices.take(~settled_invoices),
            tables.items.take(~settled_items),
            tables,
        )
        parts = settled_parts_of(
            settled,
            settled.deals.rows(),
            np.arange(len(settled.invoices), dtype=np.intp),
            now,
        )
        live = {
            "deals": np.ones(len(settled.deals), dtype=bool),
            "invoices": np.ones(len(settled.invoices), dtype=bool),
            "items": np.ones(len(settled.items), dtype=bool),
        }
        lookup = {
            "deals": KeyIndex.of(settled.deals),
            "invoices": KeyIndex.of(settled.invoices),
            "items": KeyIndex.of(settled.items),
        }
        return cls(now, horizon, active, settled, parts, live, lookup, len(active.deals))

    def due_for_split(self, now: float) -> bool:
        """Whether `now` (or the growth of the active rows) calls for a new split."""
        return (
            now < self.since
            or now - self.since > RESPLIT_AFTER
            or len(self.active.deals) > RESPLIT_GROWTH * self.active_at_split + 1000
        )

    def replace_deals(self, rebuilt: FactTables, deal_ids: Iterable[str]) -> None:
        """Every row of `deal_ids` replaced by the rows of `rebuilt` (same vocabulary):
        settled ones leave the settled set, the rebuilt rows join the active ones."""
        ids = list(deal_ids)
        codes = [self.active.vocabulary.code("deal", d) for d in ids]
        changed = np.asarray([c for c in codes if c >= 0], dtype=np.intp)
        settled = self.settled
        gone = {}
        for name in ("deals", "invoices", "items"):
            mask = np.zeros(len(self.live[name]), dtype=bool)
            mask[self.lookup[name].rows(changed)] = True
            gone[name] = self.live[name] & mask
        if gone["deals"].any() or gone["invoices"].any():
            removed = settled_parts_of(
                settled,
                Rows(settled.deals, np.flatnonzero(gone["deals"])),
                np.flatnonzero(gone["invoices"]),
                self.since,
            )
            subtract(self.parts, removed)
        for name, mask in gone.items():
            self.live[name] = self.live[name] & ~mask
        self.active = self.active.replace_deals(rebuilt, ids)

    def settled_parts(self) -> Parts:
        """The kept parts, their members limited to rows not replaced since."""
        out: Parts = {}
        for key, part in self.parts.items():
            table = getattr(self.settled, part.table)
            ids = table.columns["id"]
            members = LiveMembers(
                ids, part.members.positions, self.live[part.table], part.member_count
            )
            out[key] = replace(part, members=members)
        return out

    def merged(self) -> FactTables:
        """Every current fact row, settled or not, as one set of tables."""
        settled, active = self.settled, self.active
        return _tables(
            settled.deals.keep_and_append(self.live["deals"], active.deals),
            settled.invoices.keep_and_append(self.live["invoices"], active.invoices),
            settled.items.keep_and_append(self.live["items"], active.items),
            active,
        )
