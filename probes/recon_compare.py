"""The reconciliation comparisons on frames (see `probes.recon_frames`): vectorised merges
and group-bys over whole collections, one `Finding` built per mismatching record only.
Money is in integer cents; a grace is what a sync may still legitimately be doing (the
stage SLAs of DESIGN.md), counted from the source record's own time to `now`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
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


def _plain(value: Any) -> Any:
    """A cell as JSON: NA as None, numpy scalars as Python, timestamps as ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
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
    values = {col: [_plain(v) for v in frame[col].tolist()] for col in dict.fromkeys(columns)}
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
        unequal = _ne(_floats(left), _floats(right))
    else:
        unequal = _ne(left.to_numpy(dtype=object), right.to_numpy(dtype=object))
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
        entry: dict[str, Any] = {k: _plain(v) for k, v in zip(keys, values, strict=True)}
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
            "legal_entity": _pick(entity, used // width - 1),
            "currency": names[used % width],
            "_n": counts[used],
            "amount": sums[used],
        }
    )


def by_text(entity: pd.Series, currency: pd.Series, amounts: np.ndarray) -> pd.DataFrame:
    """`per_entity` for rows that carry their legal entity as text."""
    codes, names = pd.factorize(entity)
    return per_entity(pd.Series(names, dtype=object), codes, currency, amounts)


def _past(moments: pd.Series, grace: dt.timedelta, now: pd.Timestamp) -> pd.Series:
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


def _floats(values: pd.Series) -> np.ndarray:
    """Cents as float64 (exact to 2**53), NA as NaN."""
    out: np.ndarray = values.to_numpy(dtype="float64", na_value=np.nan)
    return out


