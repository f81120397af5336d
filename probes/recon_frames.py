"""The reconciliation probes' inputs as columnar frames: each system's collection read once
through its API and flattened to the columns the comparisons need, money in integer cents,
times as UTC timestamps. Field names follow the flows in `connectors/flows/`, and the
renames a system's schema drift makes (`amount_total`, `trandate`, `contracting_entity`)
are read too, so a drifting field does not read as a mismatch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from connectors.resources import Api
from store.objects import Invoice, Payment
from store.outbox import DeadLetter, SyncMessage
from store.states import DeadLetterState, System

Record = dict[str, Any]
DAY = pd.Timedelta(days=1)


def cents(values: Iterable[Any]) -> pd.Series:
    """Money (decimal strings, numbers or None) as nullable integer cents."""
    numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    return numbers.mul(100).round().astype("Int64")


def times(values: Iterable[Any], *, end_of_day: bool = False) -> pd.Series:
    """ISO timestamps or dates as UTC; with `end_of_day` a bare date means its end (a date
    says the day, not the hour, so a grace counted from it must not start too early)."""
    raw = pd.Series([None if v in (None, "") else str(v) for v in values], dtype=object)
    parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    if end_of_day:
        bare = raw.str.len() == 10
        parsed = parsed.where(~bare.fillna(False).astype(bool), parsed + DAY)
    return parsed


def _get(record: Record, *names: str) -> Any:
    for name in names:
        if name in record:
            return record[name]
    return None


def _ref(value: Any, key: str = "id") -> Any:
    return value.get(key) if isinstance(value, dict) else value


def _frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(dict(columns))


def _strs(values: Iterable[Any]) -> list[str | None]:
    return [None if v is None else str(v) for v in values]


# --- CRM --------------------------------------------------------------------------------------


def opportunities(records: list[Record]) -> pd.DataFrame:
    won = [r for r in records if r.get("isWon")]
    return _frame(
        {
            "deal_id": _strs(r["id"] for r in won),
            "account_id": _strs(r.get("accountId") for r in won),
            "amount": cents(_get(r, "amount", "totalAmount") for r in won),
            "currency": [r.get("currencyIsoCode") for r in won],
            "won_at": times(r.get("lastModifiedDate") or r.get("closeDate") for r in won),
        }
    )


def accounts(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "account_id": _strs(r["id"] for r in records),
            "legal_entity": [r.get("legalEntity") for r in records],
            "account_currency": [r.get("currencyIsoCode") for r in records],
        }
    )


# --- CLM --------------------------------------------------------------------------------------


def agreements(records: list[Record]) -> pd.DataFrame:
    def value(r: Record, key: str) -> Any:
        return ((r.get("terms") or {}).get("total_value") or r.get("estimated_value") or {}).get(
            key
        )

    return _frame(
        {
            "contract_id": _strs(r["id"] for r in records),
            "deal_id": _strs((r.get("source_ref") or {}).get("opportunity_id") for r in records),
            "account_id": _strs(
                (r.get("counterparty") or {}).get("crm_account_id") for r in records
            ),
            "status": [r.get("status") for r in records],
            "legal_entity": [_get(r, "legal_entity", "contracting_entity") for r in records],
            "billing_model": [(r.get("terms") or {}).get("billing_model") for r in records],
            "value": cents(value(r, "amount") for r in records),
            "currency": [value(r, "currency") for r in records],
            "executed_at": times((r.get("executed_at") for r in records), end_of_day=True),
        }
    )


@dataclass(frozen=True)
class Terms:
    """Executed contracts' effective terms (the agreement's, then its executed amendments
    in order), one row per contract, per rate line and per milestone."""

    contracts: pd.DataFrame  # contract_id, cap, po_number, monthly_fee, term_months, amended_at
    rates: pd.DataFrame  # contract_id, role, rate
    milestones: pd.DataFrame  # contract_id, milestone_id, amount, currency


def effective_terms(agreement_records: list[Record], amendment_records: list[Record]) -> Terms:
    amendments: dict[str, list[Record]] = {}
    for amendment in amendment_records:
        if amendment.get("status") == "executed":
            amendments.setdefault(str(amendment.get("agreement_id")), []).append(amendment)
    rows: list[dict[str, Any]] = []
    rates: list[tuple[str, str, Any]] = []
    milestones: list[tuple[str, str, Any, Any]] = []
    for agreement in agreement_records:
        terms = agreement.get("terms")
        if not terms:
            continue
        contract_id = str(agreement["id"])
        effective = dict(terms)
        amended_at = None
        for amendment in sorted(
            amendments.get(contract_id, []),
            key=lambda a: (str(a.get("effective_date") or ""), str(a["id"])),
        ):
            effective.update(amendment.get("changes") or {})
            amended_at = amendment.get("executed_at") or amendment.get("effective_date")
        rows.append(
            {
                "contract_id": contract_id,
                "cap": (effective.get("cap") or {}).get("amount"),
                "po_number": effective.get("po_number"),
                "monthly_fee": (effective.get("monthly_fee") or {}).get("amount"),
                "term_months": effective.get("term_months"),
                "amended_at": amended_at,
            }
        )
        for line in effective.get("rate_card") or []:
            rates.append((contract_id, str(line["role"]), line["hourly_rate"]["amount"]))
        for milestone in effective.get("milestones") or []:
            money = milestone.get("amount") or {}
            milestones.append(
                (
                    contract_id,
                    str(milestone["milestone_id"]),
                    money.get("amount"),
                    money.get("currency"),
                )
            )
    contracts = _frame(
        {
            "contract_id": [r["contract_id"] for r in rows],
            "cap": cents(r["cap"] for r in rows),
            "po_number": [r["po_number"] for r in rows],
            "monthly_fee": cents(r["monthly_fee"] for r in rows),
            "term_months": pd.array([r["term_months"] for r in rows], dtype="Int64"),
            "amended_at": times((r["amended_at"] for r in rows), end_of_day=True),
        }
    )
    return Terms(
        contracts,
        _frame(
            {
                "contract_id": [r[0] for r in rates],
                "role": [r[1] for r in rates],
                "rate": cents(r[2] for r in rates),
            }
        ),
        _frame(
            {
                "contract_id": [m[0] for m in milestones],
                "milestone_id": [m[1] for m in milestones],
                "amount": cents(m[2] for m in milestones),
                "currency": [m[3] for m in milestones],
            }
        ),
    )


# --- PSA --------------------------------------------------------------------------------------


def workspaces(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "project_id": _strs(r["id"] for r in records),
            "contract_id": _strs(r.get("external_reference") for r in records),
            "deal_id": _strs(r.get("deal_reference") for r in records),
            "legal_entity": [r.get("entity") for r in records],
            "currency": [r.get("currency") for r in records],
            "billing_mode": [r.get("billing_mode") for r in records],
            "price": pd.array([r.get("price_in_cents") for r in records], dtype="Int64"),
            "status": [r.get("status") for r in records],
        }
    )


def stories(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "item_id": _strs(r["id"] for r in records),
            "project_id": _strs(r.get("workspace_id") for r in records),
            "milestone_id": _strs(r.get("external_reference") for r in records),
            "price": pd.array([r.get("price_in_cents") for r in records], dtype="Int64"),
            "state": [r.get("state") for r in records],
            "approved_at": times((r.get("approved_at") for r in records), end_of_day=True),
        }
    )


def time_entries(records: list[Record]) -> pd.DataFrame:
    approved = [r for r in records if r.get("approved")]
    return _frame(
        {
            "item_id": _strs(r["id"] for r in approved),
            "project_id": _strs(r.get("workspace_id") for r in approved),
            "role": [r.get("role") for r in approved],
            "minutes": pd.array(
                [_get(r, "time_in_minutes", "minutes") for r in approved], dtype="Int64"
            ),
            "rate": pd.array([r.get("rate_in_cents") for r in approved], dtype="Int64"),
            "approved_at": times((r.get("approved_at") for r in approved), end_of_day=True),
        }
    )


# --- billing ----------------------------------------------------------------------------------


def schedules(records: list[Record]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Schedules, and their rate cards one row per role."""
    frame = _frame(
        {
            "schedule_id": _strs(r["id"] for r in records),
            "contract_id": _strs(r.get("contract_number") for r in records),
            "deal_id": _strs(r.get("deal_id") for r in records),
            "customer_id": _strs(r.get("customer_account_number") for r in records),
            "currency": [r.get("currency") for r in records],
            "billing_model": [r.get("billing_model") for r in records],
            "cap": cents(r.get("cap_amount") for r in records),
            "po_number": [r.get("po_number") for r in records],
            "monthly_fee": cents(r.get("monthly_fee") for r in records),
            "term_months": pd.array([r.get("term_months") for r in records], dtype="Int64"),
            "status": [r.get("status") for r in records],
            "created_at": times(r.get("created_at") for r in records),
        }
    )
    lines = [
        (str(r["id"]), str(line["role"]), line.get("unit_price"))
        for r in records
        for line in r.get("rate_card") or []
    ]
    rates = _frame(
        {
            "schedule_id": [x[0] for x in lines],
            "role": [x[1] for x in lines],
            "rate": cents(x[2] for x in lines),
        }
    )
    return frame, rates


