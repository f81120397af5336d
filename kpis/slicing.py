"""Cutting rows into the slices every KPI is reported for, and the shared statistics.

A `Table` holds a frame's columns as numpy arrays and each slice dimension factorized
once; `Rows` is a set of positions in it. Filtering and slicing move positions only, so
a KPI over a window and twenty slices costs a few numpy passes, not pandas frames.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

ALL = "all"
UNKNOWN = "unknown"

Array = npt.NDArray[Any]


class Members:
    """The ids behind a value, gathered only when listed: most values are only counted."""

    def __init__(self, ids: Array, positions: npt.NDArray[np.intp]) -> None:
        self._ids = ids
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    @property
    def ids(self) -> Array:
        return self._ids

    @property
    def positions(self) -> npt.NDArray[np.intp]:
        return self._positions

    def __iter__(self) -> Iterator[str]:
        return iter(self.tolist())

    def head(self, count: int) -> list[str]:
        return list(map(str, self._ids[self._positions[:count]].tolist()))

    def tolist(self) -> list[str]:
        return list(map(str, self._ids[self._positions].tolist()))


def heads(listed: Sequence[Members], count: int) -> list[list[str]]:
    """`[m.head(count) for m in listed]`, with the plain `Members` over one id column
    gathered by one numpy take: a refresh lists the heads of some 700 members objects,
    and a take and a str() per id for each was a quarter of storing the snapshots."""
    out: list[list[str]] = [[] for _ in listed]
    by_column: dict[int, list[int]] = {}
    for i, members in enumerate(listed):
        if type(members) is Members:
            by_column.setdefault(id(members.ids), []).append(i)
        else:
            out[i] = members.head(count)
    for chosen in by_column.values():
        firsts = [listed[i].positions[:count] for i in chosen]
        ids = listed[chosen[0]].ids[np.concatenate(firsts)].tolist()
        if set(map(type, ids)) - {str}:  # ids of other types (message ids): as text
            ids = list(map(str, ids))
        start = 0
        for i, first in zip(chosen, firsts, strict=True):
            end = start + len(first)
            out[i] = ids[start:end]
            start = end
    return out


class LiveMembers(Members):
    """Members among rows some of which have since been replaced (`live` is False for
    those): listed lazily, counted by the caller, who keeps the count up to date."""

    def __init__(
        self, ids: Array, positions: npt.NDArray[np.intp], live: npt.NDArray[np.bool_], count: int
    ) -> None:
        super().__init__(ids, positions)
        self._live = live
        self._count = count

    def __len__(self) -> int:
        return self._count

    def head(self, count: int) -> list[str]:
        found: list[str] = []
        step = max(count * 4, 64)
        for start in range(0, len(self._positions), step):
            chunk = self._positions[start : start + step]
            chunk = chunk[self._live[chunk]]
            found += [str(i) for i in self._ids[chunk[: count - len(found)]].tolist()]
            if len(found) >= count:
                break
        return found

    def tolist(self) -> list[str]:
        kept = self._positions[self._live[self._positions]]
        return [str(i) for i in self._ids[kept].tolist()]


class ChainedMembers(Members):
    """The members of several parts of one value, one after the other."""

    def __init__(self, parts: Sequence[Members]) -> None:
        super().__init__(np.zeros(0, dtype=object), np.zeros(0, dtype=np.intp))
        self._parts = [p for p in parts if len(p)]

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    def head(self, count: int) -> list[str]:
        found: list[str] = []
        for part in self._parts:
            if len(found) >= count:
                break
            found += part.head(count - len(found))
        return found

    def tolist(self) -> list[str]:
        return [i for p in self._parts for i in p.tolist()]


NO_MEMBERS = Members(np.zeros(0, dtype=object), np.zeros(0, dtype=np.intp))


class Vocabulary:
    """Stable integer codes for the values of the slice dimensions, shared by every fact
    table and grown as new values appear, so no refresh has to factorize text again."""

    def __init__(self) -> None:
        self._codes: dict[str, dict[object, int]] = {}
        self._labels: dict[str, list[str]] = {}

    def encode(self, dimension: str, values: Array, na: int | None = None) -> npt.NDArray[np.intp]:
        """The codes of `values` (new values get new codes); with `na`, a missing value
        (None, NaN) gets that code instead of one of its own."""
        codes = self._codes.setdefault(dimension, {})
        labels = self._labels.setdefault(dimension, [])
        local, uniques = pd.factorize(values, use_na_sentinel=na is not None)
        # known values looked up and new ones added by C-level dict calls, not a Python
        # loop per value: a full refresh encodes a million deal ids
        found = np.array([*map(codes.get, uniques), -1 if na is None else na], dtype=object)
        new = np.flatnonzero(found[:-1] == None)  # noqa: E711 (per element)
        if len(new):
            added = uniques[new]
            fresh = range(len(labels), len(labels) + len(added))
            codes.update(zip(added, fresh, strict=True))
            labels.extend(map(str, added))
            found[new] = fresh
        if not len(local):
            return np.zeros(0, np.intp)
        # a missing value's local code is -1: the last entry, `na`
        return np.asarray(found.astype(np.intp)[np.asarray(local, dtype=np.intp)])

    def add(self, dimension: str, value: str) -> int:
        """The code of `value`, given one if it has none yet."""
        return int(self.encode(dimension, np.array([value], dtype=object))[0])

    def code(self, dimension: str, value: str) -> int:
        """The code of `value`, or -1 if it never appeared."""
        return self._codes.get(dimension, {}).get(value, -1)

    def labels(self, dimension: str) -> Array:
        return np.asarray(self._labels.get(dimension, []), dtype=object)


@dataclass(frozen=True)
class Table:
    columns: dict[str, Array]
    codes: dict[str, npt.NDArray[np.intp]]
    labels: dict[str, Array]

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        dimensions: Sequence[str],
        vocabulary: Vocabulary | None = None,
        keep: Sequence[str] | None = None,
    ) -> Table:
        """Columns as arrays (only those in `keep` if given); a dimension is read from
        `<dimension>_code` when the frame carries codes of `vocabulary`, else factorized."""
        names = frame.columns if keep is None else [c for c in keep if c in frame.columns]
        columns = {str(c): frame[c].to_numpy() for c in names}
        codes: dict[str, npt.NDArray[np.intp]] = {}
        labels: dict[str, Array] = {}
        for dimension in dimensions:
            coded = f"{dimension}_code"
            if vocabulary is not None and coded in frame.columns:
                codes[dimension] = np.asarray(frame[coded].to_numpy(), dtype=np.intp)
                labels[dimension] = vocabulary.labels(dimension)
            elif dimension in frame.columns:
                code, uniques = pd.factorize(frame[dimension], sort=True, use_na_sentinel=False)
                codes[dimension] = np.asarray(code, dtype=np.intp)
                labels[dimension] = np.asarray(uniques, dtype=object)
        return cls(columns, codes, labels)

    @classmethod
    def coded(
        cls,
        columns: dict[str, Array],
        dimensions: Sequence[str],
        vocabulary: Vocabulary,
        keep: Sequence[str],
    ) -> Table:
        """The columns in `keep`, sliced by the `<dimension>_code` columns of `vocabulary`."""
        codes = {d: np.asarray(columns[f"{d}_code"], dtype=np.intp) for d in dimensions}
        labels = {d: vocabulary.labels(d) for d in dimensions}
        return cls({c: columns[c] for c in keep if c in columns}, codes, labels)

    @classmethod
    def factorized(cls, columns: dict[str, Array], dimensions: Sequence[str]) -> Table:
        """The columns, sliced by the `dimensions` among them (`unknown` where none, codes
        in label order), without a pandas frame: for small tables, whose frame overhead
        would cost more than their KPIs."""
        codes: dict[str, npt.NDArray[np.intp]] = {}
        labels: dict[str, Array] = {}
        for dimension in dimensions:
            if dimension not in columns:
                continue
            values = np.asarray(columns[dimension], dtype=object).copy()
            values[pd.isna(values)] = UNKNOWN
            code, uniques = pd.factorize(values, sort=True)
            codes[dimension] = np.asarray(code, dtype=np.intp)
            labels[dimension] = np.asarray([str(u) for u in uniques], dtype=object)
        return cls(columns, codes, labels)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def keep_and_append(self, keep: npt.NDArray[np.bool_], fresh: Table) -> Table:
        """The rows where `keep` holds, then every row of `fresh` (same columns); labels
        come from `fresh`, built later from the same growing vocabulary."""
        if not len(fresh):
            columns = {name: values[keep] for name, values in self.columns.items()}
            codes = {name: values[keep] for name, values in self.codes.items()}
            return Table(columns, codes, {**self.labels, **fresh.labels})
        columns = {
            name: np.concatenate([values[keep], fresh.columns[name]])
            for name, values in self.columns.items()
        }
        codes = {
            name: np.concatenate([values[keep], fresh.codes[name]])
            for name, values in self.codes.items()
        }
        return Table(columns, codes, {**self.labels, **fresh.labels})

    def take(self, keep: npt.NDArray[np.bool_]) -> Table:
        """The rows where `keep` holds."""
        columns = {name: values[keep] for name, values in self.columns.items()}
        codes = {name: values[keep] for name, values in self.codes.items()}
        return Table(columns, codes, dict(self.labels))

    def rows(self) -> Rows:
        size = len(next(iter(self.columns.values()))) if self.columns else 0
        return Rows(self, np.arange(size, dtype=np.intp))


@dataclass(frozen=True)
class Rows:
    table: Table
    positions: npt.NDArray[np.intp]

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, column: str) -> Array:
        return self.table.columns[column][self.positions]

    def where(self, mask: npt.NDArray[np.bool_]) -> Rows:
        return Rows(self.table, self.positions[mask])

    def members(self, mask: npt.NDArray[np.bool_] | None = None, column: str = "id") -> Members:
        """The ids of these rows (or of those where `mask` holds), for drill-down."""
        positions = self.positions if mask is None else self.positions[mask]
        return Members(self.table.columns[column], positions)

    def slices(self, dimensions: Sequence[str]) -> Iterator[tuple[str, str, Rows]]:
        """`("all", "all", rows)` then one `(dimension, value, rows)` per value present."""
        yield ALL, ALL, self
        if not len(self):
            return
        for dimension in dimensions:
            if dimension not in self.table.codes:
                continue
            codes = self.table.codes[dimension][self.positions]
            # Few distinct values: 16-bit codes let numpy's stable sort run as a radix sort.
            narrow = codes.astype(np.int16) if len(self.table.labels[dimension]) < 2**15 else codes
            order = np.argsort(narrow, kind="stable")
            bounds = np.flatnonzero(np.diff(codes[order])) + 1
            labels = self.table.labels[dimension]
            for chunk in np.split(order, bounds):
                yield (
                    dimension,
                    str(labels[codes[chunk[0]]]),
                    Rows(self.table, self.positions[chunk]),
                )


def _grouped(
    groups: npt.NDArray[np.intp], items: npt.NDArray[np.intp], count: int
) -> npt.NDArray[np.intp]:
    """`items` stably sorted by their `groups` (fewer than `count`): with 16-bit groups
    numpy's stable sort runs as a radix sort."""
    narrow = groups.astype(np.int16) if count < 2**15 else groups
    return items[np.argsort(narrow, kind="stable")]


