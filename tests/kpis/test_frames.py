"""The rows of a few deals, read for an incremental refresh straight from the driver and
typed in plain Python, are the rows the full read types through pandas (on SQLite and
PostgreSQL); and both ways of typing give the same values for every kind of input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import Engine

from kpis.frames import OBJECT_TABLES, load_deal_rows, load_store_frames, typed_columns
from tests.kpis.history import history_log
from tests.kpis.stores import module_store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Engine]:
    with module_store(request) as engine:
        history_log(deals=60).write(engine)
        yield engine


def _same(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> bool:
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=True))
    return a.dtype == b.dtype and a.tolist() == b.tolist()


def test_deal_rows_are_the_full_reads_rows(store: Engine) -> None:
    with store.connect() as conn:
        frames = load_store_frames(conn)
        some = [str(d) for d in frames.deals["id"].tolist()[::3]] + ["D-none"]
        rows = load_deal_rows(conn, some)
    for name in OBJECT_TABLES:
        frame = getattr(frames, name)
        key = "id" if name == "deals" else "deal_id"
        frame = frame[frame[key].isin(some)].sort_values("id")
        columns = getattr(rows, name)
        order = np.argsort(columns["id"].astype(str), kind="stable")
        assert len(frame) == len(order) > 0, name
        for column in frame.columns:
            expected = frame[column].to_numpy()
            assert _same(columns[column][order], expected), (name, column)


def test_few_and_many_rows_are_typed_alike() -> None:
    utc, plus2 = dt.UTC, dt.timezone(dt.timedelta(hours=2))
    rows = [
        ("a", "2026-06-30 12:00:00.000001", Decimal("10.25"), 1),
        ("b", "2026-06-30 12:00:00", 3, 0),
        ("c", dt.datetime(2026, 6, 30, 14, 0, 0, 999999, tzinfo=plus2), 2.5, None),
        ("d", dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=utc), None, True),
        ("e", dt.datetime(2025, 3, 1, 7, 30, 0, 500000), Decimal("0.01"), False),
        (None, None, None, None),
    ]
    names = ("id", "issued_at", "amount", "has_exception")
    few = typed_columns(names, rows, small=len(rows))
    many = typed_columns(names, rows, small=0)
    for name in names:
        assert _same(few[name], many[name]), name
    assert few["issued_at"][0] == dt.datetime(2026, 6, 30, 12, 0, 0, 1, tzinfo=utc).timestamp()


@pytest.mark.parametrize(
    "stamps",
    [
        ["2026-06-30 12:00:00.000001", None, "1999-12-31 23:59:59.999999", "2026-01-01 00:00:00"],
        ["2026-06-30T12:00:00+02:00", "2026-06-30 12:00:00.5"],
        ["2026-06-30 12:00:00Z", None],
        [None, None],
    ],
    ids=["sqlite-text", "with-offset", "zulu", "none"],
)
def test_timestamps_as_text_are_read_alike(stamps: list[str | None]) -> None:
    rows = [(s,) for s in stamps]
    few = typed_columns(("paid_at",), rows, small=len(rows))
    many = typed_columns(("paid_at",), rows, small=0)
    assert _same(few["paid_at"], many["paid_at"])
