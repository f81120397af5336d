"""The world: the firm's script, its five systems and its actors on one simulated clock.
`run_day` moves the clock to a day and lets every actor act once; live mode runs each
day as the accelerated clock reaches it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sandbox import actors, ground_truth
from sandbox.actors import Cast
from sandbox.clock import Clock, ManualClock
from sandbox.scenario import Firm
from sandbox.service import SystemService
from sandbox.world_state import WorldState

logger = logging.getLogger(__name__)

# The hour of the simulated day at which the firm's people act.
WORKDAY_HOUR = 8
DayHook = Callable[[dt.date], None]


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(WORKDAY_HOUR), dt.UTC)


class World:
    def __init__(
        self,
        firm: Firm,
        services: Mapping[str, SystemService],
        clock: Clock,
        state_path: Path,
    ) -> None:
        self.firm = firm
        self.services = services
        self.clock = clock
        self._state_path = state_path
        loaded = WorldState.load(state_path)
        if loaded is not None and (loaded.seed, loaded.start) != (
            firm.seed,
            firm.start.isoformat(),
        ):
            raise ValueError(
                f"{state_path} belongs to seed {loaded.seed} from {loaded.start}; "
                "use another directory for another world"
            )
        self.state = loaded or WorldState(seed=firm.seed, start=firm.start.isoformat())
        self.cast = Cast(firm, services, self.state)
        self._lock = threading.Lock()
        for system, service in services.items():
            service.ground_truth = self._truth_source(system)

    def _truth_source(self, system: str) -> Callable[[], dict[str, Any]]:
        def source() -> dict[str, Any]:
            return self.ground_truth(system)

        return source

    def setup(self) -> None:
        """The firm as it stands on its first day: customers in CRM, people in PSA."""
        with self._lock:
            if self.state.account_ids:
                return
            actors.seed_crm_accounts(self.cast)
            actors.seed_psa_users(self.cast)
            self.state.save(self._state_path)

    @property
    def next_day(self) -> dt.date:
        last = self.state.last
        return self.firm.start if last is None else last + dt.timedelta(days=1)

    def run_day(self, day: dt.date) -> None:
        """Every actor acts once on `day`, in the order work flows."""
        with self._lock:
            if day != self.next_day:
                raise ValueError(f"the world is at {self.next_day}, not {day}")
            if isinstance(self.clock, ManualClock):
                self.clock.set(day_start(day))
            actors.sales_act(self.cast, day)
            actors.legal_act(self.cast, day)
            actors.delivery_act(self.cast, day)
            actors.billing_act(self.cast, day)
            actors.customers_act(self.cast, day)
            self.state.last_day = day.isoformat()
            self.state.save(self._state_path)

    def run_days(self, days: int, after_each: DayHook | None = None) -> None:
        """Backfill: `days` days on the manual clock, `after_each` (the connectors) after
        each day's actors."""
        for _ in range(days):
            day = self.next_day
            self.run_day(day)
            if after_each is not None:
                after_each(day)

    def run_live(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Live mode: act on each day as the clock reaches its working hour. `stop` is
        honoured between days: at a high speedup the days can come faster than they are
        acted on, and the catching up must not hold off a Ctrl-C."""
        while not stop.is_set():
            while not stop.is_set() and day_start(self.next_day) <= self.clock.now():
                self.run_day(self.next_day)
            stop.wait(poll_seconds)

    def ground_truth(self, system: str | None = None) -> dict[str, Any]:
        """What `system` (or every system) should hold now, with the firm's figures."""
        as_of = self.state.last or (self.firm.start - dt.timedelta(days=1))
        truth = ground_truth.expected(self.firm, self.state, as_of)
        figures = ground_truth.firm_figures(self.firm, truth, as_of)
        if system is None:
            return {"systems": truth, "firm": figures}
        return {**truth[system], "firm": figures}