class Slices:
    """Rows cut into every slice at once: `all`, then each value present of each dimension
    (in code order, as `Rows.slices` yields them). The rows of all slices are laid out one
    slice after the other (`entries`), so a count, sum or percentile for every slice costs
    a few numpy calls, not a few per slice."""

    def __init__(self, rows: Rows, dimensions: Sequence[str]) -> None:
        table, size = rows.table, len(rows)
        keys: list[tuple[str, str]] = [(ALL, ALL)]
        everything = np.arange(size, dtype=np.intp)
        layers = [np.zeros(size, dtype=np.intp)]  # per dimension, the slice of each row
        row_parts, slice_parts, counts = [everything], [layers[0]], [np.array([size])]
        for dimension in dimensions if size else ():
            if dimension not in table.codes:
                continue
            codes = table.codes[dimension][rows.positions]
            labels = table.labels[dimension]
            per_code = np.bincount(codes, minlength=len(labels))
            present = np.flatnonzero(per_code)
            slice_of = np.zeros(len(per_code), dtype=np.intp)
            slice_of[present] = np.arange(len(keys), len(keys) + len(present))
            layer = slice_of[codes]
            order = _grouped(codes, everything, len(labels))
            layers.append(layer)
            row_parts.append(order)
            slice_parts.append(layer[order])
            counts.append(per_code[present])
            keys += [(dimension, str(labels[c])) for c in present.tolist()]
        self.keys = keys
        self.rows = rows
        self._layers = layers
        self.row = np.concatenate(row_parts)
        """per entry, its row (an index into `rows`)"""
        self.slice = np.concatenate(slice_parts)
        """per entry, its slice (an index into `keys`)"""
        self.counts = np.concatenate(counts)
        self.bounds: list[int] = np.concatenate([[0], np.cumsum(self.counts)]).tolist()
        self.positions = rows.positions[self.row]
        """per entry, its position in the table"""

    def __len__(self) -> int:
        return len(self.keys)

    def entries(self, values: Array) -> Array:
        """Per-row `values` (aligned with `rows`) laid out per entry."""
        return np.asarray(values)[self.row]

    def count(self, mask: Array) -> npt.NDArray[np.intp]:
        """Per slice, the rows where `mask` (per entry) holds."""
        return np.bincount(self.slice[mask], minlength=len(self.keys))

    def sum(self, values: Array) -> npt.NDArray[np.float64]:
        """Per slice, the sum of `values` (per entry), NaN left out."""
        weights = zero_nan(values)
        return np.asarray(
            np.bincount(self.slice, weights=weights, minlength=len(self.keys)), dtype=np.float64
        )

    def by_group(
        self, group: npt.NDArray[np.intp], groups: int, values: Array | None = None
    ) -> npt.NDArray[np.float64]:
        """Per slice and group, the sum of `values` (per entry, NaN left out), or the
        number of entries without `values`: shape (slices, groups), from one pass. An
        entry's group is in `group` (0 to groups - 1; -1: in none)."""
        inside = group >= 0
        index = self.slice[inside] * groups + group[inside]
        weights = None if values is None else zero_nan(values)[inside]
        sums = np.bincount(index, weights=weights, minlength=len(self.keys) * groups)
        return np.asarray(sums, dtype=np.float64).reshape(len(self.keys), groups)

    def members(self, k: int, mask: Array | None = None, column: str = "id") -> Members:
        """The ids of slice `k` (of its rows where `mask`, per entry, holds)."""
        start, end = self.bounds[k], self.bounds[k + 1]
        positions = self.positions[start:end]
        if mask is not None:
            positions = positions[mask[start:end]]
        return Members(self.rows.table.columns[column], positions)

    def percentiles(self, values: Array, qs: Sequence[float]) -> list[list[float | None]]:
        """Per q, per slice, the q-th quantile of `values` (per row of `rows`, NaN left
        out), with linear interpolation computed as numpy's `percentile` computes it."""
        data = np.asarray(values, dtype="float64")
        valid = np.bincount(self.slice[~np.isnan(data)[self.row]], minlength=len(self.keys))
        if not valid.any():
            return [[None] * len(self.keys) for _ in qs]
        # rows by value (NaN last), then per dimension grouped by slice keeping that order
        by_value = np.argsort(data, kind="stable")
        parts = [by_value]
        for layer in self._layers[1:]:
            parts.append(_grouped(layer[by_value], by_value, len(self.keys)))
        ordered = data[np.concatenate(parts)]
        start = np.asarray(self.bounds[:-1], dtype=np.intp)
        found = (valid > 0).tolist()
        last = np.maximum(valid - 1, 0)
        out: list[list[float | None]] = []
        for q in qs:
            virtual = last * q
            below = np.floor(virtual)
            top = virtual >= last  # numpy takes the last value, with gamma from index -1
            before = np.where(top, last, below).astype(np.intp)
            after = np.where(top, last, np.minimum(before + 1, last))
            gamma = virtual - np.where(top, -1.0, below)
            a, b = ordered[start + before], ordered[start + after]
            diff = b - a
            result = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma).tolist()
            out.append([r if f else None for r, f in zip(result, found, strict=True)])
        return out


