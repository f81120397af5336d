"""Clocks: the simulation clock the five systems and the actors share, and the wall clock
that tokens and rate limits run on. Both are injected; tests drive `ManualClock`."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """Real UTC time."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that moves only when told to; never backwards."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        if delta < dt.timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            if when < self._now:
                raise ValueError(f"a clock does not go backwards: {when} < {self._now}")
            self._now = when


class AcceleratedClock:
    """Live mode: simulated time starts at `start` and runs `speedup` times real time."""

    def __init__(
        self,
        start: dt.datetime,
        speedup: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self._start = start
        self._speedup = speedup
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> dt.datetime:
        elapsed = (self._monotonic() - self._t0) * self._speedup
        return self._start + dt.timedelta(seconds=elapsed)
