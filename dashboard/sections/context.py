"""The per-run context a section needs: settings, their cache key, the store URL, filters,
the clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from dashboard.filters import DashboardFilters, current_filters
from dashboard.resources import app_settings, minute, now, settings_fingerprint
from throughline.config import Settings


@dataclass(frozen=True)
class PageContext:
    settings: Settings
    key: str
    url: str
    filters: DashboardFilters
    now: dt.datetime

    @property
    def window(self) -> dt.timedelta:
        from throughline.config import parse_duration

        return parse_duration(self.filters.window).timedelta

    def in_view(self, value_rc: float | None) -> float | None:
        from dashboard.formatting import convert

        return convert(value_rc, self.settings, self.filters.currency)

    def keep_slices(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows of a frame with legal_entity / region / practice columns the filters keep."""
        for dimension, value in self.filters.slices.chosen():
            frame = frame[frame[dimension].astype(str) == value]
        return frame


def page_context() -> PageContext:
    settings = app_settings()
    return PageContext(
        settings=settings,
        key=settings_fingerprint(settings),
        url=settings.database.url,
        filters=current_filters(settings),
        now=minute(now()),
    )
