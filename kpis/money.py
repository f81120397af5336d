"""Conversion of money columns into the reporting currency with the configured rates."""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt

from throughline.config import KpiSettings

logger = logging.getLogger(__name__)


def to_reporting(
    amounts: npt.NDArray[np.float64],
    currencies: npt.NDArray[np.intp],
    labels: npt.NDArray[np.object_],
    settings: KpiSettings,
) -> npt.NDArray[np.float64]:
    """`amount x rate[currency]` as floats, the currencies given as codes into `labels`;
    an amount in a currency with no configured rate becomes NaN (left out of sums) and
    is logged, rather than counted at a guessed rate."""
    rates = np.array([settings.fx_rates.get(str(c), math.nan) for c in labels], dtype=np.float64)
    rate = rates[currencies] if len(rates) else np.full(len(currencies), math.nan)
    converted: npt.NDArray[np.float64] = np.asarray(amounts, dtype=np.float64) * rate
    unknown = np.isnan(rate) & ~np.isnan(amounts)
    if bool(unknown.any()):
        missing = sorted({str(labels[c]) for c in np.unique(currencies[unknown]).tolist()})
        logger.warning("no fx rate for %s: %d amounts left out", missing, int(unknown.sum()))
    return converted


def cents(value: float) -> float:
    """Money rounded to the cent, the precision every money KPI is reported in (never
    -0.0: a sum that came down to nothing by subtraction is 0). Rounds as `np.round`
    does (x 100, half to even, / 100), in plain Python where the value is finite."""
    if math.isfinite(value):
        return round(value * 100.0) / 100.0 + 0.0
    return float(np.round(value, 2)) + 0.0
