"""The consultants flow against the sandbox PSA: every user, across pages, becomes one
`consultants` row keyed by the PSA user id (the `user_id` of time entries), capacity in
hours; polling again changes nothing; a changed user is captured again."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Engine, func, select

from connectors.flows.consultants import FLOW, consultant_row
from connectors.outbox import BackoffPolicy
from connectors.wiring import Connectors, build_connectors
from store.objects import Consultant
from store.outbox import SyncMessage
from store.states import MessageState
from tests.connectors.firm import sandbox_settings
from tests.sandbox.conftest import RunningSandbox

USERS = 205
"""More than one page: the PSA pages users 200 at a time."""


def _connectors(sandbox: RunningSandbox, engine: Engine) -> Connectors:
    return build_connectors(
        sandbox_settings(sandbox.urls),
        engine,
        TracerProvider().get_tracer("test"),
        clock=sandbox.sim.now,
        sleep=lambda _s: None,
        policy=BackoffPolicy(max_attempts=2),
    )


def _sync_users(connectors: Connectors) -> int:
    stream = next(s for s in connectors.capture.streams if s.name == "psa.users")
    report = connectors.capture.poll(stream)
    assert report.error is None
    connectors.worker.drain()
    return report.new_steps


def _consultants(engine: Engine) -> dict[str, Consultant]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return {c.id: c for c in session.scalars(select(Consultant))}


def test_psa_users_become_consultants_once_and_follow_changes(
    sandbox: RunningSandbox, engine: Engine
) -> None:
    psa = sandbox.services["psa"]
    created = [
        psa.create(
            "users",
            {
                "full_name": f"Consultant {n}",
                "email_address": f"c{n}@example.test",
                "headline": "Senior Consultant" if n % 2 else "Manager",
                "practice": ("data", "cloud")[n % 2],
                "entity": ("us", "uk", "de")[n % 3],
                "weekly_capacity_minutes": 2250 if n == 0 else 2400,
            },
        )
        for n in range(USERS)
    ]
    connectors = _connectors(sandbox, engine)
    try:
        assert _sync_users(connectors) >= USERS
        rows = _consultants(engine)
        ours = {str(u["id"]) for u in created}
        assert ours <= set(rows)  # the session's sandbox may hold other tests' users too
        first = rows[str(created[0]["id"])]
        assert first.weekly_capacity_hours == Decimal("37.50")  # 2,250 minutes
        assert (first.name, first.email, first.role) == (
            "Consultant 0",
            "c0@example.test",
            "Manager",
        )
        assert (first.practice, first.legal_entity) == ("data", "us")
        assert rows[str(created[1]["id"])].weekly_capacity_hours == Decimal("40.00")

        # Nothing changed: the boundary page is read again, no new step, no second row.
        assert _sync_users(connectors) == 0
        assert len(_consultants(engine)) == len(rows)

        # A user whose capacity changes is captured again and updated in place.
        sandbox.sim.advance(dt.timedelta(hours=1))
        psa.update("users", str(created[1]["id"]), {"weekly_capacity_minutes": 1200})
        assert _sync_users(connectors) == 1
        again = _consultants(engine)
        assert len(again) == len(rows)
        assert again[str(created[1]["id"])].weekly_capacity_hours == Decimal("20.00")
        with engine.connect() as conn:
            states = conn.execute(
                select(SyncMessage.state, func.count())
                .where(SyncMessage.flow == FLOW)
                .group_by(SyncMessage.state)
            ).all()
        assert [MessageState(s) for s, _ in states] == [MessageState.SUCCEEDED]
    finally:
        connectors.close()


def test_a_user_row_converts_minutes_and_keeps_the_psa_times() -> None:
    row = consultant_row(
        {
            "id": 10000001,
            "full_name": "Ada",
            "email_address": "ada@example.test",
            "headline": "Partner",
            "practice": "apps",
            "entity": "de",
            "weekly_capacity_minutes": 2130,
            "created_at": "2026-01-05T09:00:00+00:00",
            "updated_at": "2026-02-01T09:00:00+00:00",
        },
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )
    assert row["id"] == "10000001"
    assert row["weekly_capacity_hours"] == Decimal("35.50")
    assert row["created_at"] == dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    assert row["updated_at"] == dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC)
