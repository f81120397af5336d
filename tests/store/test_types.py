"""Column types behave the same on both databases: UTC instants, exact money, JSON."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from store.objects import Contract, Deal
from store.states import ObjectType, System
from store.telemetry import LifecycleEvent

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _deal(deal_id: str = "OPP-1", **kw: object) -> Deal:
    values: dict[str, object] = {
        "id": deal_id,
        "currency": "GBP",
        "amount": Decimal("125000.10"),
        "stage": "closed_won",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(kw)
    return Deal(**values)


def test_timestamps_come_back_as_the_same_instant_in_utc(engine: Engine) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    with Session(engine) as session:
        session.add(_deal(closed_won_at=dt.datetime(2026, 3, 1, 13, 30, tzinfo=paris)))
        session.commit()
    with Session(engine) as session:
        deal = session.get_one(Deal, "OPP-1")
        assert deal.closed_won_at == dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
        assert deal.closed_won_at is not None and deal.closed_won_at.utcoffset() == dt.timedelta(0)


def test_a_naive_timestamp_is_refused_rather_than_guessed(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_deal(closed_won_at=dt.datetime(2026, 3, 1, 12, 0)))
        with pytest.raises(StatementError, match="timezone-aware"):
            session.commit()


def test_money_keeps_every_cent_and_json_round_trips(engine: Engine) -> None:
    # SQLite keeps NUMERIC as a double: exact to the cent up to about 10^13.
    with Session(engine) as session:
        session.add(_deal(amount=Decimal("1234567890123.47")))
        session.flush()
        session.add(
            Contract(
                id="C-1",
                deal_id="OPP-1",
                rate_card={"senior": "1450.00", "roles": ["a", "b"], "cap": None},
                created_at=NOW,
                updated_at=NOW,
            )
        )
        session.commit()
    with Session(engine) as session:
        assert session.get_one(Deal, "OPP-1").amount == Decimal("1234567890123.47")
        assert session.get_one(Contract, "C-1").rate_card == {
            "senior": "1450.00",
            "roles": ["a", "b"],
            "cap": None,
        }


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Contract(id="C-1", deal_id="NO-SUCH-DEAL", created_at=NOW, updated_at=NOW))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_redelivered_lifecycle_event_is_stored_once(engine: Engine) -> None:
    def event() -> LifecycleEvent:
        return LifecycleEvent(
            dedup_key="ce:crm:evt-1",
            object_type=ObjectType.DEAL,
            object_id="OPP-1",
            deal_id="OPP-1",
            stage="closed_won",
            occurred_at=NOW,
            source_system=System.CRM,
            recorded_at=NOW,
        )

    with Session(engine) as session:
        session.add(event())
        session.commit()
        session.add(event())
        with pytest.raises(IntegrityError):
            session.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(LifecycleEvent)).scalar() == 1


def test_an_unknown_enum_value_is_refused(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(StatementError):
        conn.execute(
            sa.insert(LifecycleEvent).values(
                dedup_key="x",
                object_type="spaceship",
                object_id="1",
                stage="closed_won",
                occurred_at=NOW,
                recorded_at=NOW,
            )
        )


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path: object) -> None:
    from store.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/var/x.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
