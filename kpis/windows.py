"""The time windows KPIs are computed over, and the label of point-in-time KPIs."""

from __future__ import annotations

from dataclasses import dataclass

from throughline.config import KpiSettings

POINT_IN_TIME = "now"


@dataclass(frozen=True)
class Window:
    """The half-open interval `(now - seconds, now]`, labelled as configured (`30d`)."""

    label: str
    seconds: float


def windows_from(settings: KpiSettings) -> tuple[Window, ...]:
    return tuple(Window(str(d), d.timedelta.total_seconds()) for d in settings.windows)


def parse_window(label: str) -> Window:
    """A window from its label (`7d`, `24h`), for the command line and the API."""
    from throughline.config import parse_duration

    duration = parse_duration(label)
    return Window(str(duration), duration.timedelta.total_seconds())
