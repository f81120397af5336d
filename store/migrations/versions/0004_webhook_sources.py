"""webhook sources

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 21:40:00

The webhook freshness probe asked for the latest lifecycle event whose dedup key starts
with `ce:<source>:`, a LIKE that no index serves: a scan of the largest table per source
at every run. The collector now keeps the last moment and count per source in
`webhook_sources`. Stored CloudEvents fill it here: the source of a dedup key
`ce:<source>:<id>` is taken as everything before its last colon (ids with a colon in
them would be read as part of the source; the sandbox's and common senders' ids have
none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 50_000


def upgrade() -> None:
    op.create_table(
        "webhook_sources",
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_webhook_sources")),
    )
    conn = op.get_bind()
    sources: dict[str, list[Any]] = {}
    result = conn.execute(
        sa.text("SELECT dedup_key, recorded_at FROM lifecycle_events WHERE dedup_key LIKE 'ce:%'")
    )
    while rows := result.fetchmany(_BATCH):
        for key, recorded in rows:
            source = str(key)[3:].rpartition(":")[0]
            if not source:
                continue
            seen = sources.setdefault(source, [recorded, 0])
            seen[0] = max(seen[0], recorded)
            seen[1] += 1
    if sources:  # the moments as the driver read them, so stored as they were
        conn.execute(
            sa.text(
                "INSERT INTO webhook_sources (source, last_received_at, events) "
                "VALUES (:source, :at, :events)"
            ),
            [{"source": s, "at": at, "events": n} for s, (at, n) in sorted(sources.items())],
        )


def downgrade() -> None:
    op.drop_table("webhook_sources")
