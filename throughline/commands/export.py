"""`throughline export`: Export the lifecycle and KPIs for other tools."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "export",
    "Export the lifecycle and KPIs for other tools.",
    {
        "ocel": "Write an OCEL 2.0 JSON event log.",
        "csv": "Write KPI snapshots as CSV.",
    },
    7,
)
