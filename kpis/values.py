"""A computed KPI value: one number for one KPI, window and slice, with its members."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kpis.definitions import DEFINITIONS
from kpis.slicing import Members


@dataclass(frozen=True)
class KpiValue:
    kpi: str
    window: str
    dimension: str
    dimension_value: str
    value: float | None
    unit: str
    members: Members | Sequence[str] = field(default=(), repr=False)
    """the ids behind the value (deal, invoice, billable item, message or probe result)"""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def member_count(self) -> int:
        return len(self.members)

    def member_ids(self, limit: int | None = None) -> list[str]:
        if isinstance(self.members, Members):
            return self.members.tolist() if limit is None else self.members.head(limit)
        listed = [str(m) for m in self.members]
        return listed if limit is None else listed[:limit]

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
