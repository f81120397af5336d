"""Running the sandbox firm from the command line or the demo: open (or create) the
world in a directory, backfill history on the manual clock, or serve the five systems
live on the accelerated clock."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sandbox.clock import AcceleratedClock, Clock, ManualClock, SystemClock
from sandbox.faults import FaultConfig, ProfileName, profile
from sandbox.scenario import generate_firm
from sandbox.servers import SandboxServers
from sandbox.service import SystemService
from sandbox.services import DEFAULT_ADMIN_KEY, SYSTEMS, build_services
from sandbox.world import DayHook, World, day_start
from sandbox.world_state import WorldState

logger = logging.getLogger(__name__)

# The script runs this far past the firm's first day: history plus a long live run.
HORIZON_DAYS = 730
DEFAULT_PORTS = {"crm": 8601, "clm": 8602, "psa": 8603, "billing": 8604, "erp": 8605}


@dataclass(frozen=True)
class SandboxOptions:
    directory: Path
    seed: int = 42
    faults: ProfileName = "default"
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    secrets: Mapping[str, str] = field(default_factory=dict)
    admin_key: str = DEFAULT_ADMIN_KEY
    host: str = "127.0.0.1"
    system_faults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def fault_configs(self) -> dict[str, FaultConfig]:
        """The profile, with each system's own settings laid over it; a bad setting
        raises `ValueError` naming the system."""
        configs = {}
        for system in SYSTEMS:
            base = profile(self.faults).model_dump()
            try:
                configs[system] = FaultConfig.model_validate(
                    {**base, **self.system_faults.get(system, {})}
                )
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(
                    f"sandbox.system_faults.{system}.{where}: {first['msg']}"
                ) from None
        return configs


def monday_on_or_before(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def world_start(options: SandboxOptions, first_day_if_new: dt.date) -> dt.date:
    state = WorldState.load(options.directory / "world.json")
    return dt.date.fromisoformat(state.start) if state else monday_on_or_before(first_day_if_new)


def open_world(
    options: SandboxOptions, sim_clock: Clock, wall_clock: Clock, start: dt.date
) -> World:
    """The world in `options.directory`, created on `start` if it does not exist yet."""
    services = build_services(
        options.directory,
        seed=options.seed,
        faults=options.fault_configs(),
        sim_clock=sim_clock,
        wall_clock=wall_clock,
        admin_key=options.admin_key,
        secrets=options.secrets,
    )
    try:
        world = World(
            generate_firm(options.seed, start, HORIZON_DAYS),
            services,
            sim_clock,
            options.directory / "world.json",
        )
    except ValueError:
        close(services.values())
        raise
    world.setup()
    return world


def close(services: Iterable[SystemService]) -> None:
    for service in services:
        service.webhooks.close()
        service.store.close()


@dataclass(frozen=True)
class BackfillReport:
    first_day: dt.date
    last_day: dt.date
    records: dict[str, dict[str, int]]
    figures: dict[str, Any]


def backfill(
    options: SandboxOptions,
    days: int,
    today: dt.date,
    after_each: DayHook | None = None,
    on_open: Callable[[World], None] | None = None,
) -> BackfillReport:
    """Run the actors for `days` simulated days at full speed: a new world starts `days`
    before `today`; an existing one goes on from its next day. `on_open` sees the world
    before the first day (to start servers and connectors on its clock); `after_each`
    runs after each day's actors (one connector cycle)."""
    start = world_start(options, today - dt.timedelta(days=days))
    state = WorldState.load(options.directory / "world.json")
    first = state.last + dt.timedelta(days=1) if state and state.last else start
    clock = ManualClock(day_start(first) - dt.timedelta(hours=1))
    world = open_world(options, clock, SystemClock(), start)
    try:
        if on_open is not None:
            on_open(world)
        world.run_days(days, after_each)
        records = {
            system: {name: len(rows) for name, rows in service.store.dump().items()}
            for system, service in world.services.items()
        }
        figures = world.ground_truth()["firm"]
        return BackfillReport(first, world.next_day - dt.timedelta(days=1), records, figures)
    finally:
        close(world.services.values())


class LiveSandbox:
    """The five systems served on their ports, the actors acting as the accelerated
    clock reaches each day. `start()`, then `stop()`."""

    def __init__(self, options: SandboxOptions, speedup: float, today: dt.date) -> None:
        start = world_start(options, today)
        state = WorldState.load(options.directory / "world.json")
        first = state.last + dt.timedelta(days=1) if state and state.last else start
        self.clock = AcceleratedClock(day_start(first) - dt.timedelta(hours=1), speedup)
        self.world = open_world(options, self.clock, SystemClock(), start)
        self.servers = SandboxServers(self.world.services, options.ports, options.host)
        self._stop = threading.Event()
        self._actors = threading.Thread(
            target=self.world.run_live, args=(self._stop,), name="sandbox-actors", daemon=True
        )

    @property
    def urls(self) -> dict[str, str]:
        return self.servers.urls

    def start(self) -> None:
        self.servers.start()
        self._actors.start()

    def stop(self) -> None:
        self._stop.set()
        if self._actors.is_alive():
            self._actors.join(timeout=30)
        self.servers.stop()
