"""The outbox: claims never overlap, leases expire, retries back off, dead letters name the
deal, follow-ups are queued with their step, replays are recorded and exactly once."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine

from connectors.approvals import Checkpoint, decide, require
from connectors.errors import AwaitingApproval, FatalError, RateLimited, ServerError
from connectors.outbox import BackoffPolicy, ClaimedMessage, Outcome, Step, claim, enqueue, record
from connectors.replay import replay_statuses, request_replay
from connectors.worker import StepResult, Worker
from store.outbox import DeadLetter, Replay, SyncAttempt, SyncMessage
from store.states import AttemptOutcome, DeadLetterState, MessageState, ReplayOutcome, System

T0 = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


def steps(n: int, flow: str = "invoice_to_ar") -> list[Step]:
    return [
        Step(flow, "post", System.ERP, f"ar-posting:INV-{i}", {"invoice": f"INV-{i}"}, f"OPP-{i}")
        for i in range(n)
    ]


def put(engine: Engine, items: list[Step], now: dt.datetime = T0) -> int:
    with engine.begin() as conn:
        return enqueue(conn, items, now)


def state_of(engine: Engine, key: str) -> sa.Row:  # type: ignore[type-arg]
    with engine.connect() as conn:
        return conn.execute(sa.select(SyncMessage).where(SyncMessage.idempotency_key == key)).one()


def test_enqueue_keeps_one_message_per_idempotency_key(engine: Engine) -> None:
    assert put(engine, steps(3)) == 3
    assert put(engine, steps(5)) == 2
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SyncMessage)).scalar() == 5


def test_concurrent_workers_never_claim_the_same_message(engine: Engine) -> None:
    put(engine, steps(200))
    claimed: list[list[ClaimedMessage]] = [[] for _ in range(4)]

    def work(n: int) -> None:
        while batch := claim(engine, f"w{n}", T0, limit=7):
            claimed[n] += batch

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = Counter(m.id for batch in claimed for m in batch)
    assert len(ids) == 200
    assert max(ids.values()) == 1


def test_a_message_whose_worker_died_is_claimed_again_after_its_lease(engine: Engine) -> None:
    put(engine, steps(1))
    lease = dt.timedelta(minutes=5)
    [first] = claim(engine, "dead-worker", T0, lease=lease)
    assert claim(engine, "other", T0 + dt.timedelta(minutes=4), lease=lease) == []
    [again] = claim(engine, "other", T0 + dt.timedelta(minutes=6), lease=lease)
    assert (again.id, again.attempt) == (first.id, 2)
    # The dead worker's late report does not overwrite the new owner's run.
    late = record(
        engine, first, Outcome(AttemptOutcome.SUCCEEDED, 5, result={}), T0, worker="dead-worker"
    )
    assert late is MessageState.RUNNING
    done = record(
        engine,
        again,
        Outcome(AttemptOutcome.SUCCEEDED, 5, result={"id": "AR-1"}),
        T0 + dt.timedelta(minutes=7),
        worker="other",
    )
    assert done is MessageState.SUCCEEDED


def test_retryable_failures_back_off_then_dead_letter_with_the_deal(engine: Engine) -> None:
    put(engine, steps(1))
    policy = BackoffPolicy(max_attempts=3, base=dt.timedelta(seconds=30))
    now, rng = T0, random.Random(1)
    delays = []
    for attempt in range(1, 4):
        [message] = claim(engine, "w", now)
        assert message.attempt == attempt
        state = record(
            engine,
            message,
            Outcome(
                AttemptOutcome.RETRYABLE,
                12,
                error_class="rate_limited",
                error="429 from ERP",
                http_status=429,
                retry_after=45,
            ),
            now,
            worker="w",
            policy=policy,
            rng=rng,
        )
        row = state_of(engine, "ar-posting:INV-0")
        if attempt < 3:
            assert state is MessageState.PENDING
            delays.append((row.next_attempt_at - now).total_seconds())
            assert claim(engine, "w", now) == []  # not due yet
            now = row.next_attempt_at
    assert state is MessageState.DEAD
    assert delays[0] >= 45  # never sooner than the system's Retry-After
    assert 45 <= delays[1] <= 60  # second try: 30-60 s of jittered backoff, at least 45
    with engine.connect() as conn:
        letter = conn.execute(sa.select(DeadLetter)).one()
        attempts = conn.execute(sa.select(sa.func.count()).select_from(SyncAttempt)).scalar()
    assert (letter.deal_id, letter.error_class, letter.system, letter.state) == (
        "OPP-0",
        "rate_limited",
        "erp",
        "open",
    )
    assert attempts == 3


def test_a_fatal_error_dead_letters_at_once(engine: Engine) -> None:
    put(engine, steps(1))
    [message] = claim(engine, "w", T0)
    state = record(
        engine,
        message,
        Outcome(
            AttemptOutcome.FATAL,
            3,
            error_class="validation",
            error="rate 210.00 above contract rate 180.00",
        ),
        T0,
        worker="w",
    )
    assert state is MessageState.DEAD


def test_follow_up_steps_are_queued_with_the_success(engine: Engine) -> None:
    put(engine, steps(1))
    [message] = claim(engine, "w", T0)
    follow = Step("cash", "mark_paid", System.CRM, "cash:INV-0", {}, "OPP-0")
    record(
        engine,
        message,
        Outcome(AttemptOutcome.SUCCEEDED, 3, result={"id": "AR-0"}, follow_ups=[follow]),
        T0,
        worker="w",
    )
    [next_message] = claim(engine, "w", T0)
    assert (next_message.flow, next_message.step, next_message.deal_id) == (
        "cash",
        "mark_paid",
        "OPP-0",
    )


def test_replay_after_a_lost_response_is_recorded_as_already_done(engine: Engine) -> None:
    """The first try posted in the ERP but its answer was lost (a 502 at the gateway), so the
    message died; the replay finds the posting by its idempotency key."""
    posted: dict[str, str] = {}

    def post(message: ClaimedMessage) -> StepResult:
        key = message.idempotency_key
        if key in posted:
            return StepResult({"id": posted[key]}, already_done=True, stage="posted")
        posted[key] = "AR-1"
        raise ServerError("502 Bad Gateway after the ERP stored the posting", status=502)

    provider = TracerProvider()
    clock = [T0]
    worker = Worker(
        engine,
        {("invoice_to_ar", "post"): post},
        provider.get_tracer("t"),
        name="w",
        policy=BackoffPolicy(max_attempts=1),
        clock=lambda: clock[0],
    )
    put(engine, steps(1))
    assert worker.run_once() == 1
    with engine.connect() as conn:
        letter_id = conn.execute(sa.select(DeadLetter.id)).scalar_one()
    [requested] = request_replay(engine, [letter_id], "oncall@firm", "ERP back after outage", T0)
    # Asking twice does not replay twice.
    assert request_replay(engine, [letter_id], "oncall@firm", "again", T0) == []
    clock[0] = T0 + dt.timedelta(minutes=1)
    assert worker.run_once() == 1
    [status] = replay_statuses(engine, [requested.replay_id])
    assert status.outcome is ReplayOutcome.ALREADY_DONE
    assert status.requested_by == "oncall@firm"
    with engine.connect() as conn:
        assert conn.execute(sa.select(DeadLetter.state)).scalar_one() == DeadLetterState.REPLAYED
        assert conn.execute(sa.select(sa.func.count()).select_from(Replay)).scalar() == 1
    assert posted == {"ar-posting:INV-0": "AR-1"}  # one posting, not two


def test_a_failing_system_is_paused_while_the_others_flow(engine: Engine) -> None:
    calls: Counter[str] = Counter()

    def erp_down(message: ClaimedMessage) -> StepResult:
        calls["erp"] += 1
        raise RateLimited("503", status=503)

    def crm_ok(message: ClaimedMessage) -> StepResult:
        calls["crm"] += 1
        return StepResult({"ok": True})

    def fatal(message: ClaimedMessage) -> StepResult:
        raise FatalError("400")

    clock = [T0]
    worker = Worker(
        engine,
        {("invoice_to_ar", "post"): erp_down, ("cash", "mark_paid"): crm_ok, ("x", "y"): fatal},
        TracerProvider().get_tracer("t"),
        name="w",
        policy=BackoffPolicy(
            max_attempts=50, base=dt.timedelta(seconds=1), cap=dt.timedelta(seconds=1)
        ),
        clock=lambda: clock[0],
    )
    put(engine, steps(20))
    put(engine, [Step("cash", "mark_paid", System.CRM, f"cash:{i}", {}) for i in range(5)])
    for _ in range(10):
        worker.run_once(limit=3)
        clock[0] += dt.timedelta(seconds=2)
    assert calls["crm"] == 5
    assert worker.breakers.state(System.ERP, clock[0]) == "open"
    # Paused: the ERP saw the threshold's worth of calls, then only rare probes.
    assert 5 <= calls["erp"] <= 7


def _held_run(engine: Engine, decide_meanwhile: bool | None) -> sa.Row:  # type: ignore[type-arg]
    """A step stops at an approval checkpoint; the approval is decided (approved: True,
    rejected: False, not at all: None) while the step still runs, before the worker holds
    the message. Returns the message afterwards."""
    put(engine, steps(1))
    [message] = claim(engine, "w", T0)
    checkpoint = Checkpoint("invoice:INV-0", "invoice", "INV-0", Decimal("50000"), "USD", "big")
    with pytest.raises(AwaitingApproval) as held:
        require(engine, message, checkpoint, T0)
    if decide_meanwhile is not None:
        # the message is running: the decision leaves it to the worker
        decide(
            engine,
            [held.value.approval_id],
            approve=decide_meanwhile,
            actor="cfo",
            note="no",
            now=T0,
        )
        assert state_of(engine, "ar-posting:INV-0").state == MessageState.RUNNING
    outcome = Outcome(
        AttemptOutcome.HELD,
        4,
        error_class=held.value.error_class,
        error=str(held.value),
        approval_id=held.value.approval_id,
    )
    record(engine, message, outcome, T0 + dt.timedelta(seconds=1), worker="w")
    return state_of(engine, "ar-posting:INV-0")


def test_a_held_step_waits_unclaimed_and_is_not_counted_as_an_attempt(engine: Engine) -> None:
    held = _held_run(engine, None)
    assert (held.state, held.attempts, held.last_error_class) == ("held", 0, "awaiting_approval")
    assert "waiting for approval" in held.last_error and "big" in held.last_error
    assert claim(engine, "w", T0 + dt.timedelta(days=30)) == []  # never due by itself
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SyncAttempt)).scalar() == 0


def test_an_approval_decided_while_its_step_runs_is_not_lost(engine: Engine) -> None:
    approved = _held_run(engine, True)
    assert (approved.state, approved.attempts) == ("pending", 0)  # due again at once
    [again] = claim(engine, "w", T0 + dt.timedelta(seconds=2))
    assert again.attempt == 1


def test_a_rejection_decided_while_its_step_runs_dead_letters_it(engine: Engine) -> None:
    rejected = _held_run(engine, False)
    assert rejected.state == "dead"
    with engine.connect() as conn:
        letter = conn.execute(sa.select(DeadLetter)).one()
    assert (letter.error_class, letter.state) == ("approval_rejected", DeadLetterState.OPEN)
    assert letter.error == "approval 1 rejected by cfo: no"
