"""Invoices in billing against AR postings in the ERP, and ERP payments against cash
collected."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from probes.recon_common import (
    Grace,
    Result,
    findings,
    floats,
    member,
    ne,
    ne_text,
    past_grace,
    per_entity,
    pick,
    positions,
    summary,
    take,
)


def invoices_vs_postings(
    invoices: pd.DataFrame,
    postings: pd.DataFrame,
    customers: pd.DataFrame,
    *,
    now: pd.Timestamp,
    grace: Grace,
    refused: Collection[str] = (),
    credits: pd.DataFrame | None = None,
) -> Result:
    """Every released invoice posted exactly once, with its amount and currency. The
    postings are matched to their invoice by position (one factorization of the ids), so
    only the mismatching rows are ever gathered into frames. An invoice billing credited in
    full (`credits`: the credit notes; flow 4 credits one the ERP refused for good) is not
    owed a posting: counted as `credited_in_full` when it has none."""
    result = Result()
    released = ~invoices.status.isin(["draft", "cancelled", "void"]).to_numpy()
    at = positions(postings.invoice_id, invoices.invoice_id)  # invoice row of each posting
    matched = at >= 0
    times_posted = np.bincount(at[matched], minlength=len(invoices))
    held = member(invoices.invoice_id, refused).to_numpy()
    credited = _credited_in_full(invoices, credits)
    past = past_grace(invoices.issued_at, grace.posting, now).to_numpy()
    never = invoices[released & (times_posted == 0) & ~held & ~credited & past]
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
    billed_amount = floats(invoices.amount)[inv_at]
    amount_off = ne(billed_amount, floats(posted.amount))
    currency_off = ne_text(pick(invoices.currency, inv_at), posted.currency.array)
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
                floats(invoices.amount)[released],
            ),
            "erp": per_entity(
                customers.legal_entity,
                positions(postings.customer_id, customers.customer_id),
                postings.currency,
                floats(postings.amount),
            ),
        }
    )
    result.counts = {
        "invoices": int(released.sum()),
        "postings": len(postings),
        "refused_by_validation": int((released & held).sum()),
        "credited_in_full": int((released & (times_posted == 0) & credited & ~held).sum()),
        "within_posting_sla": int(
            (released & (times_posted == 0) & ~held & ~credited & ~past).sum()
        ),
    }
    return result


def _credited_in_full(invoices: pd.DataFrame, credits: pd.DataFrame | None) -> np.ndarray:
    """Per invoice row: whether its credit notes add up to its whole amount."""
    if credits is None or credits.empty:
        return np.zeros(len(invoices), dtype=bool)
    at = positions(credits.invoice_id, invoices.invoice_id)
    on = at >= 0
    total = np.bincount(
        at[on], weights=np.nan_to_num(floats(credits.amount))[on], minlength=len(invoices)
    )
    amount = floats(invoices.amount)
    with np.errstate(invalid="ignore"):
        full: np.ndarray = (total > 0) & (total >= amount)
    return full


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
    amount = floats(payments.amount)
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
    posting_currency = take(postings.currency.to_numpy(dtype=object), at)
    currency_off = has_posting & ne(payments.currency.to_numpy(dtype=object), posting_currency)
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
    settled = past_grace(payments.paid_at, grace.cash, now).to_numpy()
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
    store_amount = floats(store_payments.store_amount)
    store_invoice = take(store_payments.store_invoice_id.to_numpy(dtype=object), rec)
    wrong = known & (
        ne(amount, np.where(rec >= 0, store_amount[np.where(rec >= 0, rec, 0)], np.nan))
        | ne(payments.invoice_id.to_numpy(dtype=object), store_invoice)
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
    store_paid = np.nan_to_num(floats(store_invoices.store_paid))
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
    full = paid_total >= np.nan_to_num(floats(postings.amount))
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
