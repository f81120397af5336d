"""Command groups of `throughline`, one module per group, registered here in help order."""

from __future__ import annotations

import typer

from throughline.commands import (
    alerts,
    approvals,
    deals,
    dlq,
    export,
    kpis,
    probes,
    sandbox,
    tokens,
    users,
)

GROUPS: dict[str, typer.Typer] = {
    "sandbox": sandbox.app,
    "dlq": dlq.app,
    "approvals": approvals.app,
    "probes": probes.app,
    "kpis": kpis.app,
    "deals": deals.app,
    "export": export.app,
    "alerts": alerts.app,
    "tokens": tokens.app,
    "users": users.app,
}
