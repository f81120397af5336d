"""What every flow works with: the five systems' APIs, the clock and the tracer, and the
shape of a change-capture stream."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Tracer
from sqlalchemy import Engine

from connectors.errors import ConnectorError
from connectors.outbox import Step
from connectors.resources import Api
from connectors.tracing import Clock, observe
from store.states import System

if TYPE_CHECKING:
    from connectors.approvals import ApprovalPolicy
    from connectors.erp import Erp


@dataclass(frozen=True)
class Observation:
    """A stage a source system shows, recorded as an OK span at the system's own time."""

    stage: str
    at: dt.datetime
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class Planned:
    """What one changed record asks for: steps, each with what it lets us observe."""

    step: Step
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True)
class Stream:
    """A change-capture stream: a collection read since a cursor, and a planner."""

    name: str
    system: System
    collection: str
    filters: Mapping[str, Any]
    plan: Callable[[dict[str, Any]], Iterable[Planned]]
    read: Callable[[dt.datetime | None], Iterable[dict[str, Any]]] | None = None
    """reads the records changed since the cursor in place of the REST collection (the
    ERP's payments, which a Tryton ERP serves over JSON-RPC); the records still carry
    their change time in the collection's `changed_field`"""


@dataclass
class FlowContext:
    apis: Mapping[System, Api]
    tracer: Tracer
    clock: Clock
    erp: Erp
    cache: dict[str, Any] = field(default_factory=dict)
    store: Engine | None = None
    """our store, for the flows that capture reference data into it (consultants) and
    record approval checkpoints"""
    approvals: ApprovalPolicy | None = None
    """which objects wait for a person's approval (none without it)"""

    def api(self, system: System) -> Api:
        return self.apis[system]

    def failed_at(
        self,
        error: ConnectorError,
        name: str,
        stage: str,
        system: System,
        attributes: Mapping[str, Any],
    ) -> None:
        """Record that a failing step puts its object in an exception stage (`rejected`,
        `posting_failed`): an observation span carried by the error, so the outbox stores
        the stage with the failed attempt."""
        span = observe(
            self.tracer,
            name,
            self.clock(),
            {
                **attributes,
                "q2c.stage": stage,
                "q2c.system": system.value,
                "throughline.reason": str(error),
            },
        )
        error.observed = (*error.observed, span)


def parse_time(value: str | None, fallback: dt.datetime) -> dt.datetime:
    """A system's timestamp or date as an aware UTC datetime."""
    if not value:
        return fallback
    text = str(value).replace("Z", "+00:00")
    if len(text) == 10:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))
