"""`throughline dlq`: Dead letters: list, inspect and replay failed syncs, exactly once."""

from __future__ import annotations

from throughline.console import planned_group

app = planned_group(
    "dlq",
    "Dead letters: list, inspect and replay failed syncs, exactly once.",
    {
        "list": "List dead letters.",
        "show": "Show one dead letter.",
        "replay": "Replay dead letters.",
    },
    5,
)
