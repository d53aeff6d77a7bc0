"""Rollup cells: built from issues, stored, found again, and patched with what changed since.

Why the figures stay exact: a cell is a pure function of the issues created on its day at its
studio, recomputed whole (never incremented). Every issue write sets `updated_at`, and the job
stores a watermark below which every write is known to be in the cells. A request reads the
cells, then recomputes from the issues every cell holding an issue written after the watermark.
The watermark trails the job's start by `LAG`, so a write whose `updated_at` was taken (from an
app server's clock) shortly before the job looked, but committed after, is still seen as recent.

The queries below are shaped for the planner: each names only fields of one index (an equality
and a range), so both MongoDB and SecantusDB walk just the matching index range. They pass no
`hint()`: SecantusDB 0.7 walks the whole hinted index, which costs a collection scan.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from ..db import as_utc, utcnow
from ..issues.models import CATEGORIES, Issue
from . import cells as figures
from .models import RollupCell, RollupState

STATE_ID = "rollups"
VERSION = 1  # raise when the counters change: every cell is rebuilt by the next job run
LAG = dt.timedelta(minutes=2)
DUPLICATE_KEY = 11000

Key = tuple[str, object]  # (local day, studio_id)
Deadlines = dict  # category -> response deadline (timedelta)


def fingerprint(settings) -> str:
    """The definitions the cells assume; a change makes requests go live until the job rebuilds."""
    days = ",".join(f"{c}={response_days(settings, c)}" for c in CATEGORIES)
    return f"v{VERSION};tz={settings.tz};response_days={days}"


def response_days(settings, category: str) -> int:
    """The response deadline of a category (per-category overrides where configured)."""
    if hasattr(settings, "deadline_days"):
        return settings.deadline_days("response", category)
    return settings.response_deadline_days


def deadlines(settings) -> Deadlines:
    return {c: dt.timedelta(days=response_days(settings, c)) for c in CATEGORIES}


def issues_collection():
    return Issue._get_collection()


def cells_collection():
    return RollupCell._get_collection()


# --- building cells from issues ------------------------------------------------------------------

def build(issues, tz: ZoneInfo, deadlines: Deadlines) -> dict[Key, dict]:
    """Tally issue documents into cells keyed by (local day, studio)."""
    built: dict[Key, dict] = {}
    for issue in issues:
        day = figures.local_day(issue["created_at"], tz)
        key = (day, issue["studio_id"])
        cell = built.get(key)
        if cell is None:
            path = list(issue.get("region_path") or ())
            cell = built[key] = {
                "_id": f"{day}:{issue['studio_id']}", "day": day, "studio_id": issue["studio_id"],
                "region_code": issue.get("region_code"), "region_path": path,
                "township_code": issue.get("township_code"), "by_category": {},
            }
        counters = cell["by_category"].setdefault(issue["category"], figures.new_counters())
        figures.tally(counters, issue, deadlines.get(issue["category"], deadlines["other"]))
    return built


def recompute(days_by_studio: dict[object, set[str]], tz: ZoneInfo, deadlines: Deadlines) -> dict[Key, dict | None]:
    """Fresh cells for the given (studio, days); None for a key that holds no issue."""
    fresh: dict[Key, dict | None] = {}
    for studio_id, days in days_by_studio.items():
        for first, last in _runs(sorted(days)):
            query = {"studio_id": studio_id,
                     "created_at": {"$gte": figures.day_start(first, tz),
                                    "$lt": figures.day_start(last + dt.timedelta(days=1), tz)}}
            fresh.update(build(issues_collection().find(query, figures.ISSUE_FIELDS), tz, deadlines))
        for day in days:
            fresh.setdefault((day, studio_id), None)
    return fresh


def _runs(days: list[str]):
    """Consecutive days as (first, last) dates: one range query per run."""
    run: list[dt.date] = []
    for text in days:
        day = dt.date.fromisoformat(text)
        if run and day - run[-1] > dt.timedelta(days=1):
            yield run[0], run[-1]
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1]


def live(region_code: str, start: dt.datetime, end: dt.datetime, tz: ZoneInfo, deadlines: Deadlines) -> dict[Key, dict]:
    """Every cell of a region and period straight from the issues (no usable rollups yet)."""
    query = {"region_path": region_code, "created_at": {"$gte": start, "$lt": end}}
    return build(issues_collection().find(query, figures.ISSUE_FIELDS), tz, deadlines)


def written_since(watermark: dt.datetime, tz: ZoneInfo, region_code: str | None = None,
                  day_from: str | None = None, day_to: str | None = None) -> dict[object, set[str]]:
    """(studio -> days) of the cells holding an issue written after the watermark."""
    keys: dict[object, set[str]] = defaultdict(set)
    query = {"updated_at": {"$gt": watermark}}
    for issue in issues_collection().find(query, {"studio_id": 1, "created_at": 1, "region_path": 1}):
        if region_code is not None and region_code not in (issue.get("region_path") or ()):
            continue
        day = figures.local_day(issue["created_at"], tz)
        if (day_from and day < day_from) or (day_to and day > day_to):
            continue
        keys[issue["studio_id"]].add(day)
    return keys


# --- stored cells --------------------------------------------------------------------------------

def stored(region_code: str, day_from: str, day_to: str) -> dict[Key, dict]:
    query = {"region_path": region_code, "day": {"$gte": day_from, "$lte": day_to}}
    return {(cell["day"], cell["studio_id"]): cell for cell in cells_collection().find(query)}


def save(fresh: dict[Key, dict | None], computed_at: dt.datetime) -> int:
    """Store recomputed cells; a cell computed later by someone else is never overwritten."""
    collection = cells_collection()
    writes = []
    for (day, studio_id), cell in fresh.items():
        if cell is None:
            collection.delete_one({"_id": f"{day}:{studio_id}", "computed_at": {"$lte": computed_at}})
            continue
        doc = {**cell, "computed_at": computed_at}
        writes.append(ReplaceOne({"_id": doc["_id"], "computed_at": {"$lte": computed_at}}, doc, upsert=True))
    for start in range(0, len(writes), 500):
        try:
            collection.bulk_write(writes[start:start + 500], ordered=False)
        except BulkWriteError as exc:  # a newer copy exists (the upsert then collides): keep it
            if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise
    return len(writes)


def state() -> dict | None:
    return RollupState._get_collection().find_one({"_id": STATE_ID})


def set_state(watermark: dt.datetime, fingerprint_: str, now: dt.datetime) -> None:
    RollupState._get_collection().update_one(
        {"_id": STATE_ID},
        {"$set": {"watermark": watermark, "fingerprint": fingerprint_, "refreshed_at": now}}, upsert=True)


def watermark_for(now: dt.datetime) -> dt.datetime:
    """Never ahead of the real clock (a job may be handed a future `now`), minus the commit lag."""
    return min(as_utc(now), utcnow()) - LAG
