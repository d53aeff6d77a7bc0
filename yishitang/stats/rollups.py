"""Rollup cells: built from issues, stored, found again, and patched with what changed since.

Two levels: a day cell per studio and creation day (the counters of that day's issues, per
category) and a month cell per studio and month (the sum of its day cells). A period is read as
month cells for its whole months and day cells for the days at either end, so a district-year
costs at most twelve cells per studio plus the edges, however many issues there are.

Why the figures stay exact: a day cell is a pure function of its issues, recomputed whole (never
incremented), and a month cell a pure function of its day cells. Every issue write sets
`updated_at`; the job stores a watermark below which every write is known to be in the cells. A
request reads the cells, then recomputes from the issues every day cell holding an issue written
after the watermark (and re-sums the month cells containing them). The watermark trails the
job's start by `LAG`, so a write whose `updated_at` was taken (from an app server's clock) shortly
before the job looked, but committed after, is still seen as recent.

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
from .models import MonthCell, RollupCell, RollupState

STATE_ID = "rollups"
VERSION = 2  # raise when the counters change: every cell is rebuilt by the next job run
LAG = dt.timedelta(minutes=2)
DUPLICATE_KEY = 11000

Key = tuple[str, object]  # (local day or month, studio_id)
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


def days_collection():
    return RollupCell._get_collection()


def months_collection():
    return MonthCell._get_collection()


# --- building cells ------------------------------------------------------------------------------

def _empty(key_field: str, period: str, studio_id, like: dict) -> dict:
    return {"_id": f"{period}:{studio_id}", key_field: period, "studio_id": studio_id,
            "region_code": like.get("region_code"), "region_path": list(like.get("region_path") or ()),
            "township_code": like.get("township_code"), "by_category": {}}


def build(issues, tz: ZoneInfo, deadlines: Deadlines) -> dict[Key, dict]:
    """Tally issue documents into day cells keyed by (local day, studio)."""
    built: dict[Key, dict] = {}
    for issue in issues:
        day = figures.local_day(issue["created_at"], tz)
        key = (day, issue["studio_id"])
        cell = built.get(key)
        if cell is None:
            cell = built[key] = _empty("day", day, issue["studio_id"], issue)
        counters = cell["by_category"].setdefault(issue["category"], figures.new_counters())
        figures.tally(counters, issue, deadlines.get(issue["category"], deadlines["other"]))
    return built


def sum_months(day_cells) -> dict[Key, dict]:
    """Month cells keyed by (month, studio): the sums of the given day cells."""
    months: dict[Key, dict] = {}
    for cell in day_cells:
        key = (cell["day"][:7], cell["studio_id"])
        month = months.get(key)
        if month is None:
            month = months[key] = _empty("month", key[0], cell["studio_id"], cell)
        for category, counters in cell["by_category"].items():
            figures.add(month["by_category"].setdefault(category, figures.new_counters()), counters)
    return months


def recompute(days_by_studio: dict[object, set[str]], tz: ZoneInfo, deadlines: Deadlines) -> dict[Key, dict | None]:
    """Fresh day cells for the given (studio, days); None for a key that holds no issue."""
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


def resum(months: set[Key], fresh_days: dict[Key, dict | None]) -> dict[Key, dict | None]:
    """Month cells re-summed from the stored day cells, with `fresh_days` in place of theirs."""
    resummed: dict[Key, dict | None] = {}
    for month, studio_id in months:
        query = {"studio_id": studio_id, "day": {"$gte": f"{month}-01", "$lte": f"{month}-31"}}
        days = {(cell["day"], studio_id): cell for cell in days_collection().find(query)}
        for key, cell in fresh_days.items():
            if key[1] == studio_id and key[0][:7] == month:
                days[key] = cell
        summed = sum_months(cell for cell in days.values() if cell is not None)
        resummed[(month, studio_id)] = summed.get((month, studio_id))
    return resummed


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
    """Every day cell of a region and period straight from the issues (no usable rollups yet)."""
    query = {"region_path": region_code, "created_at": {"$gte": start, "$lt": end}}
    return build(issues_collection().find(query, figures.ISSUE_FIELDS), tz, deadlines)


def written_since(watermark: dt.datetime, tz: ZoneInfo, region_code: str | None = None,
                  day_from: str | None = None, day_to: str | None = None) -> dict[object, set[str]]:
    """(studio -> days) of the day cells holding an issue written after the watermark."""
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

def stored_days(region_code: str, day_from: str, day_to: str) -> dict[Key, dict]:
    query = {"region_path": region_code, "day": {"$gte": day_from, "$lte": day_to}}
    return {(cell["day"], cell["studio_id"]): cell for cell in days_collection().find(query)}


def stored_months(region_code: str, month_from: str, month_to: str) -> dict[Key, dict]:
    query = {"region_path": region_code, "month": {"$gte": month_from, "$lte": month_to}}
    return {(cell["month"], cell["studio_id"]): cell for cell in months_collection().find(query)}


def save(collection, fresh: dict[Key, dict | None], computed_at: dt.datetime) -> int:
    """Store recomputed cells; a cell computed later by someone else is never overwritten."""
    writes = []
    for (period, studio_id), cell in fresh.items():
        if cell is None:
            collection.delete_one({"_id": f"{period}:{studio_id}", "computed_at": {"$lte": computed_at}})
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


def split(date_from: dt.date, date_to: dt.date) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """The period as (first, last) whole month, if any, and the day ranges at either end."""
    first_month = date_from if date_from.day == 1 else _next_month(date_from)
    after_last = _next_month(date_to) if _next_month(date_to) - dt.timedelta(days=1) == date_to else date_to.replace(day=1)
    if first_month >= after_last:
        return None, [(date_from.isoformat(), date_to.isoformat())]
    last_month = after_last - dt.timedelta(days=1)
    edges = []
    if date_from < first_month:
        edges.append((date_from.isoformat(), (first_month - dt.timedelta(days=1)).isoformat()))
    if after_last <= date_to:
        edges.append((after_last.isoformat(), date_to.isoformat()))
    return (first_month.isoformat()[:7], last_month.isoformat()[:7]), edges


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
