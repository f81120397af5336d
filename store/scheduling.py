"""The scheduler's tables: APScheduler's persistent job store, and one row per job run.

`job_runs` is both the history of every scheduled run and the lock that makes a job run
once per tick across several processes: a run starts by inserting `(job, scheduled_for)`,
and only the process whose insert succeeded runs it.
"""

from __future__ import annotations

from sqlalchemy import Float, Index, LargeBinary, String, Text, Unicode, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.base import Base, IdPk, Timestamp
from store.states import JobRunStatus, enum_column


class SchedulerJob(Base):
    """APScheduler 3's SQLAlchemyJobStore table, declared here so migrations own it."""

    __tablename__ = "scheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25))
    job_state: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index(None, "next_run_time"),)


class JobRun(Base):
    __tablename__ = "job_runs"

    id: Mapped[IdPk]
    job: Mapped[str] = mapped_column(String(128))
    scheduled_for: Mapped[Timestamp]
    started_at: Mapped[Timestamp]
    finished_at: Mapped[Timestamp | None]
    status: Mapped[JobRunStatus] = mapped_column(enum_column(JobRunStatus, 16))
    runner: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("job", "scheduled_for"),
        Index(None, "job", "started_at"),
    )


__all__ = ["JobRun", "SchedulerJob"]
