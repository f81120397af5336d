"""The values the sidebar filters offer: legal entities, regions and practices present."""

from __future__ import annotations

from sqlalchemy import Connection, select

from store.objects import Deal, Project


def dimension_values(conn: Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, column in (
        ("legal_entity", Deal.legal_entity),
        ("region", Deal.region),
        ("practice", Deal.practice),
    ):
        values = {v for (v,) in conn.execute(select(column).distinct()) if v is not None}
        if name == "practice":
            values |= {
                v for (v,) in conn.execute(select(Project.practice).distinct()) if v is not None
            }
        out[name] = sorted(values)
    return out
