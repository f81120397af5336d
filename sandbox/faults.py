"""Faults a system injects, per system: named profiles, run-time changes, and the log of
every fault actually injected (part of the ground truth)."""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from sandbox.clock import Clock

ProfileName = Literal["none", "default", "chaos"]
PROFILE_NAMES: tuple[ProfileName, ...] = ("none", "default", "chaos")

Rate = float


class OutageWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    start: dt.datetime
    end: dt.datetime


class FaultConfig(BaseModel):
    """What one system does wrong. Rates are probabilities per request / event / record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, description="added to every API request")
    error_rate: Rate = Field(default=0.0, ge=0, le=1, description="answers 500, 502 or 503")
    timeout_rate: Rate = Field(default=0.0, ge=0, le=1, description="hangs, then 504")
    timeout_seconds: PositiveFloat = 30.0
    outage: bool = Field(default=False, description="down now: every request 503")
    outage_windows: list[OutageWindow] = Field(
        default_factory=list, description="down during these simulated-time windows"
    )
    rate_limit_per_second: PositiveFloat = 20.0
    rate_limit_burst: PositiveInt = 40
    token_ttl_seconds: PositiveInt = 3600
    schema_drift: bool = Field(default=False, description="a field renamed in responses")
    webhook_duplicate_rate: Rate = Field(default=0.0, ge=0, le=1)
    webhook_late_rate: Rate = Field(default=0.0, ge=0, le=1)
    wrong_rate_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="billing: an invoice line at the wrong rate"
    )
    missing_po_rate: Rate = Field(
        default=0.0, ge=0, le=1, description="billing: an invoice without its required PO"
    )
    unknown_customer_rate: Rate = Field(
        default=0.0,
        ge=0,
        le=1,
        description="billing: an invoice billed to a customer number the ERP does not know "
        "(an account merged away), so the ERP refuses to post it",
    )
    contract_cancellation_rate: Rate = Field(
        default=0.0,
        ge=0,
        le=1,
        description="clm: an executed contract the customer cancels two weeks into its "
        "project (rolled once per contract)",
    )


_DEFAULT = FaultConfig(
    latency_ms=15,
    error_rate=0.01,
    timeout_rate=0.002,
    timeout_seconds=20.0,
    webhook_duplicate_rate=0.02,
    webhook_late_rate=0.02,
    wrong_rate_rate=0.01,
    missing_po_rate=0.02,
)
_CHAOS = FaultConfig(
    latency_ms=120,
    error_rate=0.08,
    timeout_rate=0.02,
    timeout_seconds=10.0,
    rate_limit_per_second=5.0,
    rate_limit_burst=10,
    token_ttl_seconds=300,
    schema_drift=True,
    webhook_duplicate_rate=0.1,
    webhook_late_rate=0.1,
    wrong_rate_rate=0.05,
    missing_po_rate=0.05,
    unknown_customer_rate=0.02,
    contract_cancellation_rate=0.03,
)
_PROFILES: dict[ProfileName, FaultConfig] = {
    "none": FaultConfig(rate_limit_per_second=1000.0, rate_limit_burst=2000),
    "default": _DEFAULT,
    "chaos": _CHAOS,
}


def profile(name: ProfileName) -> FaultConfig:
    """The named profile: `none`, `default` (a normal day at a real firm) or `chaos`."""
    try:
        return _PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown fault profile {name!r}: use one of {PROFILE_NAMES}") from None


class FaultInjector:
    """The current fault settings of one system, its seeded dice, and what it injected."""

    def __init__(self, system: str, config: FaultConfig, rng: random.Random, clock: Clock):
        self.system = system
        self._config = config
        self._rng = rng
        self._clock = clock
        self._lock = threading.Lock()
        self._injected: list[dict[str, Any]] = []

    @property
    def config(self) -> FaultConfig:
        with self._lock:
            return self._config

    def apply(self, changes: dict[str, Any]) -> FaultConfig:
        """Change some settings (validated as a whole); the rest stay."""
        with self._lock:
            merged = {**self._config.model_dump(), **changes}
            self._config = FaultConfig.model_validate(merged)
            return self._config

    def use_profile(self, name: ProfileName) -> FaultConfig:
        with self._lock:
            self._config = profile(name)
            return self._config

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def choose(self, options: list[int]) -> int:
        with self._lock:
            return self._rng.choice(options)

    def in_outage(self) -> bool:
        config = self.config
        if config.outage:
            return True
        now = self._clock.now()
        return any(w.start <= now < w.end for w in config.outage_windows)

    def record(self, kind: str, **detail: Any) -> None:
        with self._lock:
            self._injected.append(
                {"system": self.system, "kind": kind, "at": self._clock.now().isoformat(), **detail}
            )

    def injected(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._injected)
