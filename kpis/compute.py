"""Every KPI of DESIGN.md section 1 from the frames, for every window and slice."""

from __future__ import annotations

import datetime as dt

from kpis.activation import compute_activation
from kpis.billing import compute_billing
from kpis.cash import compute_cash
from kpis.context import KpiContext
from kpis.facts import build_facts
from kpis.frames import IntegrationFrames, StoreFrames
from kpis.integration import compute_integration
from kpis.invoicing import compute_invoicing
from kpis.pipeline import compute_pipeline
from kpis.values import KpiValue
from throughline.config import Settings


def compute_kpis(
    frames: StoreFrames,
    integration: IntegrationFrames | None,
    settings: Settings,
    now: dt.datetime,
) -> list[KpiValue]:
    ctx = KpiContext.build(settings, now)
    facts = build_facts(frames, settings.kpis)
    values = [
        *compute_activation(facts, ctx),
        *compute_invoicing(facts, ctx),
        *compute_billing(facts, ctx),
        *compute_cash(facts, ctx),
        *compute_pipeline(facts, ctx),
    ]
    if integration is not None:
        values += compute_integration(integration, ctx)
    return values
