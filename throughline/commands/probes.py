"""`throughline probes`: Health, reconciliation, freshness and stuck-work checks."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "probes",
    "Health, reconciliation, freshness and stuck-work checks.",
    {
        "list": "List probes and their last result.",
        "run": "Run one probe now.",
    },
    6,
)
