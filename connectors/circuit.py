"""Per-system circuit breakers: a system that fails every call is paused instead of
hammered, then probed with one message at a time until it answers again."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from store.states import System


@dataclass
class _Circuit:
    failures: int = 0
    open_until: dt.datetime | None = None
    cooldown: dt.timedelta = dt.timedelta(0)


@dataclass
class CircuitBreakers:
    threshold: int = 5
    first_cooldown: dt.timedelta = dt.timedelta(seconds=30)
    max_cooldown: dt.timedelta = dt.timedelta(minutes=10)
    _circuits: dict[System, _Circuit] = field(default_factory=dict)

    def _get(self, system: System) -> _Circuit:
        return self._circuits.setdefault(system, _Circuit())

    def state(self, system: System, now: dt.datetime) -> str:
        circuit = self._get(system)
        if circuit.open_until is None:
            return "closed"
        return "open" if now < circuit.open_until else "half_open"

    def allowance(self, now: dt.datetime) -> dict[System, int | None]:
        """How many messages each system may take now: None = no limit, 1 = a probe,
        0 = paused."""
        out: dict[System, int | None] = {}
        for system in System:
            state = self.state(system, now)
            out[system] = None if state == "closed" else (1 if state == "half_open" else 0)
        return out

    def success(self, system: System) -> None:
        self._circuits[system] = _Circuit()

    def failure(self, system: System, now: dt.datetime) -> None:
        """A failure that says the system is unwell (transport, 5xx, 429): count it."""
        circuit = self._get(system)
        circuit.failures += 1
        if circuit.open_until is not None and now >= circuit.open_until:
            # The probe failed: stay open, wait longer.
            circuit.cooldown = min(self.max_cooldown, circuit.cooldown * 2)
            circuit.open_until = now + circuit.cooldown
        elif circuit.open_until is None and circuit.failures >= self.threshold:
            circuit.cooldown = self.first_cooldown
            circuit.open_until = now + circuit.cooldown
