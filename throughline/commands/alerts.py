"""`throughline alerts`: SLA alerts: list, acknowledge, silence."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "alerts",
    "SLA alerts: list, acknowledge, silence.",
    {
        "list": "List alerts.",
        "ack": "Acknowledge an alert.",
        "silence": "Silence matching alerts.",
    },
    None,
)
