"""A computed KPI value: one number for one KPI, window and slice, with its members."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kpis.definitions import DEFINITIONS


@dataclass(frozen=True)
class KpiValue:
    kpi: str
    window: str
    dimension: str
    dimension_value: str
    value: float | None
    unit: str
    members: Sequence[str] = field(default=(), repr=False)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def member_count(self) -> int:
        return len(self.members)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kpi, self.window, self.dimension, self.dimension_value)

    def metadata(self) -> dict[str, Any]:
        """Formula, window, unit and member type, plus what the computation added
        (numerator, denominator, ...): what is stored with each snapshot."""
        definition = DEFINITIONS[self.kpi]
        return {
            "formula": definition.formula,
            "window": self.window,
            "unit": self.unit,
            "member_type": definition.member_type,
            **self.meta,
        }
