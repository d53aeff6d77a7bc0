"""The scheduler process: APScheduler runs each feature's jobs, once per slot across processes.

Every run of a job first claims its slot (job name + the interval it falls in) by inserting a
document with a unique id into `job_runs`; a second scheduler process that reaches the same
slot finds it taken and skips. The jobs themselves stamp what they do, so a run repeated after
a crash changes nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass, replace
from typing import Callable

import mongoengine as me
from pymongo.errors import DuplicateKeyError

from .db import Record, utcnow

log = logging.getLogger(__name__)
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


class JobRun(Record):
    meta = {
        "collection": "job_runs",
        "indexes": [{"fields": ["job", "-slot"]}, {"fields": ["started_at"], "expireAfterSeconds": 7 * 24 * 3600}],
    }

    id = me.StringField(primary_key=True)  # "<job>:<slot>"
    job = me.StringField(required=True)
    slot = me.IntField(required=True)
    holder = me.StringField()
    started_at = me.DateTimeField()
    finished_at = me.DateTimeField()
    result = me.StringField()
    error = me.StringField()
    skipped_by = me.ListField(me.StringField())  # other processes that reached the slot later


@dataclass(frozen=True)
class Job:
    name: str
    every_s: int
    run: Callable[[dt.datetime], object]
    unit: str = "done"  # what a count returned by `run` counts, for the log line


# How the log line names the counts a job returns ("skipped": no template or no WeChat account).
LABELS = {"skipped": "in-app only", "retry": "to retry", "no_grant": "without a grant",
          "cells_written": "cells written", "cells_removed": "cells removed"}


def jobs() -> list[Job]:
    """Each feature's timed work, next to the feature; all take `now`."""
    from .consultations import jobs as consultation_jobs
    from .files import jobs as file_jobs
    from .issues import jobs as issue_jobs
    from .notifications import jobs as notification_jobs
    from .stats import jobs as stats_jobs

    return [
        Job("send_outbox", 5, notification_jobs.send_outbox),
        Job("consultation_reminders", 60, consultation_jobs.send_reminders, "reminders queued"),
        Job("issue_deadlines", 300, issue_jobs.check_deadlines),
        Job("stats_rollup", 600, stats_jobs.refresh_rollups),
        Job("auto_close", 3600, issue_jobs.auto_close, "closed"),
        Job("purge_unattached_uploads", 3600, file_jobs.purge_unattached, "purged"),
        Job("resend_media_checks", 60, file_jobs.resend_media_checks, "photos sent to WeChat's media check"),
    ]


def summary(job: Job, result) -> str | None:
    """`17 sent, 18 in-app only`: the non-zero counts of a job's result; None when it did nothing."""
    if isinstance(result, dict):
        parts = [f"{value} {LABELS.get(key, key)}" for key, value in result.items()
                 if isinstance(value, int) and not isinstance(value, bool) and value]
    else:
        parts = [f"{result} {job.unit}"] if isinstance(result, int) and result else []
    return ", ".join(parts) or None


def run_once(app, job: Job, now: dt.datetime | None = None) -> bool:
    """Run the job for the slot `now` falls in, unless another process has; True if it ran here."""
    now = now or utcnow()
    slot = int(now.timestamp() // job.every_s)
    run_id = f"{job.name}:{slot}"
    try:
        JobRun(id=run_id, job=job.name, slot=slot, holder=HOLDER, started_at=now).save(force_insert=True)
    except (DuplicateKeyError, me.NotUniqueError):
        JobRun.objects(id=run_id).update_one(push__skipped_by=HOLDER)
        return False
    try:
        with app.app_context():
            result = job.run(now)
        JobRun.objects(id=run_id).update_one(set__finished_at=utcnow(), set__result=str(result)[:500])
        done = summary(job, result)
        if done:  # a quiet run says nothing: the console stays the API's
            log.info("%s: %s", job.name, done)
    except Exception as exc:  # a failing job must not stop the scheduler; it runs again next slot
        log.exception("%s failed", job.name)
        JobRun.objects(id=run_id).update_one(set__finished_at=utcnow(), set__error=repr(exc)[:500])
    return True


def run_forever(app, scale: float = 1.0) -> None:
    """Start APScheduler in this process and block; `scale` shortens intervals for tests."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not two lines per job every 5 s
    scheduler = BlockingScheduler(timezone="UTC")
    scheduled = [replace(job, every_s=max(1, round(job.every_s * scale))) for job in jobs()]
    for job in scheduled:  # named after the feature, not all `run_once`
        scheduler.add_job(run_once, "interval", args=(app, job), seconds=job.every_s, id=job.name, name=job.name,
                          max_instances=1, coalesce=True, next_run_time=dt.datetime.now(dt.timezone.utc))
    log.info("scheduler %s started: %s", HOLDER, ", ".join(f"{j.name} every {j.every_s}s" for j in scheduled))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
