"""Timed work of the stats feature: keep the daily rollup cells current.

`refresh_rollups(now)` runs in an app context (the scheduler's). It is idempotent: a rerun
recomputes the same cells from the same issues and stores the same counters.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo


from .. import config
from ..db import utcnow
from . import cells as figures
from . import rollups

log = logging.getLogger(__name__)


def refresh_rollups(now: dt.datetime) -> dict:
    """Recompute the cells of issues written since the watermark (all cells when the definitions
    changed or on the first run), then move the watermark to `now` minus the commit lag."""
    settings = config.settings()
    tz, deadlines = ZoneInfo(settings.tz), rollups.deadlines(settings)
    fingerprint = rollups.fingerprint(settings)
    watermark = rollups.watermark_for(now)
    started = utcnow()  # every cell below is computed from reads made after this instant
    current = rollups.state()
    if current is None or current["fingerprint"] != fingerprint:
        # Requests do not read cells while the definitions differ (they count live), so the
        # cells are simply replaced.
        written, removed = rollups.rebuild(tz, deadlines, started, figures.epoch_ms(watermark))
        mode = "rebuild"
    else:
        keys = rollups.written_since(current["watermark"], tz)
        days = rollups.recompute(keys, tz, deadlines)
        # Cells whose earliest deadline has passed are compacted as they are (their issues are unchanged).
        cutoff = figures.epoch_ms(watermark)
        days = rollups.passed_due(cutoff) | days
        days = {key: cell and rollups.compacted(cell, cutoff) for key, cell in days.items()}
        months = rollups.resum({(day[:7], studio) for day, studio in days}, days)
        written = rollups.save(rollups.days_collection(), _by_id(days), started)
        written += rollups.save(rollups.months_collection(), _by_id(months), started)
        # The region cells over the studio cells just stored.
        paths = rollups.studio_paths({studio for _, studio in days})
        targets = {(grain, period, code) for grain, cells in (("day", days), ("month", months))
                   for period, studio in cells for code in paths.get(studio, [])[:rollups.REGION_DEPTH]}
        regions = rollups.resum_regions(targets, {})
        written += rollups.save_regions(regions, started)
        years = rollups.resum_years({(period[:4], code) for grain, period, code in targets if grain == "month"}, {})
        written += rollups.save_regions(years, started)
        regions.update(years)
        removed = sum(1 for cell in [*days.values(), *months.values(), *regions.values()] if cell is None)
        mode = "incremental"
    rollups.set_state(watermark, fingerprint, now)
    summary = {"mode": mode, "cells_written": written, "cells_removed": removed, "watermark": watermark}
    log.debug("stats rollups refreshed: %s", summary)  # the scheduler logs the counts when there are any
    return summary


def _by_id(cells: dict) -> dict:
    return {rollups.cell_id(period, studio): cell for (period, studio), cell in cells.items()}
