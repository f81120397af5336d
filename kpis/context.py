"""What every KPI computation is given: the moment, the windows, the settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kpis.definitions import BUSINESS_DIMENSIONS, DEFINITIONS, MONEY
from kpis.money import cents
from kpis.slicing import Members
from kpis.values import KpiValue
from kpis.windows import Window, windows_from
from throughline.config import Settings


@dataclass(frozen=True)
class KpiContext:
    now: float
    """epoch seconds"""
    windows: tuple[Window, ...]
    settings: Settings
    dimensions: tuple[str, ...] = BUSINESS_DIMENSIONS

    @classmethod
    def build(cls, settings: Settings, now: dt.datetime) -> KpiContext:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return cls(now=now.timestamp(), windows=windows_from(settings.kpis), settings=settings)

    @property
    def currency(self) -> str:
        return self.settings.kpis.reporting_currency

    def value(
        self,
        kpi: str,
        window: str,
        slice_: tuple[str, str],
        value: float | None,
        members: Members | Sequence[str] = (),
        **meta: Any,
    ) -> KpiValue:
        unit = DEFINITIONS[kpi].unit
        if unit == MONEY:
            unit = self.settings.kpis.reporting_currency
            if value is not None:
                value = cents(value)
        return KpiValue(kpi, window, slice_[0], slice_[1], value, unit, members, meta)
