"""kpi snapshots stored as changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 18:30:00

A refresh used to store every value (about 1,300 rows, ~850 KB at 10k deals, every
minute); now it stores only the values that changed, each valid from `as_of` until
`superseded_at`, and lists itself in `kpi_refreshes`. Rows already stored were whole
snapshots: each becomes valid until the next stored refresh, so every moment reads as
it did.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kpi_refreshes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("values", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_refreshes")),
        sa.UniqueConstraint("as_of", name=op.f("uq_kpi_refreshes_as_of")),
    )
    with op.batch_alter_table("kpi_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_kpi_snapshots_superseded_at"), ["superseded_at"], unique=False
        )
    op.execute(
        'INSERT INTO kpi_refreshes (as_of, "values", changed) '
        "SELECT as_of, COUNT(*), COUNT(*) FROM kpi_snapshots GROUP BY as_of"
    )
    op.execute(
        "UPDATE kpi_snapshots SET superseded_at = (SELECT MIN(r.as_of) FROM kpi_refreshes r "
        "WHERE r.as_of > kpi_snapshots.as_of)"
    )


def downgrade() -> None:
    # Back to whole snapshots: a row for every refresh its value was current at.
    op.execute(
        'INSERT INTO kpi_snapshots (kpi, "window", dimension, dimension_value, as_of, value, '
        "unit, member_count, meta) "
        'SELECT s.kpi, s."window", s.dimension, s.dimension_value, r.as_of, s.value, s.unit, '
        "s.member_count, s.meta FROM kpi_snapshots s JOIN kpi_refreshes r "
        "ON r.as_of > s.as_of AND (s.superseded_at IS NULL OR r.as_of < s.superseded_at)"
    )
    with op.batch_alter_table("kpi_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_snapshots_superseded_at"))
        batch_op.drop_column("superseded_at")
    op.drop_table("kpi_refreshes")