def _ne(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Element-wise inequality where missing equals only missing."""
    lna, rna = pd.isna(left), pd.isna(right)
    unequal: np.ndarray = (lna != rna) | (~lna & ~rna & (left != right))
    return unequal


def _ne_text(left: Any, right: Any) -> np.ndarray:
    """`_ne` for two text arrays of one length, compared in their own array type."""
    lhs, rhs = pd.Series(left), pd.Series(right)
    lna, rna = lhs.isna().to_numpy(), rhs.isna().to_numpy()
    equal = (lhs == rhs).to_numpy(dtype=bool, na_value=False)
    unequal: np.ndarray = (lna != rna) | (~lna & ~rna & ~equal)
    return unequal


def _take(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`values[at]` with None where `at` is -1."""
    out = values[np.where(at >= 0, at, 0)].astype(object)
    out[at < 0] = None
    return out


# --- won deals vs contracts vs ERP customers vs PSA projects -----------------------------------


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
        legal_entity=_pick(accounts.legal_entity, positions(deals.account_id, accounts.account_id))
    )
    # won deal -> contract (request) in CLM: its first contract
    c_at = positions(deals.deal_id, contracts.deal_id)
    has_contract = c_at >= 0
    missing = deals[~has_contract & _past(deals.won_at, grace.intake, now).to_numpy()]
    result.findings += findings(
        missing,
        "contract_missing",
        "deal",
        "deal_id",
        "clm",
        amount="amount",
        detail={"won_at": "won_at", "account_id": "account_id", "legal_entity": "legal_entity"},
    )
    is_executed = _is(contracts.status.array, "executed")
    executed = contracts[is_executed]
    result.findings += findings(
        duplicated(
            contracts[~_is(contracts.status.array, "cancelled")], ["deal_id"], "contract_id"
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
    value_off = _ne(_floats(won.amount), _floats(contracts.value)[at])
    currency_off = _ne_text(won.currency.array, _pick(contracts.currency, at))
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
                    contract_id=_pick(contracts.contract_id, where),
                    contract_value=_floats(contracts.value)[where],
                    contract_currency=_pick(contracts.currency, where),
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
    due = executed[_past(executed.executed_at, grace.provisioning, now).to_numpy()]
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
    active = ~_is(projects.status.array, "closed")
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
    off = _ne(_floats(mine.price), _floats(executed.value)[at]) | _ne_text(
        mine.currency.array, _pick(executed.currency, at)
    )
    if off.any():
        result.findings += findings(
            mine[off].assign(
                value=_floats(executed.value)[at[off]],
                contract_currency=_pick(executed.currency, at[off]),
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
            "crm_won": by_text(deals.legal_entity, deals.currency, _floats(deals.amount)),
            "clm_executed": by_text(
                executed.legal_entity, executed.currency, _floats(executed.value)
            ),
            "psa_projects": by_text(
                projects.legal_entity, projects.currency, _floats(projects.price)
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


def contracts_vs_schedules(
    contracts: pd.DataFrame,
    terms: pd.DataFrame,
    contract_rates: pd.DataFrame,
    contract_milestones: pd.DataFrame,
    schedules: pd.DataFrame,
    schedule_rates: pd.DataFrame,
    projects: pd.DataFrame,
    milestones: pd.DataFrame,
    charges: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
    billing_models: Mapping[str, str],
) -> Result:
    result = Result()
    executed = contracts[contracts.status == "executed"]
    result.findings += findings(
        duplicated(schedules[schedules.status != "cancelled"], ["contract_id"], "schedule_id"),
        "schedule_duplicated",
        "contract",
        "contract_id",
        "billing",
        detail={"schedule_ids": "ids", "times": "times"},
    )
    executed = executed.reset_index(drop=True)
    s_at = positions(executed.contract_id, schedules.contract_id)  # its (first) schedule
    scheduled = s_at >= 0
    missing = executed[~scheduled & _past(executed.executed_at, grace.scheduling, now).to_numpy()]
    result.findings += findings(
        missing,
        "schedule_missing",
        "contract",
        "contract_id",
        "billing",
        amount="value",
        detail={"executed_at": "executed_at", "legal_entity": "legal_entity"},
    )
    orphans = schedules[
        (schedules.status != "cancelled") & ~member(schedules.contract_id, executed.contract_id)
    ]
    result.findings += findings(
        orphans,
        "orphan_schedule",
        "billing_schedule",
        "schedule_id",
        "billing",
        detail={"contract_id": "contract_id"},
    )
    cancelled = contracts[contracts.status == "cancelled"]
    still = schedules[
        (schedules.status == "active") & member(schedules.contract_id, cancelled.contract_id)
    ]
    result.findings += findings(
        still,
        "schedule_not_cancelled",
        "billing_schedule",
        "schedule_id",
        "billing",
        detail={"contract_id": "contract_id"},
    )
    # each scheduled contract's terms against its schedule, once its amendments settled
    paired = executed[scheduled].reset_index(drop=True)
    at = s_at[scheduled]
    t_at = positions(paired.contract_id, terms.contract_id)
    settled_rows = _past(pd.Series(_pick(terms.amended_at, t_at)), grace.amendment, now).to_numpy()
    settled = paired[settled_rows].reset_index(drop=True)
    at, t_at = at[settled_rows], t_at[settled_rows]
    settled["schedule_id"] = _pick(schedules.schedule_id, at)
    expected_model = settled.billing_model.map(dict(billing_models))
    checks: list[tuple[str, Any, str, bool]] = [
        ("currency_mismatch", settled.currency.array, "currency", False),
        ("billing_model_mismatch", expected_model.array, "billing_model", False),
        ("cap_mismatch", _pick(terms.cap, t_at), "cap", True),
        ("po_mismatch", _pick(terms.po_number, t_at), "po_number", False),
        ("monthly_fee_mismatch", _pick(terms.monthly_fee, t_at), "monthly_fee", True),
        ("term_mismatch", _pick(terms.term_months, t_at), "term_months", False),
    ]
    for kind, clm, column, is_money in checks:
        billing = _pick(schedules[column], at)
        if is_money:
            off = _ne(_floats(pd.Series(clm)), _floats(pd.Series(billing)))
        else:
            off = _ne_text(pd.Series(clm, dtype=object), pd.Series(billing, dtype=object))
        if not off.any():
            continue
        rows = settled[off].assign(
            clm=pd.Series(clm)[off].to_numpy(), billing=pd.Series(billing)[off].to_numpy()
        )
        result.findings += findings(
            rows,
            kind,
            "contract",
            "contract_id",
            "billing",
            amount="value",
            detail={"schedule_id": "schedule_id"}
            | ({} if is_money else {"clm": "clm", "billing": "billing"}),
            money_detail={"clm": "clm", "billing": "billing"} if is_money else None,
        )
    result.findings += _rate_cards(contract_rates, settled, at, schedules, schedule_rates)
    result.findings += _milestones(
        contract_milestones, executed, projects, milestones, charges, now=now, grace=grace
    )
    result.summary = summary(
        {
            "clm_executed": executed.rename(columns={"value": "amount"}),
            "billing_schedules": pd.DataFrame(
                {
                    "legal_entity": _pick(
                        executed.legal_entity,
                        positions(schedules.contract_id, executed.contract_id),
                    ),
                    "currency": schedules.currency.array,
                }
            ),
        }
    )
    result.counts = {
        "executed_contracts": len(executed),
        "schedules": len(schedules),
        "awaiting_amendment": int((~settled_rows).sum()),
    }
    return result


def _rate_cards(
    contract_rates: pd.DataFrame,
    settled: pd.DataFrame,
    at: np.ndarray,
    schedules: pd.DataFrame,
    schedule_rates: pd.DataFrame,
) -> list[Finding]:
    """Rate cards role by role: each contract rate against its schedule's rate for the role
    (missing: a mismatch), and each schedule role the contract does not have."""
    c_at = positions(contract_rates.contract_id, settled.contract_id)  # settled row, or -1
    clm = contract_rates[c_at >= 0]
    c_at = c_at[c_at >= 0]
    b_at = positions(schedule_rates.schedule_id, settled.schedule_id)  # settled row, or -1
    billed = schedule_rates[b_at >= 0]
    b_at = b_at[b_at >= 0]
    roles, _names = pd.factorize(pd.concat([clm.role, billed.role], ignore_index=True))
    width = int(roles.max()) + 2 if len(roles) else 1
    clm_key = pd.Series(c_at * width + roles[: len(clm)] + 1)
    billed_key = pd.Series(b_at * width + roles[len(clm) :] + 1)
    match = positions(clm_key, billed_key)  # the schedule's line for each contract line
    back = positions(billed_key, clm_key)  # and the contract's line for each schedule line
    clm_rate = _floats(clm.rate)
    billed_rate = _take_floats(_floats(billed.rate), match)
    off = _ne(clm_rate, billed_rate)
    extra = back < 0
    rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "at": c_at[off],
                    "role": clm.role.array[off],
                    "rate_clm": clm_rate[off],
                    "rate_billing": billed_rate[off],
                }
            ),
            pd.DataFrame(
                {
                    "at": b_at[extra],
                    "role": billed.role.array[extra],
                    "rate_clm": np.nan,
                    "rate_billing": _floats(billed.rate)[extra],
                }
            ),
        ],
        ignore_index=True,
    )
    if rows.empty:
        return []
    where = rows["at"].to_numpy()
    rows = rows.assign(
        contract_id=_pick(settled.contract_id, where),
        schedule_id=_pick(settled.schedule_id, where),
        deal_id=_pick(settled.deal_id, where),
        currency=_pick(settled.currency, where),
    )
    return findings(
        rows,
        "rate_mismatch",
        "contract",
        "contract_id",
        "billing",
        amount="rate_clm",
        detail={"schedule_id": "schedule_id", "role": "role"},
        money_detail={"clm_rate": "rate_clm", "billing_rate": "rate_billing"},
    )


def _milestones(
    contract_milestones: pd.DataFrame,
    executed: pd.DataFrame,
    projects: pd.DataFrame,
    milestones: pd.DataFrame,
    charges: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
) -> list[Finding]:
    """Contract milestones (of executed contracts with a project) against the PSA
    milestone and the charges that bill it."""
    out: list[Finding] = []
    if contract_milestones.empty or executed.empty:
        return out  # (an empty frame's columns carry no dtype to merge on)
    ms = contract_milestones.merge(
        executed[["contract_id", "deal_id", "executed_at"]], on="contract_id"
    )
    ms = ms[member(ms.contract_id, projects.contract_id)]
    psa = milestones.merge(projects[["project_id", "contract_id"]], on="project_id")
    ms = ms.merge(
        psa[["contract_id", "milestone_id", "item_id", "price"]],
        on=["contract_id", "milestone_id"],
        how="left",
    )
    gone = ms[ms.item_id.isna() & _past(ms.executed_at, grace.provisioning, now)]
    out += findings(
        gone,
        "milestone_missing",
        "contract",
        "contract_id",
        "psa",
        amount="amount",
        detail={"milestone_id": "milestone_id"},
    )
    ms = ms[ms.item_id.notna()].merge(
        charges[["item_id", "charge_id", "quantity", "unit_price"]], on="item_id", how="left"
    )
    ms["charged"] = (ms.quantity * ms.unit_price / 100).round().astype("Int64")
    off = ms[differs(ms.amount, ms.price) | (ms.charge_id.notna() & differs(ms.amount, ms.charged))]
    out += findings(
        off,
        "milestone_amount_mismatch",
        "contract",
        "contract_id",
        "psa",
        amount="amount",
        detail={"milestone_id": "milestone_id", "psa_item_id": "item_id", "charge_id": "charge_id"},
        money_detail={"clm_amount": "amount", "psa_amount": "price", "billing_amount": "charged"},
    )
    return out


# --- approved billable time vs billed quantity (leakage) --------------------------------------


def billable_vs_billed(
    time: pd.DataFrame,
    milestones: pd.DataFrame,
    projects: pd.DataFrame,
    charges: pd.DataFrame,
    schedules: pd.DataFrame,
    lines: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
    refused_items: Collection[str],
    refused_invoices: Collection[str],
) -> Result:
    """Approved PSA time (on hourly projects) and milestones against the charges that bill
    them and the invoice lines that bill the charges. Rows are matched by position (one
    factorization of the ids per join), so only mismatching rows are gathered."""
    result = Result()
    items = _approved_items(time, milestones, projects)
    # each charge against the item it bills (and the refused items: one factorization)
    refused_ids = pd.Series(list(refused_items), dtype=items.item_id.dtype)
    at, refused_at = positions_many(items.item_id, charges.item_id, refused_ids)
    refused = np.zeros(len(items), dtype=bool)
    refused[refused_at[refused_at >= 0]] = True
    has_item = at >= 0
    times_charged = np.bincount(at[has_item], minlength=len(items))
    unbilled = (
        (times_charged == 0) & ~refused & _past(items.approved_at, grace.charge, now).to_numpy()
    )
    for which, name in (("time", "unbilled_time"), ("milestone", "unbilled_milestone")):
        result.findings += findings(
            _with_project(items[unbilled & _is(items.kind.array, which)], projects),
            name,
            "billable_item",
            "item_id",
            "billing",
            amount="amount",
            detail={"project_id": "project_id", "contract_id": "contract_id", "role": "role"},
            money_detail={"approved_hours": "hours"},
        )
    twice = times_charged > 1
    if twice.any():
        dup = charges[has_item & twice[np.where(has_item, at, 0)]].sort_values("charge_id")
        listed = dup.groupby("item_id", sort=False).charge_id.agg(list).rename("ids")
        doubled = _with_project(items[twice], projects).merge(
            listed, left_on="item_id", right_index=True
        )
        result.findings += findings(
            doubled.assign(times=doubled.ids.str.len()),
            "charge_duplicated",
            "billable_item",
            "item_id",
            "billing",
            amount="amount",
            detail={"charge_ids": "ids", "times": "times", "kind": "kind"},
        )
    item_at = at[has_item]
    billed = charges[has_item]
    hours, rate = _floats(items.hours)[item_at], _floats(items.rate)[item_at]
    quantity, unit_price = _floats(billed.quantity), _floats(billed.unit_price)
    billed_amount = np.rint(quantity * unit_price / 100)
    leaked = _floats(items.amount)[item_at] - billed_amount
    for name, off, money_detail in (
        (
            "quantity_mismatch",
            _ne(hours, quantity),
            {"approved_hours": "hours", "charged_hours": "quantity"},
        ),
        (
            "rate_mismatch",
            _ne(rate, unit_price),
            {"psa_rate": "rate", "billing_rate": "unit_price"},
        ),
    ):
        if not off.any():
            continue
        rows = _with_project(items.iloc[item_at[off]], projects).assign(
            charge_id=billed.charge_id.to_numpy()[off],
            quantity=billed.quantity.to_numpy()[off],
            unit_price=billed.unit_price.to_numpy()[off],
            leaked=np.rint(leaked[off]),
        )
        result.findings += findings(
            rows,
            name,
            "billable_item",
            "item_id",
            "billing",
            amount="leaked",
            detail={"charge_id": "charge_id", "kind": "kind", "role": "role"},
            money_detail=money_detail,
        )
    # charged but never invoiced past the billing cycle and its grace
    on = positions(charges.schedule_id, schedules.schedule_id)
    stale = (
        _is(charges.status.array, "pending")
        & _is(_pick(schedules.status, on), "active")
        & _past(charges.created_at, grace.billing_cycle, now).to_numpy()
    )
    if stale.any():
        picked = charges[stale]
        where = on[stale]
        rows = picked.assign(
            contract_id=_pick(schedules.contract_id, where),
            deal_id=_pick(schedules.deal_id, where),
            currency=_pick(schedules.currency, where),
            amount=np.rint(_floats(picked.quantity) * _floats(picked.unit_price) / 100),
        )
        result.findings += findings(
            rows,
            "uninvoiced_charge",
            "charge",
            "charge_id",
            "billing",
            amount="amount",
            detail={
                "psa_item_id": "item_id",
                "created_at": "created_at",
                "contract_id": "contract_id",
            },
        )
    # the invoice line billing a charge must bill its quantity at its price
    kept = lines[~member(lines.invoice_id, refused_invoices).to_numpy()]
    line_at = positions(kept.charge_id, charges.charge_id)
    charge_quantity = _take_floats(_floats(charges.quantity), line_at)
    charge_price = _take_floats(_floats(charges.unit_price), line_at)
    line_quantity, line_price = _floats(kept.line_quantity), _floats(kept.line_unit_price)
    line_off = _ne(charge_quantity, line_quantity) | _ne(charge_price, line_price)
    if line_off.any():
        where = line_at[line_off]
        sched = positions(pd.Series(_pick(charges.schedule_id, where)), schedules.schedule_id)
        rows = kept[line_off].assign(
            item_id=_pick(charges.item_id, where),
            quantity=charge_quantity[line_off],
            unit_price=charge_price[line_off],
            deal_id=_pick(schedules.deal_id, sched),
            currency=_pick(schedules.currency, sched),
            leaked=np.rint(
                (charge_quantity * charge_price - line_quantity * line_price)[line_off] / 100
            ),
        )
        result.findings += findings(
            rows,
            "invoice_line_mismatch",
            "invoice",
            "invoice_id",
            "billing",
            amount="leaked",
            detail={"charge_id": "charge_id", "psa_item_id": "item_id"},
            money_detail={
                "charged_hours": "quantity",
                "invoiced_hours": "line_quantity",
                "charged_price": "unit_price",
                "invoiced_price": "line_unit_price",
            },
        )
    project_at = items.project_at.to_numpy()
    result.summary = summary(
        {
            "psa_approved": _per_project(projects, project_at, _floats(items.amount)),
            "billing_charged": _per_project(projects, project_at[item_at], billed_amount),
        }
    )
    result.counts = {
        "approved_items": len(items),
        "charges": len(charges),
        "refused_by_validation": int(refused.sum()),
    }
    return result


def _take_floats(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`values[at]` with NaN where `at` is -1."""
    out = values[np.where(at >= 0, at, 0)].copy()
    out[at < 0] = np.nan
    return out


def _pick(values: pd.Series, at: np.ndarray) -> Any:
    """`values` at row positions `at` (-1: missing), kept in the column's own array type
    (an Arrow string column stays Arrow: no round trip through Python objects)."""
    return values.array.take(at, allow_fill=True)


def _is(values: Any, wanted: str) -> np.ndarray:
    """Boolean mask of `values == wanted`, missing counting as False."""
    out: np.ndarray = pd.Series(values == wanted).to_numpy(dtype=bool, na_value=False)
    return out


def _approved_items(
    time: pd.DataFrame, milestones: pd.DataFrame, projects: pd.DataFrame
) -> pd.DataFrame:
    """Approved time on hourly projects and approved milestones, one row per item with the
    row of its project (`project_at`); hours in hundredths (as the connector rounds them),
    rate and amount in cents (floats, exact to 2**53)."""
    t_at = positions(time.project_id, projects.project_id)
    t_keep = (t_at >= 0) & _is(_pick(projects.billing_mode, t_at), "time_and_materials")
    entries, t_at = time[t_keep], t_at[t_keep]
    hours = np.rint(_floats(entries.minutes) * 100 / 60)
    rate = _floats(entries.rate)
    approved = milestones[_is(milestones.state.array, "approved")]
    m_at = positions(approved.project_id, projects.project_id)
    approved, m_at = approved[m_at >= 0], m_at[m_at >= 0]
    price = _floats(approved.price)
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


def _with_project(rows: pd.DataFrame, projects: pd.DataFrame) -> pd.DataFrame:
    """`rows` (a few, with `project_at`) with their project's contract, deal, legal entity
    and currency."""
    at = rows.project_at.to_numpy()
    return rows.assign(
        **{
            column: _pick(projects[column], at)
            for column in ("contract_id", "deal_id", "legal_entity", "currency")
        }
    )


def _per_project(projects: pd.DataFrame, at: np.ndarray, amounts: np.ndarray) -> pd.DataFrame:
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


def invoices_vs_postings(
    invoices: pd.DataFrame,
    postings: pd.DataFrame,
    customers: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
    refused: Collection[str] = (),
) -> Result:
    """Every released invoice posted exactly once, with its amount and currency. The
    postings are matched to their invoice by position (one factorization of the ids), so
    only the mismatching rows are ever gathered into frames."""
    result = Result()
    released = ~invoices.status.isin(["draft", "cancelled", "void"]).to_numpy()
    at = positions(postings.invoice_id, invoices.invoice_id)  # invoice row of each posting
    matched = at >= 0
    times_posted = np.bincount(at[matched], minlength=len(invoices))
    held = member(invoices.invoice_id, refused).to_numpy()
    past = _past(invoices.issued_at, grace.posting, now).to_numpy()
    never = invoices[released & (times_posted == 0) & ~held & past]
    result.findings += findings(
        never,
        "never_posted",
        "invoice",
        "invoice_id",
        "erp",
        amount="amount",
        detail={"issued_at": "issued_at", "customer_id": "customer_id"},
    )
    twice_rows = released & (times_posted > 1)
    if twice_rows.any():
        dup = postings[matched & twice_rows[np.where(matched, at, 0)]].sort_values("posting_id")
        listed = dup.groupby("invoice_id", sort=False).posting_id.agg(list).rename("posting_ids")
        twice = invoices[twice_rows].merge(listed, left_on="invoice_id", right_index=True)
        twice = twice.assign(times=twice.posting_ids.str.len())
        result.findings += findings(
            twice,
            "posted_twice",
            "invoice",
            "invoice_id",
            "erp",
            amount="amount",
            detail={"posting_ids": "posting_ids", "times_posted": "times"},
        )
    # each posting of a released invoice against that invoice
    paired = matched & released[np.where(matched, at, 0)]
    inv_at = at[paired]
    posted = postings[paired]
    billed_amount = _floats(invoices.amount)[inv_at]
    amount_off = _ne(billed_amount, _floats(posted.amount))
    currency_off = _ne_text(_pick(invoices.currency, inv_at), posted.currency.array)
    for kind, off, detail in (
        ("amount_mismatch", amount_off, {}),
        (
            "currency_mismatch",
            currency_off,
            {"billing_currency": "currency", "erp_currency": "currency_erp"},
        ),
    ):
        if not off.any():
            continue
        rows = invoices.iloc[inv_at[off]][["invoice_id", "deal_id", "currency", "amount"]]
        rows = rows.assign(
            posting_id=posted.posting_id.to_numpy()[off],
            amount_erp=posted.amount.to_numpy()[off],
            currency_erp=posted.currency.to_numpy()[off],
        )
        result.findings += findings(
            rows,
            kind,
            "invoice",
            "invoice_id",
            "erp",
            amount="amount",
            detail={"posting_id": "posting_id", **detail},
            money_detail={"billing_amount": "amount", "erp_amount": "amount_erp"}
            if kind == "amount_mismatch"
            else None,
        )
    orphans = postings[~matched]
    result.findings += findings(
        orphans,
        "orphan_posting",
        "ar_posting",
        "posting_id",
        "erp",
        amount="amount",
        detail={"billing_invoice_id": "invoice_id", "customer_id": "customer_id"},
    )
    result.summary = summary(
        {
            "billing": per_entity(
                customers.legal_entity,
                positions(invoices.customer_id, customers.customer_id)[released],
                invoices.currency[released],
                _floats(invoices.amount)[released],
            ),
            "erp": per_entity(
                customers.legal_entity,
                positions(postings.customer_id, customers.customer_id),
                postings.currency,
                _floats(postings.amount),
            ),
        }
    )
    result.counts = {
        "invoices": int(released.sum()),
        "postings": len(postings),
        "refused_by_validation": int((released & held).sum()),
        "within_posting_sla": int((released & (times_posted == 0) & ~past).sum()),
    }
    return result


# --- payments in ERP vs cash collected ---------------------------------------------------------


def payments_vs_cash(
    payments: pd.DataFrame,
    postings: pd.DataFrame,
    customers: pd.DataFrame,
    store_payments: pd.DataFrame,
    store_invoices: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
) -> Result:
    """ERP payments against what the store holds as collected, and against their own
    receivables (a paid posting its payments do not cover)."""
    result = Result()
    amount = _floats(payments.amount)
    paid = np.nan_to_num(amount)
    at = positions(payments.posting_id, postings.posting_id)  # the posting of each payment
    has_posting = at >= 0
    result.findings += findings(
        payments[~has_posting],
        "orphan_payment",
        "payment",
        "payment_id",
        "erp",
        amount="amount",
        detail={"ar_posting_id": "posting_id", "invoice_id": "invoice_id"},
    )
    posting_currency = _take(postings.currency.to_numpy(dtype=object), at)
    currency_off = has_posting & _ne(payments.currency.to_numpy(dtype=object), posting_currency)
    result.findings += findings(
        payments[currency_off].assign(posting_currency=posting_currency[currency_off]),
        "payment_currency_mismatch",
        "payment",
        "payment_id",
        "erp",
        amount="amount",
        detail={
            "ar_posting_id": "posting_id",
            "payment_currency": "currency",
            "posting_currency": "posting_currency",
        },
    )
    # each settled payment recorded in the store, at its amount, against its invoice
    settled = _past(payments.paid_at, grace.cash, now).to_numpy()
    rec = positions(payments.payment_id, store_payments.payment_id)
    unrecorded = settled & (rec < 0)
    result.findings += findings(
        payments[unrecorded],
        "payment_not_recorded",
        "payment",
        "payment_id",
        "erp",
        amount="amount",
        detail={"invoice_id": "invoice_id", "ar_posting_id": "posting_id", "paid_at": "paid_at"},
    )
    known = settled & (rec >= 0)
    store_amount = _floats(store_payments.store_amount)
    store_invoice = _take(store_payments.store_invoice_id.to_numpy(dtype=object), rec)
    wrong = known & (
        _ne(amount, np.where(rec >= 0, store_amount[np.where(rec >= 0, rec, 0)], np.nan))
        | _ne(payments.invoice_id.to_numpy(dtype=object), store_invoice)
    )
    result.findings += findings(
        payments[wrong].assign(
            store_invoice_id=store_invoice[wrong],
            store_amount=store_payments.store_amount.to_numpy()[rec[wrong]],
        ),
        "payment_amount_mismatch",
        "payment",
        "payment_id",
        "erp",
        amount="amount",
        detail={"invoice_id": "invoice_id", "store_invoice_id": "store_invoice_id"},
        money_detail={"erp_amount": "amount", "store_amount": "store_amount"},
    )
    # the store's collected cash per invoice against the ERP's payments, once all settled
    inv_at = positions(payments.invoice_id, store_invoices.invoice_id)
    on_store = inv_at >= 0
    erp_paid = np.bincount(inv_at[on_store], weights=paid[on_store], minlength=len(store_invoices))
    unsettled = np.bincount(inv_at[on_store & ~settled], minlength=len(store_invoices)).astype(bool)
    store_paid = np.nan_to_num(_floats(store_invoices.store_paid))
    cash_off = (store_paid > 0) & ~unsettled & (store_paid != erp_paid)
    result.findings += findings(
        store_invoices[cash_off].assign(
            currency=None, erp_paid=np.rint(erp_paid[cash_off]).astype("int64")
        ),
        "cash_without_payment",
        "invoice",
        "invoice_id",
        "erp",
        deal="store_deal_id",
        amount="store_paid",
        money_detail={"store_collected": "store_paid", "erp_paid": "erp_paid"},
        detail={"store_stage": "store_stage"},
    )
    # a posting the ERP marks paid must be covered by its payments, and vice versa
    paid_total = np.bincount(at[has_posting], weights=paid[has_posting], minlength=len(postings))
    full = paid_total >= np.nan_to_num(_floats(postings.amount))
    status = postings.status.to_numpy(dtype=object)
    status_off = ((status == "paid") & ~full) | ((status == "open") & full)
    result.findings += findings(
        postings[status_off].assign(paid_total=np.rint(paid_total[status_off]).astype("int64")),
        "paid_status_mismatch",
        "ar_posting",
        "posting_id",
        "erp",
        amount="amount",
        detail={"invoice_id": "invoice_id", "status": "status"},
        money_detail={"paid_total": "paid_total", "remaining": "remaining"},
    )
    customer_at = positions(postings.customer_id, customers.customer_id)
    result.summary = summary(
        {
            "erp_payments": per_entity(
                customers.legal_entity,
                np.where(has_posting, customer_at[np.where(has_posting, at, 0)], -1),
                payments.currency,
                amount,
            ),
        }
    )
    result.counts = {"payments": len(payments), "recorded": int(known.sum())}
    return result
