"""What the reconciliation comparisons share: the grace periods, the result, and the
vectorised helpers that build one `Finding` per mismatching record. Money is in integer
cents; a grace is what a sync may still legitimately be doing (the stage SLAs of
DESIGN.md), counted from the source record's own time to `now`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from probes.base import Finding

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Grace:
    """How long each sync may legitimately lag its source before a gap is drift."""

    intake: dt.timedelta = dt.timedelta(hours=24)  # won deal -> contract request in CLM
    provisioning: dt.timedelta = dt.timedelta(hours=24)  # executed -> customer, project
    scheduling: dt.timedelta = dt.timedelta(hours=48)  # executed -> billing schedule
    amendment: dt.timedelta = dt.timedelta(hours=24)  # amendment -> schedule updated
    charge: dt.timedelta = dt.timedelta(hours=24)  # approved billable -> charge
    billing_cycle: dt.timedelta = dt.timedelta(days=31 + 3)  # charge -> invoiced (cycle + 3 d)
    posting: dt.timedelta = dt.timedelta(hours=1)  # invoiced -> posted (the posting SLA)
    cash: dt.timedelta = dt.timedelta(hours=24)  # ERP payment -> cash collected


@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for finding in self.findings:
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
        return {"by_kind": kinds, "by_entity_currency": self.summary, **self.counts}


def money(value: Any) -> Decimal | None:
    """Integer cents as a Decimal amount."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return (Decimal(int(value)) / 100).quantize(CENT)


