"""The outbox worker: claims due messages, runs each step's handler inside a span, and
records the outcome. One failing system is paused by its circuit breaker while the others
flow."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.trace import Status, StatusCode, Tracer

from connectors.circuit import CircuitBreakers
from connectors.errors import (
    AwaitingApproval,
    ConnectorError,
    MissingPrerequisite,
    RetryableError,
)
from connectors.outbox import BackoffPolicy, ClaimedMessage, Outcome, Step, claim, record
from connectors.tracing import SpanSink, clocked_span
from store.states import AttemptOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    """What a step did: the target record, whether it existed already, the lifecycle
    stage it reached (becomes `q2c.stage` on the step's span) and the steps that follow."""

    result: dict[str, Any]
    already_done: bool = False
    stage: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    follow_ups: Sequence[Step] = ()


class StepHandler(Protocol):
    def __call__(self, message: ClaimedMessage) -> StepResult: ...


class Worker:
    def __init__(
        self,
        engine: Any,
        handlers: Mapping[tuple[str, str], StepHandler],
        tracer: Tracer,
        *,
        name: str,
        breakers: CircuitBreakers | None = None,
        policy: BackoffPolicy = BackoffPolicy(),
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
        lease: dt.timedelta = dt.timedelta(minutes=5),
        sink: SpanSink | None = None,
    ) -> None:
        self._engine = engine
        self._sink = sink
        self._handlers = handlers
        self._tracer = tracer
        self.name = name
        self.breakers = breakers or CircuitBreakers()
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._lease = lease

    def run_once(self, limit: int = 50) -> int:
        """Claim and run one round of due messages; return how many ran."""
        now = self._clock()
        allowance = self.breakers.allowance(now)
        free = [s for s, a in allowance.items() if a is None]
        messages = claim(self._engine, self.name, now, limit=limit, systems=free, lease=self._lease)
        for system in (s for s, a in allowance.items() if a == 1):
            messages += claim(
                self._engine, self.name, now, limit=1, systems=[system], lease=self._lease
            )
        for message in messages:
            outcome = self._execute(message)
            record(
                self._engine,
                message,
                outcome,
                self._clock(),
                worker=self.name,
                policy=self._policy,
                rng=self._rng,
                sink=self._sink,
            )
        return len(messages)

    def drain(self, max_rounds: int = 10_000) -> int:
        """Run rounds until nothing is due (tests and backfills)."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_once()
            total += ran
            if ran == 0:
                break
        return total

    def _execute(self, message: ClaimedMessage) -> Outcome:
        handler = self._handlers.get((message.flow, message.step))
        attributes: dict[str, Any] = {
            "q2c.flow": message.flow,
            "q2c.system": message.system.value,
            "throughline.step": message.step,
            "throughline.message.id": message.id,
            "throughline.attempt": message.attempt,
            "idempotency.key": message.idempotency_key,
        }
        if message.deal_id:
            attributes["q2c.deal.id"] = message.deal_id
        started = time.perf_counter()
        with clocked_span(
            self._tracer, f"{message.flow}.{message.step}", self._clock, attributes=attributes
        ) as span:
            trace_id = format(span.get_span_context().trace_id, "032x")

            def elapsed() -> int:
                return round((time.perf_counter() - started) * 1000)

            if handler is None:
                span.set_status(Status(StatusCode.ERROR, "no handler"))
                return Outcome(
                    AttemptOutcome.FATAL,
                    elapsed(),
                    error_class="no_handler",
                    error=f"no handler for {message.flow}.{message.step}",
                    trace_id=trace_id,
                    span=span,
                )
            try:
                done = handler(message)
            except AwaitingApproval as exc:  # held for a person: not a failure
                span.set_attribute("throughline.approval.id", exc.approval_id)
                return Outcome(
                    AttemptOutcome.HELD,
                    elapsed(),
                    error_class=exc.error_class,
                    error=str(exc)[:2000],
                    trace_id=trace_id,
                    span=span,
                    approval_id=exc.approval_id,
                )
            except ConnectorError as exc:
                span.set_attribute("error.type", exc.error_class)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                if isinstance(exc, RetryableError) and not isinstance(exc, MissingPrerequisite):
                    self.breakers.failure(message.system, self._clock())
                return Outcome(
                    AttemptOutcome.RETRYABLE if exc.retryable else AttemptOutcome.FATAL,
                    elapsed(),
                    error_class=exc.error_class,
                    error=str(exc)[:2000],
                    http_status=exc.status,
                    retry_after=getattr(exc, "retry_after", None),
                    trace_id=trace_id,
                    span=span,
                    observed=exc.observed,
                )
            except Exception as exc:  # a bug or a shape we cannot map: stop, keep the message
                logger.exception("step %s.%s failed unexpectedly", message.flow, message.step)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return Outcome(
                    AttemptOutcome.FATAL,
                    elapsed(),
                    error_class=f"internal:{type(exc).__name__}",
                    error=str(exc)[:2000],
                    trace_id=trace_id,
                    span=span,
                )
            self.breakers.success(message.system)
            span.set_attributes(dict(done.attributes))
            if done.stage:
                span.set_attribute("q2c.stage", done.stage)
            span.set_attribute("throughline.already_done", done.already_done)
            span.set_status(Status(StatusCode.OK))
            return Outcome(
                AttemptOutcome.SUCCEEDED,
                elapsed(),
                result=done.result,
                already_done=done.already_done,
                follow_ups=done.follow_ups,
                trace_id=trace_id,
                span=span,
            )
