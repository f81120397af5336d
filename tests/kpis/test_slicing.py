"""`Slices` (every slice at once) gives what cutting the rows one slice at a time gives:
the same slices in the same order, the same members and counts, and percentiles equal to
numpy's, NaN left out, on random tables with empty and single-row slices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpis.slicing import ChainedMembers, LiveMembers, Members, Slices, Table, heads, p50_p90


@pytest.mark.parametrize("seed", range(40))
def test_slices_at_once_equal_slices_one_by_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(0, 60))
    values = rng.normal(size=size).round(int(rng.integers(0, 3)))
    frame = pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(size)],
            "a": rng.choice(["p", "q", "r"], size),
            "b": rng.choice(["u", "v"], size),
            "v": np.where(rng.random(size) < 0.3, np.nan, values),
        }
    )
    rows = Table.of(frame, ["a", "b"]).rows()
    rows = rows.where(rng.random(size) < 0.8)
    slices = Slices(rows, ["a", "b"])
    one_by_one = list(rows.slices(["a", "b"]))
    assert slices.keys == [(d, v) for d, v, _ in one_by_one]
    p50, p90 = slices.percentiles(rows["v"], (0.5, 0.9))
    sums = slices.sum(slices.entries(rows["v"]))
    for k, (_, _, group) in enumerate(one_by_one):
        assert slices.counts[k] == len(group)
        assert slices.members(k).tolist() == group.members().tolist()
        assert (p50[k], p90[k]) == p50_p90(group["v"])
        assert sums[k] == pytest.approx(np.nansum(group["v"]))


def test_sums_by_group_are_the_sums_of_each_group() -> None:
    frame = pd.DataFrame({"id": ["x0", "x1", "x2", "x3"], "a": ["p", "q", "p", "p"]})
    rows = Table.of(frame, ["a"]).rows()
    slices = Slices(rows, ["a"])  # all, a=p, a=q
    group = slices.entries(np.array([0, 1, -1, 0]))
    values = slices.entries(np.array([1.0, 2.0, 4.0, np.nan]))
    assert slices.by_group(group, 2).tolist() == [[2, 1], [2, 0], [0, 1]]
    assert slices.by_group(group, 2, values).tolist() == [[1.0, 2.0], [1.0, 0.0], [0.0, 2.0]]


def test_heads_gathered_at_once_are_each_members_head() -> None:
    rng = np.random.default_rng(3)
    deals = np.array([f"D{i}" for i in range(300)], dtype=object)
    messages = np.arange(100, 400)  # integer ids (outbox messages) are listed as text
    live = rng.random(300) < 0.7
    listed: list[Members] = [
        *(Members(deals, rng.integers(0, 300, int(rng.integers(0, 90)))) for _ in range(30)),
        Members(messages, np.array([5, 1, 7])),
        Members(deals, np.zeros(0, dtype=np.intp)),
        LiveMembers(deals, rng.permutation(300), live, int(live.sum())),
    ]
    listed.append(ChainedMembers([listed[0], listed[-1]]))
    assert heads(listed, 50) == [m.head(50) for m in listed]
    assert heads(listed, 50)[30] == ["105", "101", "107"]