def plain_value(value: Any) -> Any:
    """A cell as JSON: NA as None, numpy scalars as Python, timestamps as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def findings(
    frame: pd.DataFrame,
    kind: str,
    object_type: str,
    id_column: str,
    system: str,
    *,
    deal: str | None = "deal_id",
    amount: str | None = None,
    currency: str | None = "currency",
    detail: Mapping[str, str] | None = None,
    money_detail: Mapping[str, str] | None = None,
) -> list[Finding]:
    """One Finding per row of `frame` (the mismatches only). `detail` maps a detail key to
    a column; `money_detail` the same for columns in cents, shown as amounts."""
    if frame.empty:
        return []
    plain = detail or {}
    monies = money_detail or {}
    columns = [id_column, *plain.values(), *monies.values()]
    for extra in (deal, amount, currency):
        if extra is not None:
            columns.append(extra)
    values = {col: [plain_value(v) for v in frame[col].tolist()] for col in dict.fromkeys(columns)}
    amounts = {col: [money(v) for v in values[col]] for col in monies.values()}
    if amount is not None and amount not in amounts:
        amounts[amount] = [money(v) for v in values[amount]]
    out = []
    for i in range(len(frame)):
        info: dict[str, Any] = {key: values[col][i] for key, col in plain.items()}
        for key, col in monies.items():
            value = amounts[col][i]
            info[key] = None if value is None else str(value)
        out.append(
            Finding(
                kind=kind,
                object_type=object_type,
                object_id=values[id_column][i],
                deal_id=values[deal][i] if deal is not None else None,
                system=system,
                amount=amounts[amount][i] if amount is not None else None,
                currency=values[currency][i] if currency is not None else None,
                detail=info,
            )
        )
    return out


def differs(left: pd.Series, right: pd.Series) -> pd.Series:
    """Row-wise inequality where a missing value equals only a missing value."""
    if pd.api.types.is_numeric_dtype(left.dtype) and pd.api.types.is_numeric_dtype(right.dtype):
        unequal = ne(floats(left), floats(right))
    else:
        unequal = ne(left.to_numpy(dtype=object), right.to_numpy(dtype=object))
    return pd.Series(unequal, index=left.index)


def summary(
    sides: Mapping[str, pd.DataFrame],
    keys: Sequence[str] = ("legal_entity", "currency"),
    amount: str | None = "amount",
) -> list[dict[str, Any]]:
    """Count (and amount) per legal entity and currency on each side, side by side."""
    merged: pd.DataFrame | None = None
    for name, frame in sides.items():
        grouped = frame.groupby(list(keys), dropna=False)
        # a frame already aggregated (e.g. per project) carries its row counts in `_n`
        sizes = grouped["_n"].sum() if "_n" in frame.columns else grouped.size()
        part = sizes.rename(f"{name}_count").to_frame()
        if amount is not None and amount in frame.columns:
            part[f"{name}_amount"] = grouped[amount].sum(min_count=1)
        merged = part if merged is None else merged.join(part, how="outer")
    if merged is None:
        return []
    out = []
    for key, row in merged.sort_index().iterrows():
        values = key if isinstance(key, tuple) else (key,)
        entry: dict[str, Any] = {k: plain_value(v) for k, v in zip(keys, values, strict=True)}
        for column, value in row.items():
            name = str(column)
            if name.endswith("_amount"):
                amt = money(value)
                entry[name] = None if amt is None else str(amt)
            else:
                entry[name] = 0 if pd.isna(value) else int(value)
        out.append(entry)
    return out


def duplicated(frame: pd.DataFrame, keys: list[str], id_column: str) -> pd.DataFrame:
    """Rows sharing `keys` with another row, one per key: its first row, with every id
    under `ids` (sorted) and their number under `times`. Keys are counted as integer
    codes; only the doubled rows are ever grouped."""
    combined = np.zeros(len(frame), dtype=np.int64)
    valid = np.ones(len(frame), dtype=bool)
    for key in keys:
        codes, uniques = pd.factorize(frame[key])
        valid &= codes >= 0
        combined = combined * (len(uniques) + 1) + codes + 1
        combined, _ = pd.factorize(combined)  # keep the product small
    counts = np.bincount(combined[valid], minlength=1) if valid.any() else np.zeros(1, int)
    doubled = valid & (counts[np.where(valid, combined, 0)] > 1)
    dup = frame[doubled]
    if dup.empty:
        return dup.assign(ids=pd.Series(dtype=object), times=pd.Series(dtype="int64"))
    ordered = dup.sort_values(id_column)
    listed = ordered.groupby(keys, sort=False)[id_column].agg(list).rename("ids")
    first = ordered.drop_duplicates(keys).merge(listed, left_on=keys, right_index=True)
    return first.assign(times=first.ids.str.len())


def per_entity(
    entity: pd.Series, entity_at: np.ndarray, currency: pd.Series, amounts: np.ndarray
) -> pd.DataFrame:
    """Rows aggregated per (legal entity row, currency) by integer keys: `entity_at` is
    each row's position in `entity` (-1: unknown), so no row's text is grouped. The result
    (`_n` rows, their `amount`) is what `summary` groups by legal entity and currency."""
    cur_codes, cur_names = pd.factorize(currency)
    width = len(cur_names) + 1
    keys = (entity_at + 1) * width + (cur_codes + 1)
    size = (len(entity) + 1) * width
    counts = np.bincount(keys, minlength=size)
    sums = np.bincount(keys, weights=np.nan_to_num(amounts), minlength=size)
    used = np.flatnonzero(counts)
    names = np.concatenate([[None], np.asarray(cur_names, dtype=object)])
    return pd.DataFrame(
        {
            "legal_entity": pick(entity, used // width - 1),
            "currency": names[used % width],
            "_n": counts[used],
            "amount": sums[used],
        }
    )


def by_text(entity: pd.Series, currency: pd.Series, amounts: np.ndarray) -> pd.DataFrame:
    """`per_entity` for rows that carry their legal entity as text."""
    codes, names = pd.factorize(entity)
    return per_entity(pd.Series(names, dtype=object), codes, currency, amounts)


def past_grace(moments: pd.Series, grace: dt.timedelta, now: pd.Timestamp) -> pd.Series:
    """Past its grace: a missing time counts as long past (nothing says it is recent)."""
    due = (moments + grace <= now).to_numpy(dtype=bool, na_value=False)
    return pd.Series(due | moments.isna().to_numpy(), index=moments.index)


def positions(values: pd.Series, keys: pd.Series) -> np.ndarray:
    """For each value, the row of `keys` holding it (its first), or -1: a hash join of ids
    by one factorization of both sides."""
    return positions_many(keys, values)[0]


def positions_many(keys: pd.Series, *values: pd.Series) -> list[np.ndarray]:
    """`positions(v, keys)` for each of `values`, by one factorization of them all."""
    codes, uniques = pd.factorize(pd.concat([keys, *values], ignore_index=True))
    k = len(keys)
    where = np.full(len(uniques) + 1, -1, dtype=np.int64)
    where[codes[:k][::-1]] = np.arange(k - 1, -1, -1, dtype=np.int64)
    where[-1] = -1
    out, start = [], k
    for part in values:
        out.append(where[codes[start : start + len(part)]])
        start += len(part)
    return out


def member(values: pd.Series, keys: pd.Series | Iterable[Any]) -> pd.Series:
    """`values.isin(keys)` for ids (a missing id is never a member). pandas' own `isin` on
    its Arrow-backed string dtype walks a large key set value by value in Python."""
    if not isinstance(keys, pd.Series):
        keys = pd.Series(list(keys), dtype=values.dtype)
    if values.empty or keys.empty:
        return pd.Series(False, index=values.index)
    if len(keys) <= 256:  # a few keys: pandas' own isin is quicker than factorizing
        return values.isin(keys.dropna().tolist()) & values.notna()
    return pd.Series(positions(values, keys) >= 0, index=values.index)


def floats(values: pd.Series) -> np.ndarray:
    """Cents as float64 (exact to 2**53), NA as NaN."""
    out: np.ndarray = values.to_numpy(dtype="float64", na_value=np.nan)
    return out


def ne(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Element-wise inequality where missing equals only missing."""
    lna, rna = pd.isna(left), pd.isna(right)
    unequal: np.ndarray = (lna != rna) | (~lna & ~rna & (left != right))
    return unequal


