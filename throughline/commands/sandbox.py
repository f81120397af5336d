"""`throughline sandbox`: the simulated firm, five systems as HTTP services."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "sandbox",
    "Run the simulated firm: five systems as HTTP services, with faults and history.",
    {
        "up": "Start the five sandbox services.",
        "backfill": "Simulate N days of history.",
    },
    4,
)
