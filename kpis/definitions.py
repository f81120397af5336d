"""What each KPI is: its name, unit, formula (DESIGN.md section 1), scope and members.

These are data, read by the computation, the snapshots, the collector, the API and
docs/kpis.md; the numbers themselves come from the modules named for each KPI family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from store.states import DealStage

Scope = Literal["window", "now"]
TIME_KINDS: tuple[str, ...] = ("time",)
"""billable_items.kind values that are hours (the rest are milestones and fees)."""
MONEY = "money"  # replaced by the reporting currency code when a value is computed

AGE_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0_30d", 0.0, 30.0),
    ("31_60d", 30.0, 60.0),
    ("61_90d", 60.0, 90.0),
    ("90d_plus", 90.0, float("inf")),
)
"""Age buckets in days, each `(low, high]` (the first also holds age 0)."""


def age_buckets(age_days: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Per age, the index of its bucket in AGE_BUCKETS (-1 for none: NaN)."""
    out = np.full(len(age_days), -1, dtype=np.intp)
    for i, (_, low, high) in enumerate(AGE_BUCKETS):
        out[((age_days > low) | (low == 0)) & (age_days <= high)] = i
    return out


@dataclass(frozen=True)
class KpiDefinition:
    name: str
    unit: str
    formula: str
    scope: Scope
    member_type: str
    group: Literal["business", "integration"] = "business"


def _d(
    name: str,
    unit: str,
    formula: str,
    scope: Scope,
    member_type: str,
    group: Literal["business", "integration"] = "business",
) -> KpiDefinition:
    return KpiDefinition(name, unit, formula, scope, member_type, group)


