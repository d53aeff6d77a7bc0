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
        built = rollups.build(rollups.issues_collection().find({}, figures.ISSUE_FIELDS), tz, deadlines)
        written = rollups.save(built, started)
        removed = rollups.cells_collection().delete_many({"computed_at": {"$lt": started}}).deleted_count
        mode = "rebuild"
    else:
        keys = rollups.written_since(current["watermark"], tz)
        fresh = rollups.recompute(keys, tz, deadlines)
        written = rollups.save(fresh, started)
        removed = sum(1 for cell in fresh.values() if cell is None)
        mode = "incremental"
    rollups.set_state(watermark, fingerprint, now)
    summary = {"mode": mode, "cells_written": written, "cells_removed": removed, "watermark": watermark}
    log.info("stats rollups refreshed: %s", summary)
    return summary
