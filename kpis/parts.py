"""Partial sums of the point-in-time KPIs (funnel, backlog, open AR), per slice, that add
up: the KPIs over all rows are the parts over some rows plus the parts over the others.
The refresher keeps the parts of the rows that can no longer change with time (the
*settled* deals, kpis.incremental) and adds the parts of the rest at every refresh."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from kpis.slicing import ALL, ChainedMembers, Members

PartKey = tuple[str, str, str]
"""(part, dimension, slice value)"""


@dataclass(frozen=True)
class Part:
    total: float
    """the sum this part contributes (NaN-free)"""
    rows: int
    """the rows of the slice it was computed over (a slice with rows exists)"""
    members: Members
    member_count: int
    table: str = ""
    """the fact table the members are rows of (`deals`, `invoices`)"""


Parts = dict[PartKey, Part]


def put(parts: Parts, key: PartKey, total: float, rows: int, members: Members, table: str) -> None:
    parts[key] = Part(total, rows, members, len(members), table)


def combine(settled: Parts | None, fresh: Parts) -> Parts:
    """Settled parts plus fresh ones, key by key (members one after the other)."""
    if not settled:
        return fresh
    out = dict(settled)
    for key, part in fresh.items():
        old = out.get(key)
        if old is None:
            out[key] = part
            continue
        out[key] = Part(
            old.total + part.total,
            old.rows + part.rows,
            ChainedMembers([old.members, part.members]),
            old.member_count + part.member_count,
            part.table,
        )
    return out


def subtract(parts: Parts, removed: Parts) -> None:
    """Take `removed` (parts over rows that are leaving) out of `parts`, in place; the
    members stay listed in `parts` and are filtered out where they are listed."""
    for key, part in removed.items():
        old = parts.get(key)
        if old is None:
            continue
        rows = old.rows - part.rows
        if rows <= 0:
            del parts[key]
            continue
        parts[key] = replace(
            old,
            total=old.total - part.total,
            rows=rows,
            member_count=old.member_count - part.member_count,
        )


def slices_of(parts: Parts, name: str) -> Iterable[tuple[str, str]]:
    """`(all, all)` then every slice that has rows in part `name`, in a stable order."""
    yield ALL, ALL
    yield from sorted(
        (dim, dv) for (n, dim, dv), p in parts.items() if n == name and dim != ALL and p.rows > 0
    )


def part(parts: Parts, name: str, dim: str, dv: str) -> Part:
    from kpis.slicing import NO_MEMBERS

    return parts.get((name, dim, dv)) or Part(0.0, 0, NO_MEMBERS, 0)
