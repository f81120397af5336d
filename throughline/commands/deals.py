"""`throughline deals`: Look up deals and their lifecycle."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "deals",
    "Look up deals and their lifecycle.",
    {
        "list": "List deals by stage and age.",
        "show": "Show one deal's lifecycle and sync steps.",
    },
    7,
)
