"""The scheduler: APScheduler 3 with its job store in our database, plus what it lacks.

- Once per tick across processes: every `serve` process sharing the store runs the same
  scheduler; a run starts by inserting `(job, tick)` into `job_runs`, and only the process
  whose insert succeeds runs it. Ticks are fixed points (`ANCHOR + k * every`), so every
  process computes the same tick for the same run.
- Jitter is ours (a random wait after the claim): APScheduler's own jitter moves the next
  fire time from the jittered previous one, so ticks would drift apart across processes.
- A time limit per job: the job runs in its own thread; past the limit the run is recorded
  `timed_out` and the scheduler goes on. A hung run is never started twice: until it
  returns, that job's later ticks are recorded failed.
- `stop` waits for the runs in progress (up to its `wait`) and starts no run after it:
  a tick that fires while it stops gives its claim back.
- A job missed while every process was down runs once at start (coalesced) when the miss
  is within `misfire_grace`: jobs already in the store keep their next run time.

APScheduler's persistent store keeps jobs by reference ("module:function" plus
arguments), so the callables of this process are looked up by job id in a registry that
`Scheduler.start` fills: one scheduler per process.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, delete, insert, update
from sqlalchemy.exc import IntegrityError

from store.scheduling import JobRun, SchedulerJob
from store.states import JobRunStatus

logger = logging.getLogger(__name__)

ANCHOR = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    every: dt.timedelta
    run: Callable[[], object]
    timeout: dt.timedelta
    jitter: dt.timedelta = dt.timedelta(0)


def tick_of(moment: dt.datetime, every: dt.timedelta) -> dt.datetime:
    """The tick a run at `moment` belongs to: the latest `ANCHOR + k * every` not after it."""
    k = math.floor((moment - ANCHOR) / every)
    return ANCHOR + k * every


_registry: dict[str, Scheduler] = {}
_registry_lock = threading.Lock()


def _fire(job_name: str) -> None:
    """What the job store points at; runs `job_name` on this process's scheduler."""
    with _registry_lock:
        scheduler = _registry.get("current")
    if scheduler is None:
        logger.warning("job %s fired with no scheduler running in this process", job_name)
        return
    scheduler.fire(job_name)


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        jobs: list[ScheduledJob],
        *,
        misfire_grace: dt.timedelta = dt.timedelta(minutes=5),
        runner: str | None = None,
        max_workers: int = 8,
    ) -> None:
        names = [job.name for job in jobs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scheduled job names must be unique: {', '.join(duplicates)}")
        self._engine = engine
        self._jobs = {job.name: job for job in jobs}
        self.runner = runner or f"{socket.gethostname()}:{os.getpid()}"
        self._running: dict[str, tuple[threading.Thread, float]] = {}
        self._stopping = False
        """set by `stop`: no job is started from then on (what it holds is being closed)"""
        self._lock = threading.Lock()
        self._aps = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=engine, tablename=SchedulerJob.__tablename__)
            },
            executors={"default": ThreadPoolExecutor(max_workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, int(misfire_grace.total_seconds())),
            },
            timezone=dt.UTC,
        )

    @property
    def jobs(self) -> list[ScheduledJob]:
        return list(self._jobs.values())

    def start(self) -> None:
        with _registry_lock:
            if "current" in _registry:
                raise RuntimeError("a scheduler is already running in this process")
            _registry["current"] = self
        try:
            self._aps.start(paused=True)
            for job in self._jobs.values():
                self._ensure(job)
            for stale in self._aps.get_jobs():
                if stale.id not in self._jobs:
                    logger.info("removing job %s: no longer configured", stale.id)
                    stale.remove()
            self._aps.resume()
        except BaseException:
            self.stop()
            raise

    def _ensure(self, job: ScheduledJob) -> None:
        """Add the job, or keep the stored one (and its next run time) when unchanged."""
        trigger = IntervalTrigger(seconds=job.every.total_seconds(), start_date=ANCHOR)
        stored = self._aps.get_job(job.name)
        if (
            stored is not None
            and isinstance(stored.trigger, IntervalTrigger)
            and stored.trigger.interval == trigger.interval
            and stored.args == (job.name,)
        ):
            return
        self._aps.add_job(
            f"{__name__}:_fire",
            trigger,
            args=(job.name,),
            id=job.name,
            name=job.name,
            replace_existing=True,
        )

    def stop(self, wait: dt.timedelta = dt.timedelta(seconds=10)) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)
        deadline = time.monotonic() + wait.total_seconds()
        with self._lock:
            self._stopping = True
            threads = [thread for thread, _ in self._running.values()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with _registry_lock:
            if _registry.get("current") is self:
                del _registry["current"]

    def fire(self, name: str, at: dt.datetime | None = None) -> JobRunStatus | None:
        """Run one tick of `name` unless another process claimed it. Returns the run's
        status, or None when the tick belonged to someone else or the scheduler is stopping
        (then nothing ran and the tick is not kept as claimed)."""
        job = self._jobs.get(name)
        if job is None:
            logger.warning("job %s is in the store but not configured here", name)
            return None
        now = at or dt.datetime.now(dt.UTC)
        tick = tick_of(now, job.every)
        run_id = self._claim(job, tick, now)
        if run_id is None:
            return None
        if job.jitter > dt.timedelta(0):
            time.sleep(random.uniform(0, job.jitter.total_seconds()))
        outcome: dict[str, BaseException] = {}

        def target() -> None:
            try:
                job.run()
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=target, name=f"job-{name}", daemon=True)
        # checked and registered under the lock `stop` takes: a run either starts before
        # `stop` collects the runs to wait for, or not at all (a tick that fired while the
        # scheduler stopped used to start its job after `stop` had returned, with what it
        # holds already closed)
        with self._lock:
            stopping = self._stopping
            previous = self._running.get(name)
            hung = previous is not None and previous[0].is_alive()
            if not stopping and not hung:
                self._running[name] = (thread, time.monotonic())
        if stopping:
            self._release(run_id)
            return None
        if hung and previous is not None:
            held = time.monotonic() - previous[1]
            error = f"the previous run is still running after {held:.0f} s; not started again"
            self._finish(run_id, JobRunStatus.FAILED, error)
            return JobRunStatus.FAILED
        thread.start()
        thread.join(job.timeout.total_seconds())
        if thread.is_alive():
            logger.warning("job %s timed out after %s", name, job.timeout)
            self._finish(
                run_id, JobRunStatus.TIMED_OUT, f"timed out after {job.timeout.total_seconds():g} s"
            )
            return JobRunStatus.TIMED_OUT
        with self._lock:
            self._running.pop(name, None)
        failure = outcome.get("error")
        if failure is not None:
            logger.warning("job %s failed: %r", name, failure)
            self._finish(run_id, JobRunStatus.FAILED, f"{type(failure).__name__}: {failure}"[:2000])
            return JobRunStatus.FAILED
        self._finish(run_id, JobRunStatus.OK, None)
        return JobRunStatus.OK

    def _claim(self, job: ScheduledJob, tick: dt.datetime, now: dt.datetime) -> int | None:
        try:
            with self._engine.begin() as conn:
                return int(
                    conn.execute(
                        insert(JobRun)
                        .values(
                            job=job.name,
                            scheduled_for=tick,
                            started_at=now,
                            status=JobRunStatus.RUNNING,
                            runner=self.runner,
                        )
                        .returning(JobRun.id)
                    ).scalar_one()
                )
        except IntegrityError:
            logger.debug("job %s tick %s already claimed", job.name, tick)
            return None

    def _release(self, run_id: int) -> None:
        """Give back a claimed tick that was not run (the scheduler stopped first)."""
        with self._engine.begin() as conn:
            conn.execute(delete(JobRun).where(JobRun.id == run_id))

    def _finish(self, run_id: int, status: JobRunStatus, error: str | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(status=status, error=error, finished_at=dt.datetime.now(dt.UTC))
            )
