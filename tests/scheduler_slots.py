"""A scheduler process over fixed slots (tests/test_notifications.py starts two at once).

Runs every job of `yishitang.scheduler` and a probe for the same minutes, in the order
APScheduler would: `python -m tests.scheduler_slots <first minute ISO> <minutes>`. The probe adds
one to a counter per run: nothing but the slot claim stops two processes from both counting.
"""

from __future__ import annotations

import datetime as dt
import sys

from yishitang import create_app, db
from yishitang.config import Settings
from yishitang.scheduler import Job, jobs, run_once


def probe(now: dt.datetime) -> int:
    minute = int(now.timestamp() // 60)
    db.database().probe_runs.update_one({"_id": minute}, {"$inc": {"runs": 1}}, upsert=True)
    return minute


def main(first: str, minutes: str) -> None:
    app = create_app(Settings.from_env())
    start = dt.datetime.fromisoformat(first)
    every = [*jobs(), Job("probe", 60, probe)]
    for n in range(int(minutes)):
        for job in every:
            run_once(app, job, start + dt.timedelta(minutes=n))


if __name__ == "__main__":
    main(*sys.argv[1:])