def charges(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "charge_id": _strs(r["id"] for r in records),
            "schedule_id": _strs(r.get("billing_schedule_id") for r in records),
            "item_id": _strs(r.get("source_reference") for r in records),
            "quantity": cents(r.get("quantity") for r in records),  # hundredths of an hour
            "unit_price": cents(r.get("unit_price") for r in records),
            "status": [r.get("status") for r in records],
            "invoice_id": _strs(r.get("invoice_id") for r in records),
            "created_at": times(r.get("created_at") for r in records),
        }
    )


def invoices(records: list[Record]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Released invoices, and their lines that bill a charge."""
    frame = _frame(
        {
            "invoice_id": _strs(r["id"] for r in records),
            "deal_id": _strs(r.get("deal_id") for r in records),
            "schedule_id": _strs(r.get("billing_schedule_id") for r in records),
            "customer_id": _strs(r.get("customer_account_number") for r in records),
            "currency": [r.get("currency") for r in records],
            "amount": cents(_get(r, "amount", "amount_total") for r in records),
            "status": [r.get("status") for r in records],
            "issued_at": times(r.get("created_at") or r.get("invoice_date") for r in records),
        }
    )
    lines = [
        (str(r["id"]), str(line["charge_id"]), line.get("quantity"), line.get("unit_price"))
        for r in records
        for line in r.get("lines") or []
        if line.get("charge_id") is not None
    ]
    line_frame = _frame(
        {
            "invoice_id": [x[0] for x in lines],
            "charge_id": [x[1] for x in lines],
            "line_quantity": cents(x[2] for x in lines),
            "line_unit_price": cents(x[3] for x in lines),
        }
    )
    return frame, line_frame


def credit_notes(records: list[Record]) -> pd.DataFrame:
    """Billing's credit notes (a void one credits nothing)."""
    live = [r for r in records if r.get("status") not in ("void", "cancelled")]
    return _frame(
        {
            "credit_note_id": _strs(r["id"] for r in live),
            "invoice_id": _strs(r.get("invoice_id") for r in live),
            "amount": cents(r.get("amount") for r in live),
        }
    )


# --- ERP --------------------------------------------------------------------------------------


def customers(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "customer_id": _strs(r["id"] for r in records),
            "account_id": _strs(r.get("externalId") for r in records),
            "legal_entity": _strs(_ref(r.get("subsidiary")) for r in records),
            "currency": [_ref(r.get("currency"), "refName") for r in records],
            "created_at": times(r.get("dateCreated") for r in records),
        }
    )


