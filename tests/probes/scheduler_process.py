"""A scheduler process for the multi-process test: one job every `--every` seconds that
appends `<runner> <tick>` to a shared file. Run until `--seconds` have passed."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from store.engine import make_engine
from throughline.scheduler import ScheduledJob, Scheduler, tick_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    every = dt.timedelta(seconds=args.every)
    name = f"proc-{os.getpid()}"

    def job() -> None:
        tick = tick_of(dt.datetime.now(dt.UTC), every)
        with open(args.out, "a") as out:
            out.write(f"{name} {tick.isoformat()}\n")

    engine = make_engine(args.url)
    scheduler = Scheduler(
        engine,
        [ScheduledJob("append", every, job, dt.timedelta(seconds=5))],
        runner=name,
    )
    scheduler.start()
    print("started", flush=True)
    time.sleep(args.seconds)
    scheduler.stop()
    engine.dispose()


if __name__ == "__main__":
    main()
