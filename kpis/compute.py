"""Every KPI of DESIGN.md section 1 from the facts, for every window and slice."""

from __future__ import annotations

import datetime as dt

from kpis.activation import compute_activation
from kpis.billing import compute_billing
from kpis.cash import compute_cash
from kpis.context import KpiContext
from kpis.facts import build_facts
from kpis.frames import Columns, IntegrationFrames, StoreFrames
from kpis.integration import compute_integration
from kpis.invoicing import compute_invoicing
from kpis.parts import Parts
from kpis.pipeline import compute_pipeline
from kpis.tables import FactTables
from kpis.utilization import compute_utilization
from kpis.values import KpiValue
from throughline.config import Settings


def compute_from_tables(
    tables: FactTables,
    integration: IntegrationFrames | None,
    settings: Settings,
    now: dt.datetime,
    settled: Parts | None = None,
    consultants: Columns | None = None,
) -> list[KpiValue]:
    """Every KPI over `tables`, plus the `settled` point-in-time parts of deals kept out of
    them (kpis.incremental), plus utilization when the consultants are given."""
    ctx = KpiContext.build(settings, now)
    values = [
        *compute_activation(tables, ctx),
        *compute_invoicing(tables, ctx),
        *compute_billing(tables, ctx),
        *compute_cash(tables, ctx, settled),
        *compute_pipeline(tables, ctx, settled),
        *compute_utilization(tables, consultants, ctx),
    ]
    if integration is not None:
        values += compute_integration(integration, ctx)
    return values


def compute_kpis(
    frames: StoreFrames,
    integration: IntegrationFrames | None,
    settings: Settings,
    now: dt.datetime,
) -> list[KpiValue]:
    tables = FactTables.of(build_facts(frames, settings.kpis))
    return compute_from_tables(tables, integration, settings, now, consultants=frames.consultants)
