"""Timed work of the stats feature: keep the daily rollup cells current.

`refresh_rollups(now)` runs in an app context (the scheduler's). It is idempotent: a rerun
recomputes the same cells from the same issues and stores the same counters.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from flask import current_app

from ..db import utcnow
from . import cells as figures
from . import rollups

log = logging.getLogger(__name__)


def refresh_rollups(now: dt.datetime) -> dict:
    """Recompute the cells of issues written since the watermark (all cells when the definitions
    changed or on the first run), then move the watermark to `now` minus the commit lag."""
    settings = current_app.config["SETTINGS"]
    tz, deadlines = ZoneInfo(settings.tz), rollups.deadlines(settings)
    fingerprint = rollups.fingerprint(settings)
    watermark = rollups.watermark_for(now)
    started = utcnow()  # every cell below is computed from reads made after this instant
    current = rollups.state()
    if current is None or current["fingerprint"] != fingerprint:
        # Requests do not read cells while the definitions differ (they count live), so the
        # cells are simply replaced.
        days = rollups.build(rollups.issues_collection().find({}, figures.ISSUE_FIELDS), tz, deadlines)
        months = rollups.sum_months(days.values())
        removed = written = 0
        for collection, cells in ((rollups.days_collection(), days), (rollups.months_collection(), months)):
            removed += collection.delete_many({}).deleted_count
            docs = [{**cell, "computed_at": started} for cell in cells.values()]
            for first in range(0, len(docs), 1000):
                collection.insert_many(docs[first:first + 1000], ordered=False)
            written += len(docs)
        mode = "rebuild"
    else:
        keys = rollups.written_since(current["watermark"], tz)
        days = rollups.recompute(keys, tz, deadlines)
        months = rollups.resum({(day[:7], studio) for day, studio in days}, days)
        written = rollups.save(rollups.days_collection(), days, started)
        written += rollups.save(rollups.months_collection(), months, started)
        removed = sum(1 for cell in [*days.values(), *months.values()] if cell is None)
        mode = "incremental"
    rollups.set_state(watermark, fingerprint, now)
    summary = {"mode": mode, "cells_written": written, "cells_removed": removed, "watermark": watermark}
    log.info("stats rollups refreshed: %s", summary)
    return summary