def postings(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "posting_id": _strs(r["id"] for r in records),
            "invoice_id": _strs(r.get("externalId") for r in records),
            "customer_id": _strs(_ref(r.get("entity")) for r in records),
            "deal_id": _strs(r.get("custbody_deal_id") for r in records),
            "currency": [_ref(r.get("currency"), "refName") for r in records],
            "amount": cents(r.get("amount") for r in records),
            "remaining": cents(r.get("amountRemaining") for r in records),
            "status": [r.get("status") for r in records],
            "posted_at": times(r.get("dateCreated") for r in records),
        }
    )


def payments(records: list[Record]) -> pd.DataFrame:
    return _frame(
        {
            "payment_id": _strs(r["id"] for r in records),
            "posting_id": _strs(_ref(r.get("arPosting")) for r in records),
            "invoice_id": _strs(r.get("invoiceExternalId") for r in records),
            "deal_id": _strs(r.get("custbody_deal_id") for r in records),
            "currency": [_ref(r.get("currency"), "refName") for r in records],
            "amount": cents(r.get("amount") for r in records),
            "paid_at": times(
                r.get("dateCreated") or _get(r, "tranDate", "trandate") for r in records
            ),
        }
    )


# --- the store --------------------------------------------------------------------------------


def refused_by_validation(engine: Engine, flow: str) -> set[str]:
    """Source records a flow's contract validation refused on purpose (an unresolved or
    discarded validation dead letter): known exceptions finance already has, not drift.
    The id is what follows the step in the idempotency key (`invoice_to_ar.post:<id>`)."""
    query = (
        sa.select(SyncMessage.idempotency_key)
        .join(DeadLetter, DeadLetter.message_id == SyncMessage.id)
        .where(
            DeadLetter.flow == flow,
            DeadLetter.error_class == "validation",
            DeadLetter.state != DeadLetterState.REPLAYED,
        )
    )
    with engine.connect() as conn:
        keys = conn.execute(query).scalars().all()
    return {key.split(":", 1)[1] for key in keys if ":" in key}


