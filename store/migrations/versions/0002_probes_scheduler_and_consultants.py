"""probes scheduler and consultants

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:41:39.724003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "consultants",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=256), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("practice", sa.String(length=64), nullable=True),
        sa.Column("legal_entity", sa.String(length=64), nullable=True),
        sa.Column("weekly_capacity_hours", sa.Numeric(precision=8, scale=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultants")),
    )
    with op.batch_alter_table("consultants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consultants_practice_legal_entity"),
            ["practice", "legal_entity"],
            unique=False,
        )

    op.create_table(
        "job_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job", sa.String(length=128), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "ok",
                "failed",
                "timed_out",
                name="jobrunstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("runner", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
        sa.UniqueConstraint("job", "scheduled_for", name=op.f("uq_job_runs_job_scheduled_for")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_runs_job_started_at"), ["job", "started_at"], unique=False
        )

    op.create_table(
        "scheduler_jobs",
        sa.Column("id", sa.Unicode(length=191), nullable=False),
        sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_jobs")),
    )
    with op.batch_alter_table("scheduler_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduler_jobs_next_run_time"), ["next_run_time"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("scheduler_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduler_jobs_next_run_time"))

    op.drop_table("scheduler_jobs")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_job_started_at"))

    op.drop_table("job_runs")
    with op.batch_alter_table("consultants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consultants_practice_legal_entity"))

    op.drop_table("consultants")
