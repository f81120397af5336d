"""`throughline kpis`: Quote-to-cash KPIs by window and slice."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "kpis",
    "Quote-to-cash KPIs by window and slice.",
    {
        "show": "Print KPI values.",
        "refresh": "Compute and store KPI snapshots now.",
    },
    7,
)
