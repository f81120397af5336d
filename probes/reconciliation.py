"""Reconciliation probes: one system against another, record by record, by count and by
amount per legal entity and currency. Each probe reads each collection it needs once
through the systems' APIs (`probes.recon_frames`), compares them as frames
(`probes.recon_compare`) and returns one finding per mismatching record, with the ids and
values of both sides in its detail; the outcome's detail holds the count per kind and the
side-by-side counts and amounts per legal entity and currency.

The kinds of finding each probe reports are in `FINDING_KINDS`.

What is not drift: a sync still inside its grace (`Grace`: the stage SLAs of DESIGN.md,
counted from the source record's own time: a won deal 24 h to reach CLM, an executed
contract 24 h to its customer and project and 48 h to its schedule, an amendment 24 h,
an approved billable 24 h to its charge and the billing cycle + 3 days to its invoice, an
invoice 1 h to its posting, a payment 24 h to the store), and a record the contract
validation refused on purpose (a validation dead letter finance already has; counted in
the outcome's detail as `refused_by_validation`), and an invoice billing credited in full
without a posting (flow 4 credits one the ERP refused for good; counted as
`credited_in_full`). A record that is wrong rather than late (a second posting, another
amount or rate) is drift at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from probes import recon_compare as compare
from probes import recon_frames as frames
from probes.base import Outcome, Probe, ProbeContext
from probes.recon_compare import Grace, Result
from store.states import ProbeKind, System

FINDING_KINDS: dict[str, tuple[str, ...]] = {
    "reconcile.deals_vs_downstream": (
        "contract_missing",  # a won deal with no contract (request) in CLM
        "contract_duplicated",  # more than one live contract for a deal
        "orphan_contract",  # a contract for no won deal
        "contract_value_mismatch",  # executed contract value != won amount
        "contract_currency_mismatch",
        "customer_missing",  # an executed contract's account not in the ERP
        "customer_duplicated",  # an account twice in one legal entity of the ERP
        "orphan_customer",  # an ERP customer whose account has no contract
        "project_missing",  # an executed contract with no PSA project
        "project_duplicated",
        "orphan_project",  # an active project for no executed contract
        "project_value_mismatch",  # project price or currency != contract value
    ),
    "reconcile.contracts_vs_schedules": (
        "schedule_missing",
        "schedule_duplicated",
        "orphan_schedule",  # a live schedule for no executed contract
        "schedule_not_cancelled",  # the contract was cancelled, its schedule is active
        "currency_mismatch",
        "billing_model_mismatch",
        "cap_mismatch",
        "po_mismatch",
        "monthly_fee_mismatch",
        "term_mismatch",
        "rate_mismatch",  # a role's rate (or the role) differs from the rate card
        "milestone_missing",  # a contract milestone with no PSA milestone
        "milestone_amount_mismatch",  # PSA milestone or its charge != contract amount
    ),
    "reconcile.billable_vs_billed": (
        "unbilled_time",  # approved hours on an hourly project never charged
        "unbilled_milestone",
        "charge_duplicated",  # one approved item charged twice
        "quantity_mismatch",  # charged hours != approved hours (amount: value leaked)
        "rate_mismatch",  # charged price != the PSA rate
        "uninvoiced_charge",  # pending past the billing cycle and its grace
        "invoice_line_mismatch",  # a line bills its charge at another quantity or price
    ),
    "reconcile.invoices_vs_postings": (
        "never_posted",
        "posted_twice",
        "amount_mismatch",
        "currency_mismatch",
        "orphan_posting",  # an AR posting for no billing invoice
    ),
    "reconcile.payments_vs_cash": (
        "orphan_payment",  # a payment on no AR posting
        "payment_currency_mismatch",
        "payment_not_recorded",  # an ERP payment not in our store's cash
        "payment_amount_mismatch",  # recorded at another amount or invoice
        "cash_without_payment",  # cash we record per invoice != the ERP's payments
        "paid_status_mismatch",  # ERP posting paid without payments covering it (or not)
    ),
}

BILLING_MODELS = {
    "time_and_materials": "time_and_materials",
    "fixed_fee_milestone": "milestone",
    "retainer": "retainer",
}


def deals_vs_downstream(ctx: ProbeContext, read: frames.Loader, grace: Grace) -> Result:
    return compare.deals_downstream(
        frames.opportunities(read(System.CRM, "opportunities")),
        frames.accounts(read(System.CRM, "accounts")),
        frames.agreements(read(System.CLM, "agreements")),
        frames.customers(read(System.ERP, "customers")),
        frames.workspaces(read(System.PSA, "workspaces")),
        now=frames.to_timestamp(ctx.now()),
        grace=grace,
    )


def contracts_vs_schedules(ctx: ProbeContext, read: frames.Loader, grace: Grace) -> Result:
    agreement_records = read(System.CLM, "agreements")
    terms = frames.effective_terms(agreement_records, read(System.CLM, "amendments"))
    schedules, schedule_rates = frames.schedules(read(System.BILLING, "billing_schedules"))
    return compare.contracts_vs_schedules(
        frames.agreements(agreement_records),
        terms.contracts,
        terms.rates,
        terms.milestones,
        schedules,
        schedule_rates,
        frames.workspaces(read(System.PSA, "workspaces")),
        frames.stories(read(System.PSA, "stories")),
        frames.charges(read(System.BILLING, "charges")),
        now=frames.to_timestamp(ctx.now()),
        grace=grace,
        billing_models=BILLING_MODELS,
    )


def billable_vs_billed(ctx: ProbeContext, read: frames.Loader, grace: Grace) -> Result:
    schedules, _rates = frames.schedules(read(System.BILLING, "billing_schedules"))
    _invoices, lines = frames.invoices(read(System.BILLING, "invoices"))
    return compare.billable_vs_billed(
        frames.time_entries(read(System.PSA, "time_entries")),
        frames.stories(read(System.PSA, "stories")),
        frames.workspaces(read(System.PSA, "workspaces")),
        frames.charges(read(System.BILLING, "charges")),
        schedules,
        lines,
        now=frames.to_timestamp(ctx.now()),
        grace=grace,
        refused_items=frames.refused_by_validation(ctx.engine, "billables"),
        refused_invoices=frames.refused_by_validation(ctx.engine, "invoice_to_ar"),
    )


def invoices_vs_postings(ctx: ProbeContext, read: frames.Loader, grace: Grace) -> Result:
    invoices, _lines = frames.invoices(read(System.BILLING, "invoices"))
    return compare.invoices_vs_postings(
        invoices,
        frames.postings(read(System.ERP, "ar_postings")),
        frames.customers(read(System.ERP, "customers")),
        now=frames.to_timestamp(ctx.now()),
        grace=grace,
        refused=frames.refused_by_validation(ctx.engine, "invoice_to_ar"),
        credits=frames.credit_notes(read(System.BILLING, "credit_notes")),
    )


def payments_vs_cash(ctx: ProbeContext, read: frames.Loader, grace: Grace) -> Result:
    return compare.payments_vs_cash(
        frames.payments(read(System.ERP, "payments")),
        frames.postings(read(System.ERP, "ar_postings")),
        frames.customers(read(System.ERP, "customers")),
        frames.store_payments(ctx.engine),
        frames.store_invoices(ctx.engine),
        now=frames.to_timestamp(ctx.now()),
        grace=grace,
    )


Check = Callable[[ProbeContext, frames.Loader, Grace], Result]


@dataclass
class ReconciliationProbe:
    """One reconciliation: fail with one finding per mismatching record, ok when none."""

    name: str
    system: str | None
    flow: str | None
    description: str
    check: Check
    grace: Grace = field(default_factory=Grace)
    kind: ProbeKind = ProbeKind.RECONCILIATION

    def run(self, ctx: ProbeContext) -> Outcome:
        result = self.check(ctx, frames.Collections(ctx.apis), self.grace)
        return Outcome.from_findings(result.findings, detail=result.detail())


def reconciliation_probes(grace: Grace | None = None) -> list[Probe]:
    g = grace or Grace()
    return [
        ReconciliationProbe(
            "reconcile.deals_vs_downstream",
            "crm",
            "deal_intake",
            "Closed-won deals (CRM) against contracts (CLM), ERP customers and PSA projects: "
            "a won deal or executed contract missing downstream past its grace, an orphan "
            "downstream record, a value or currency that differs.",
            deals_vs_downstream,
            g,
        ),
        ReconciliationProbe(
            "reconcile.contracts_vs_schedules",
            "billing",
            "provisioning",
            "Executed contracts (CLM, with their amendments) against billing schedules: "
            "currency, billing model, rate card, cap, PO, retainer fee and term; contract "
            "milestones against the PSA milestones and the charges that bill them.",
            contracts_vs_schedules,
            g,
        ),
        ReconciliationProbe(
            "reconcile.billable_vs_billed",
            "billing",
            "billables",
            "Approved billable time and milestones (PSA) against billed quantity (billing "
            "charges and invoice lines): leakage from unbilled or under-billed work and "
            "charges left uninvoiced past the billing cycle.",
            billable_vs_billed,
            g,
        ),
        ReconciliationProbe(
            "reconcile.invoices_vs_postings",
            "erp",
            "invoice_to_ar",
            "Invoices released in billing against AR postings in the ERP: every invoice "
            "posted exactly once with its amount and currency, no posting without an invoice.",
            invoices_vs_postings,
            g,
        ),
        ReconciliationProbe(
            "reconcile.payments_vs_cash",
            "erp",
            "cash_collected",
            "Payments in the ERP against the cash collected in our store (payments and the "
            "invoices' paid amounts) and against the ERP's own receivable status.",
            payments_vs_cash,
            g,
        ),
    ]


__all__ = [
    "BILLING_MODELS",
    "FINDING_KINDS",
    "Grace",
    "ReconciliationProbe",
    "reconciliation_probes",
]
