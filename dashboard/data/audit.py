"""The audit log as the admin page lists it."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection, select

from store.access import AuditEntry


def recent_audit(conn: Connection, limit: int = 200) -> pd.DataFrame:
    rows = conn.execute(
        select(
            AuditEntry.at,
            AuditEntry.actor,
            AuditEntry.action,
            AuditEntry.object_type,
            AuditEntry.object_id,
            AuditEntry.note,
        )
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [tuple(r) for r in rows],
        columns=["at", "actor", "action", "object_type", "object_id", "note"],
    )