def store_payments(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Payment.id, Payment.invoice_id, Payment.amount, Payment.currency)
        ).all()
    return store_payments_frame([tuple(r) for r in rows])


def store_payments_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(payment id, invoice id, amount, currency) rows of the store's payments."""
    return _frame(
        {
            "payment_id": [r[0] for r in rows],
            "store_invoice_id": [r[1] for r in rows],
            "store_amount": cents(r[2] for r in rows),
            "store_currency": [r[3] for r in rows],
        }
    )


def store_invoices(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Invoice.id, Invoice.deal_id, Invoice.amount_paid, Invoice.stage)
        ).all()
    return store_invoices_frame([tuple(r) for r in rows])


def store_invoices_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """(invoice id, deal id, amount paid, stage) rows of the store's invoices."""
    return _frame(
        {
            "invoice_id": [r[0] for r in rows],
            "store_deal_id": [r[1] for r in rows],
            "store_paid": cents(r[2] for r in rows),
            "store_stage": [r[3] for r in rows],
        }
    )


# --- reading once -----------------------------------------------------------------------------


class Collections:
    """Each (system, collection) fetched at most once per probe run."""

    def __init__(self, apis: Mapping[System, Api]) -> None:
        self._apis = apis
        self._cache: dict[tuple[System, str], list[Record]] = {}

    def __call__(self, system: System, name: str) -> list[Record]:
        key = (system, name)
        if key not in self._cache:
            self._cache[key] = list(
                self._apis[system].records(name, attributes={"q2c.system": system.value})
            )
        return self._cache[key]


Loader = Callable[[System, str], list[Record]]


def to_timestamp(moment: dt.datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
