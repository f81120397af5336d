"""Cutting a frame into the slices every KPI is reported for, and the shared statistics."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

ALL = "all"
UNKNOWN = "unknown"


def slices(
    frame: pd.DataFrame, dimensions: Sequence[str]
) -> Iterator[tuple[str, str, pd.DataFrame]]:
    """`("all", "all", frame)` then one `(dimension, value, rows)` per value present."""
    yield ALL, ALL, frame
    if frame.empty:
        return
    for dimension in dimensions:
        for value, rows in frame.groupby(dimension, sort=True):
            yield dimension, str(value), rows


def percentile(values: pd.Series, q: float) -> float | None:
    """The q-th percentile with linear interpolation between closest ranks (as
    PostgreSQL's percentile_cont and pandas' quantile); None for no values."""
    data = values.dropna().to_numpy(dtype="float64")
    if data.size == 0:
        return None
    return float(np.percentile(data, q * 100.0, method="linear"))


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def in_window(times: pd.Series, now: float, seconds: float) -> pd.Series:
    """`now - seconds < t <= now`."""
    return (times > now - seconds) & (times <= now)
