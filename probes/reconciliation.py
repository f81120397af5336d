"""Reconciliation probes: one system against another, record by record, by count and by
amount per legal entity and currency. Each probe reads each collection it needs once
through the systems' APIs (`probes.recon_frames`), compares them as frames
(`probes.recon_compare`) and returns one finding per mismatching record.

What is not drift: a sync still inside its grace (the stage SLAs of DESIGN.md), and a
record the contract validation refused on purpose (a validation dead letter finance
already has; counted in the outcome's detail as `refused_by_validation`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from probes import recon_compare as compare
from probes import recon_frames as frames
from probes.base import Outcome, Probe, ProbeContext
from probes.recon_compare import Grace, Result
from store.states import ProbeKind, System

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


__all__ = ["BILLING_MODELS", "Grace", "ReconciliationProbe", "reconciliation_probes"]