def _all() -> dict[str, KpiDefinition]:
    latency = "project_activated.at - closed_won.at per deal activated in the window"
    items: list[KpiDefinition] = [
        _d("activation_latency_p50", "seconds", f"p50 of {latency}", "window", "deal"),
        _d("activation_latency_p90", "seconds", f"p90 of {latency}", "window", "deal"),
        _d("activation_latency_count", "deals", f"count of {latency}", "window", "deal"),
        _d(
            "activation_pending_count",
            "deals",
            "deals past closed_won (at or before now) with no project_activated yet, not cancelled",
            "now",
            "deal",
        ),
        _d(
            "activation_pending_value",
            MONEY,
            "sum of deal value of deals past closed_won with no project_activated yet, "
            "not cancelled",
            "now",
            "deal",
        ),
        _d(
            "invoice_exception_rate",
            "ratio",
            "invoices issued in the window with at least one exception (rejected, "
            "posting_failed, disputed, credited) / invoices issued in the window",
            "window",
            "invoice",
        ),
        _d(
            "posting_success_rate",
            "ratio",
            "invoices issued in the window and posted within the invoiced->posted SLA / "
            "invoices issued in the window whose SLA deadline has passed",
            "window",
            "invoice",
        ),
        _d(
            "first_attempt_posting_success",
            "ratio",
            "first attempts of AR postings (ar-posting:* messages) started in the window that "
            "succeeded / first attempts of AR postings started in the window",
            "window",
            "sync_message",
            "integration",
        ),
        _d(
            "unbilled_wip",
            MONEY,
            "sum of amount of billable items approved and not invoiced (as of now)",
            "now",
            "billable_item",
        ),
        _d(
            "billing_leakage",
            MONEY,
            "over billable items approved in the window: amount still uninvoiced past "
            "approved_at + billing cycle + grace, plus max(rate x quantity - invoiced "
            "amount, 0) of invoiced items",
            "window",
            "billable_item",
        ),
        _d(
            "billing_leakage_uninvoiced",
            MONEY,
            "billing_leakage, cause: approved and still uninvoiced past billing cycle + grace",
            "window",
            "billable_item",
        ),
        _d(
            "billing_leakage_underbilled",
            MONEY,
            "billing_leakage, cause: invoiced below contract rate x quantity",
            "window",
            "billable_item",
        ),
        _d(
            "billing_leakage_share",
            "ratio",
            "billing_leakage / sum of amount of billable items approved in the window",
            "window",
            "billable_item",
        ),
        _d(
            "dso",
            "days",
            "open AR at now / revenue invoiced in the last 90 days x 90 (credited invoices "
            "are in neither)",
            "now",
            "invoice",
        ),
        _d(
            "open_ar",
            MONEY,
            "sum of amount - amount_paid of invoices issued, not credited and not paid",
            "now",
            "invoice",
        ),
        _d(
            "cash_conversion_p50",
            "days",
            "p50 of invoice paid_at - billable_approved.at per billable item whose invoice "
            "was paid in the window",
            "window",
            "billable_item",
        ),
        _d(
            "cash_conversion_p90",
            "days",
            "p90 of invoice paid_at - billable_approved.at per billable item whose invoice "
            "was paid in the window",
            "window",
            "billable_item",
        ),
        _d(
            "deal_cash_conversion_p50",
            "days",
            "p50 of first_cash.at - closed_won.at per deal whose first cash came in the window",
            "window",
            "deal",
        ),
        _d(
            "deal_cash_conversion_p90",
            "days",
            "p90 of first_cash.at - closed_won.at per deal whose first cash came in the window",
            "window",
            "deal",
        ),
        _d(
            "backlog",
            MONEY,
            "per deal not cancelled max(contracted value - value invoiced (not credited), 0), "
            "summed",
            "now",
            "deal",
        ),
        _d(
            "backlog_burn_months",
            "months",
            "backlog / (revenue invoiced in the last 90 days / 3): months of invoicing at the "
            "recent rate that the backlog represents",
            "now",
            "deal",
        ),
        _d(
            "billable_hours",
            "hours",
            "sum of quantity of time items (kind 'time') approved in the window: the "
            "numerator of utilization",
            "window",
            "billable_item",
        ),
        _d(
            "utilization",
            "ratio",
            "billable hours approved in the window (time items, not rejected) of the "
            "consultants / their capacity hours in the window (weekly capacity x days of the "
            "window they existed / 7), by the consultant's practice and legal entity",
            "window",
            "consultant",
        ),
        _d(
            "time_to_invoice_p50",
            "days",
            "p50 of invoiced_at - approved_at per billable item invoiced in the window",
            "window",
            "billable_item",
        ),
        _d(
            "time_to_invoice_p90",
            "days",
            "p90 of invoiced_at - approved_at per billable item invoiced in the window",
            "window",
            "billable_item",
        ),
        _d(
            "sync_success_rate",
            "ratio",
            "outbox messages created in the window that succeeded / those that finished "
            "(succeeded or dead)",
            "window",
            "sync_message",
            "integration",
        ),
        _d(
            "sync_retries",
            "attempts",
            "sync attempts started in the window with attempt_no > 1",
            "window",
            "sync_message",
            "integration",
        ),
        _d(
            "dead_letters",
            "messages",
            "dead letters created in the window",
            "window",
            "sync_message",
            "integration",
        ),
        _d(
            "replay_success_rate",
            "ratio",
            "replays requested in the window that succeeded or found the work already done / "
            "replays requested in the window that finished",
            "window",
            "sync_message",
            "integration",
        ),
        _d(
            "probe_availability",
            "ratio",
            "health probe results started in the window with status ok or warn / all health "
            "probe results started in the window",
            "window",
            "probe_result",
            "integration",
        ),
        _d(
            "probe_latency_p95",
            "ms",
            "p95 of duration_ms of health probe results started in the window",
            "window",
            "probe_result",
            "integration",
        ),
        _d(
            "rate_limit_headroom_min",
            "ratio",
            "min over health probe results started in the window of rate_limit_remaining / "
            "rate_limit_limit (from the system's rate-limit response headers)",
            "window",
            "probe_result",
            "integration",
        ),
    ]
    for name, unit in (("activation_pending_count", "deals"), ("activation_pending_value", MONEY)):
        base = next(i for i in items if i.name == name)
        items += [
            _d(f"{name}_{b}", unit, f"{base.formula}, aged {b} since closed_won", "now", "deal")
            for b, _, _ in AGE_BUCKETS
        ]
    base_wip = next(i for i in items if i.name == "unbilled_wip")
    items += [
        _d(
            f"unbilled_wip_{b}",
            MONEY,
            f"{base_wip.formula}, aged {b} since approval",
            "now",
            "billable_item",
        )
        for b, _, _ in AGE_BUCKETS
    ]
    for stage in DealStage:
        items += [
            _d(
                f"funnel_count_{stage.value}",
                "deals",
                f"deals whose current stage is {stage.value}",
                "now",
                "deal",
            ),
            _d(
                f"funnel_value_{stage.value}",
                MONEY,
                f"sum of deal value of deals whose current stage is {stage.value}",
                "now",
                "deal",
            ),
        ]
    return {i.name: i for i in items}


DEFINITIONS: dict[str, KpiDefinition] = _all()

BUSINESS_DIMENSIONS: tuple[str, ...] = ("legal_entity", "region", "practice", "currency")
INTEGRATION_DIMENSIONS: tuple[str, ...] = ("flow", "system")
DIMENSION_ALIASES = {"entity": "legal_entity", "all": "all"}
SLICE_CHOICES: tuple[str, ...] = ("all", "entity", *BUSINESS_DIMENSIONS, *INTEGRATION_DIMENSIONS)
"""What `--by` / `?by=` accept: the slice dimensions, `entity` for legal_entity, and `all`"""


def dimension_named(by: str) -> str:
    """The slice dimension `by` names (`entity` is legal_entity); ValueError naming the
    choices for anything else (an unknown one would silently match no value)."""
    if by not in SLICE_CHOICES:
        raise ValueError(f"unknown slice {by!r}: choose from {', '.join(SLICE_CHOICES)}")
    return DIMENSION_ALIASES.get(by, by)
