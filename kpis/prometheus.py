"""KPI gauges for Prometheus, read from the latest snapshots at scrape time.

One family per KPI, `throughline_kpi_<kpi>`, labelled by window, dimension and slice
(legal entity, region, practice, currency, flow or system: bounded, never a deal id).
The caller registers it on a registry it owns:
`registry.register(KpiCollector(engine))`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from kpis.definitions import DEFINITIONS
from kpis.snapshot_rows import CURRENT, latest_refresh
from store.monitoring import KpiSnapshot

logger = logging.getLogger(__name__)

PREFIX = "throughline_kpi_"
LABELS = ["window", "dimension", "slice"]


def _family(kpi: str) -> GaugeMetricFamily:
    definition = DEFINITIONS[kpi]
    return GaugeMetricFamily(
        PREFIX + kpi, f"{definition.formula} [{definition.unit}]", labels=LABELS
    )


class KpiCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Named up front, so registering does not query the store.
        yield GaugeMetricFamily("throughline_kpi_snapshot_timestamp_seconds", "")
        for kpi in DEFINITIONS:
            yield _family(kpi)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stamp = GaugeMetricFamily(
            "throughline_kpi_snapshot_timestamp_seconds",
            "Unix time of the KPI snapshot the kpi gauges show (absent before the first)",
        )
        try:
            with self._engine.connect() as conn:
                as_of = latest_refresh(conn)
                rows = (
                    conn.execute(
                        select(
                            KpiSnapshot.kpi,
                            KpiSnapshot.window,
                            KpiSnapshot.dimension,
                            KpiSnapshot.dimension_value,
                            KpiSnapshot.value,
                        ).where(CURRENT)
                    ).all()
                    if as_of is not None
                    else []
                )
        except SQLAlchemyError:
            logger.exception("store unreachable while scraping KPI snapshots")
            return
        families: dict[str, GaugeMetricFamily] = {}
        for kpi, window, dimension, value_label, value in rows:
            if value is None or kpi not in DEFINITIONS:
                continue
            family = families.get(kpi)
            if family is None:
                family = families[kpi] = _family(kpi)
            family.add_metric([window, dimension, value_label], value)
        if as_of is not None:
            stamp.add_metric([], as_of.timestamp())
        yield stamp
        yield from families.values()
