"""What a probe is and what it returns.

A probe looks at the systems and the store and says ok / warn / fail, with a value and,
where records are wrong, one finding per record so finance can open it. Probes do not
write: `probes.runner` stores the outcome, emits the span and the Prometheus series.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Engine

from connectors.resources import Api
from store.states import ProbeKind, ProbeStatus, System


@dataclass(frozen=True)
class Finding:
    """One record a probe found wrong: a mismatch, a missing posting, a stuck deal."""

    kind: str
    object_type: str | None
    object_id: str | None
    deal_id: str | None = None
    system: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: ProbeStatus
    value: float | None = None
    observed: str | None = None
    expected: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def from_findings(
        cls,
        findings: list[Finding],
        *,
        fail: bool = True,
        expected: str | None = "no mismatch",
        detail: dict[str, Any] | None = None,
    ) -> Outcome:
        """ok when nothing was found, else fail (or warn when `fail` is False)."""
        status = ProbeStatus.FAIL if fail else ProbeStatus.WARN
        if not findings:
            status = ProbeStatus.OK
        return cls(
            status,
            value=float(len(findings)),
            observed=f"{len(findings)} mismatch(es)" if findings else "no mismatch",
            expected=expected,
            detail=detail or {},
            findings=findings,
        )


@dataclass(frozen=True)
class ProbeContext:
    """What a probe may look at: the store (read only), each system's API, the time."""

    engine: Engine
    apis: Mapping[System, Api]
    now: Callable[[], dt.datetime]


class Probe(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> ProbeKind: ...
    @property
    def system(self) -> str | None: ...
    @property
    def flow(self) -> str | None: ...
    @property
    def description(self) -> str: ...

    def run(self, ctx: ProbeContext) -> Outcome: ...


__all__ = ["Finding", "Outcome", "Probe", "ProbeContext"]