def ne_text(left: Any, right: Any) -> np.ndarray:
    """`ne` for two text arrays of one length, compared in their own array type."""
    lhs, rhs = pd.Series(left), pd.Series(right)
    lna, rna = lhs.isna().to_numpy(), rhs.isna().to_numpy()
    equal = (lhs == rhs).to_numpy(dtype=bool, na_value=False)
    unequal: np.ndarray = (lna != rna) | (~lna & ~rna & ~equal)
    return unequal


def take(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`values[at]` with None where `at` is -1."""
    out = values[np.where(at >= 0, at, 0)].astype(object)
    out[at < 0] = None
    return out


# --- won deals vs contracts vs ERP customers vs PSA projects -----------------------------------


def take_floats(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`values[at]` with NaN where `at` is -1."""
    out = values[np.where(at >= 0, at, 0)].copy()
    out[at < 0] = np.nan
    return out


def pick(values: pd.Series, at: np.ndarray) -> Any:
    """`values` at row positions `at` (-1: missing), kept in the column's own array type
    (an Arrow string column stays Arrow: no round trip through Python objects)."""
    return values.array.take(at, allow_fill=True)


def equals(values: Any, wanted: str) -> np.ndarray:
    """Boolean mask of `values == wanted`, missing counting as False."""
    out: np.ndarray = pd.Series(values == wanted).to_numpy(dtype=bool, na_value=False)
    return out


def approved_items(
    time: pd.DataFrame, milestones: pd.DataFrame, projects: pd.DataFrame
) -> pd.DataFrame:
    """Approved time on hourly projects and approved milestones, one row per item with the
    row of its project (`project_at`); hours in hundredths (as the connector rounds them),
    rate and amount in cents (floats, exact to 2**53)."""
    t_at = positions(time.project_id, projects.project_id)
    t_keep = (t_at >= 0) & equals(pick(projects.billing_mode, t_at), "time_and_materials")
    entries, t_at = time[t_keep], t_at[t_keep]
    hours = np.rint(floats(entries.minutes) * 100 / 60)
    rate = floats(entries.rate)
    approved = milestones[equals(milestones.state.array, "approved")]
    m_at = positions(approved.project_id, projects.project_id)
    approved, m_at = approved[m_at >= 0], m_at[m_at >= 0]
    price = floats(approved.price)
    parts = [
        pd.DataFrame(
            {
                "item_id": frame.item_id.array,
                "kind": kind,
                "project_id": frame.project_id.array,
                "project_at": at,
                "role": role,
                "hours": h,
                "rate": r,
                "amount": amount,
                "approved_at": frame.approved_at.array,
            }
        )
        for frame, at, kind, role, h, r, amount in (
            (entries, t_at, "time", entries.role.array, hours, rate, np.rint(hours * rate / 100)),
            (approved, m_at, "milestone", None, np.full(len(approved), 100.0), price, price),
        )
    ]
    return pd.concat(parts, ignore_index=True)


def with_project(rows: pd.DataFrame, projects: pd.DataFrame) -> pd.DataFrame:
    """`rows` (a few, with `project_at`) with their project's contract, deal, legal entity
    and currency."""
    at = rows.project_at.to_numpy()
    return rows.assign(
        **{
            column: pick(projects[column], at)
            for column in ("contract_id", "deal_id", "legal_entity", "currency")
        }
    )


def per_project(projects: pd.DataFrame, at: np.ndarray, amounts: np.ndarray) -> pd.DataFrame:
    """Count and amount of rows per project (by its row `at`), with its entity and currency:
    what the per-entity-and-currency summary groups, without grouping every row by text."""
    return pd.DataFrame(
        {
            "legal_entity": projects.legal_entity.array,
            "currency": projects.currency.array,
            "_n": np.bincount(at, minlength=len(projects)),
            "amount": np.bincount(at, weights=np.nan_to_num(amounts), minlength=len(projects)),
        }
    )


# --- invoices in billing vs AR postings in ERP ---------------------------------------------------
