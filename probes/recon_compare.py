"""The five reconciliation comparisons on frames (see `probes.recon_frames`), one module
each, and what they share (`probes.recon_common`)."""

from __future__ import annotations

from probes.recon_billables import billable_vs_billed
from probes.recon_common import Grace, Result
from probes.recon_contracts import contracts_vs_schedules
from probes.recon_deals import deals_downstream
from probes.recon_ledger import invoices_vs_postings, payments_vs_cash

__all__ = [
    "Grace",
    "Result",
    "billable_vs_billed",
    "contracts_vs_schedules",
    "deals_downstream",
    "invoices_vs_postings",
    "payments_vs_cash",
]