def percentile(values: Array, q: float) -> float | None:
    """The q-th percentile with linear interpolation between closest ranks (as
    PostgreSQL's percentile_cont and pandas' quantile); None for no values."""
    data = np.asarray(values, dtype="float64")
    data = data[~np.isnan(data)]
    if data.size == 0:
        return None
    return float(np.percentile(data, q * 100.0, method="linear"))


def p50_p90(values: Array) -> tuple[float | None, float | None]:
    """`percentile(values, 0.5), percentile(values, 0.9)` in one pass over the values."""
    data = np.asarray(values, dtype="float64")
    data = data[~np.isnan(data)]
    if data.size == 0:
        return None, None
    p50, p90 = np.percentile(data, [50.0, 90.0], method="linear")
    return float(p50), float(p90)


def zero_nan(values: Array) -> npt.NDArray[np.float64]:
    """Floats with 0 for NaN: what `np.nan_to_num` gives for money and hours (never
    infinite), in one pass instead of its four."""
    data = np.asarray(values, dtype="float64")
    return np.where(np.isnan(data), 0.0, data)


def total(values: Array) -> float:
    """Sum that leaves out NaN (amounts in a currency with no rate)."""
    return float(np.nansum(np.asarray(values, dtype="float64")))


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def in_window(times: Array, now: float, seconds: float) -> npt.NDArray[np.bool_]:
    """`now - seconds < t <= now` (NaN is never inside)."""
    t = np.asarray(times, dtype="float64")
    with np.errstate(invalid="ignore"):
        return (t > now - seconds) & (t <= now)


def at_or_before(times: Array, now: float) -> npt.NDArray[np.bool_]:
    t = np.asarray(times, dtype="float64")
    with np.errstate(invalid="ignore"):
        return t <= now
