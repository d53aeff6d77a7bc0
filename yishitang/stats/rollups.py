"""Rollup cells: built from issues, stored, found again, and patched with what changed since.

Studio cells: a day cell per studio and creation day (the counters of that day's issues, per
category) and a month cell per studio and month (the sum of its day cells). Region cells: per
district and per township, a day, a month and a year cell summing its studios' cells. A period
is read as year cells for its whole years, month cells for whole months and day cells for the days
at either end (a period running to today reads today's year whole: no issue is created after
now), from the narrowest cells that answer the question: a district's year by township is 16 year
cells, by category one; by studio it is its studios x 12 month cells; a community is read from its
studios. The cost follows the map, not the number of issues: the due lists in the cells hold only
deadlines still ahead at the last compaction (see `cells.compact`).

Why the figures stay exact: a day cell is a pure function of its issues, recomputed whole (never
incremented), and a month cell a pure function of its day cells. Every issue write sets
`updated_at`; the job stores a watermark below which every write is known to be in the cells. A
request reads the cells, then recomputes from the issues every day cell holding an issue written
after the watermark (and re-sums the month cells containing them). The watermark trails the
job's start by `LAG`, so a write whose `updated_at` was taken (from an app server's clock) shortly
before the job looked, but committed after, is still seen as recent.

The queries below are shaped for the planner: each names only fields of one index (an equality
and a range), so both MongoDB and SecantusDB walk just the matching index range, and by the rule
of `db.hint_for` none needs the index named.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from zoneinfo import ZoneInfo

from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from ..db import as_utc, utcnow
from ..issues.models import CATEGORIES, Issue
from ..studios.models import Studio
from . import cells as figures
from .models import MonthCell, RegionCell, RegionTotal, RollupCell, RollupState
from .periods import REGION_DEPTH

log = logging.getLogger(__name__)
STATE_ID = "rollups"
VERSION = 5  # raise when the counters change: every cell is rebuilt by the next job run
LAG = dt.timedelta(minutes=2)
DUPLICATE_KEY = 11000

Key = tuple[str, object]  # (local day or month, studio_id)
Override = tuple[str, str, object]  # (grain, period, studio_id) of a studio cell computed afresh
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


def regions_collection():
    return RegionCell._get_collection()


def totals_collection():
    return RegionTotal._get_collection()


def cell_id(period: str, studio_id) -> str:
    return f"{period}:{studio_id}"


def region_id(grain: str, period: str, code: str) -> str:
    return f"{grain}:{period}:{code}"


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
    return with_totals(built)


def with_totals(cells: dict) -> dict:
    """Give every cell its `total` over the categories: a question not asked by category reads
    that one set of counters instead of one per category."""
    for cell in cells.values():
        total = figures.new_counters()
        for counters in cell["by_category"].values():
            figures.add(total, counters)
        cell["total"] = total
    return cells


def _add_categories(into: dict, cell: dict) -> None:
    """Add a cell's counters, category by category, into a cell that sums it."""
    for category, counters in cell["by_category"].items():
        figures.add(into["by_category"].setdefault(category, figures.new_counters()), counters)


def sum_months(day_cells) -> dict[Key, dict]:
    """Month cells keyed by (month, studio): the sums of the given day cells."""
    months: dict[Key, dict] = {}
    for cell in day_cells:
        key = (cell["day"][:7], cell["studio_id"])
        month = months.get(key)
        if month is None:
            month = months[key] = _empty("month", key[0], cell["studio_id"], cell)
        _add_categories(month, cell)
    return with_totals(months)


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


def sum_regions(studio_cells, grain: str) -> dict[str, dict]:
    """Region cells (by id) summing studio cells of one grain ("day" or "month")."""
    regions: dict[str, dict] = {}
    for cell in studio_cells:
        period, path = cell[grain], cell.get("region_path") or []
        for depth, code in enumerate(path[:REGION_DEPTH]):
            key = region_id(grain, period, code)
            region = regions.get(key)
            if region is None:
                region = regions[key] = {
                    "_id": key, "grain": grain, "period": period, "region_code": code,
                    "parent_code": path[depth - 1] if depth else None,
                    "township_code": path[1] if depth >= 1 else None, "by_category": {}}
            _add_categories(region, cell)
    return with_totals(regions)


def resum_regions(targets: set[tuple[str, str, str]], overrides: dict[Override, dict | None]) -> dict[str, dict | None]:
    """Region cells (grain, period, code) re-summed from the stored studio cells, with `overrides`
    in place of theirs; None for a region cell that no longer sums anything."""
    resummed: dict[str, dict | None] = {}
    for grain, period, code in targets:
        collection = days_collection() if grain == "day" else months_collection()
        cells = {cell["studio_id"]: cell for cell in collection.find({"region_path": code, grain: period})}
        for (o_grain, o_period, studio_id), cell in overrides.items():
            if (o_grain, o_period) != (grain, period):
                continue
            if cell is None:
                cells.pop(studio_id, None)
            elif code in cell["region_path"]:
                cells[studio_id] = cell
        key = region_id(grain, period, code)
        resummed[key] = sum_regions(cells.values(), grain).get(key)
    return resummed


def sum_years(month_cells) -> dict[str, dict]:
    """Region year cells (by id) summing region month cells."""
    years: dict[str, dict] = {}
    for cell in month_cells:
        key = region_id("year", cell["period"][:4], cell["region_code"])
        year = years.get(key)
        if year is None:
            year = years[key] = {"_id": key, "grain": "year", "period": cell["period"][:4],
                                 **{field: cell.get(field) for field in ("region_code", "parent_code", "township_code")},
                                 "by_category": {}}
        _add_categories(year, cell)
    return with_totals(years)


def resum_years(targets: set[tuple[str, str]], fresh_months: dict[str, dict | None]) -> dict[str, dict | None]:
    """Region year cells (year, code) re-summed from the stored region month cells, with
    `fresh_months` (by id) in place of theirs."""
    resummed: dict[str, dict | None] = {}
    for year, code in targets:
        query = {"region_code": code, "grain": "month", "period": {"$gte": f"{year}-01", "$lte": f"{year}-12"}}
        months = {cell["_id"]: cell for cell in regions_collection().find(query)}
        for key, cell in fresh_months.items():
            _, period, region_code = key.split(":")
            if region_code == code and period[:4] == year:
                months[key] = cell
        key = region_id("year", year, code)
        resummed[key] = sum_years(cell for cell in months.values() if cell is not None).get(key)
    return resummed


def studio_paths(studio_ids) -> dict[object, list[str]]:
    found = Studio._get_collection().find({"_id": {"$in": list(studio_ids)}}, {"region_path": 1})
    return {studio["_id"]: list(studio.get("region_path") or ()) for studio in found}


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

def stored(scope_: tuple[str, dict], ranges: list[tuple[str, str, str]], by_category: bool) -> dict[str, dict]:
    """The stored cells of a scope (by id) over `ranges` of (grain, first, last) periods, with
    their counters per category or only their totals."""
    kind, match = scope_
    found: dict[str, dict] = {}
    for grain, first, last in ranges:
        if kind == "studio":
            collection = days_collection() if grain == "day" else months_collection()
            query = {**match, grain: {"$gte": first, "$lte": last}}
        else:
            collection = regions_collection() if by_category else totals_collection()
            query = {**match, "grain": grain, "period": {"$gte": first, "$lte": last}}
        found.update((cell["_id"], cell) for cell in collection.find(query))
    return found


def compacted(cell: dict, cutoff_ms: int) -> dict:
    """A studio day cell with its due instants before `cutoff_ms` counted as passed."""
    for counters in [*cell["by_category"].values(), cell["total"]]:
        figures.compact(counters, cutoff_ms)
    cell["next_due"] = figures.next_due(cell["by_category"])
    return cell


def passed_due(cutoff_ms: int) -> dict[Key, dict]:
    """Stored studio day cells with a listed due instant before `cutoff_ms`: due for compacting."""
    return {(cell["day"], cell["studio_id"]): cell for cell in days_collection().find({"next_due": {"$lt": cutoff_ms}})}


def save(collection, fresh: dict[str, dict | None], computed_at: dt.datetime) -> int:
    """Store recomputed cells (by id); a cell computed later by someone else is never overwritten."""
    writes = []
    for key, cell in fresh.items():
        if cell is None:
            collection.delete_one({"_id": key, "computed_at": {"$lte": computed_at}})
            continue
        doc = {**cell, "computed_at": computed_at}
        writes.append(ReplaceOne({"_id": key, "computed_at": {"$lte": computed_at}}, doc, upsert=True))
    for start in range(0, len(writes), 500):
        try:
            collection.bulk_write(writes[start:start + 500], ordered=False)
        except BulkWriteError as exc:  # a newer copy exists (the upsert then collides): keep it
            if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise
    return len(writes)


def _parts(cell: dict | None) -> tuple[dict | None, dict | None]:
    """A region cell as its two stored documents: per category, and the total."""
    if cell is None:
        return None, None
    return ({key: value for key, value in cell.items() if key != "total"},
            {key: value for key, value in cell.items() if key != "by_category"})


def save_regions(fresh: dict[str, dict | None], computed_at: dt.datetime) -> int:
    split = {key: _parts(cell) for key, cell in fresh.items()}
    save(totals_collection(), {key: total for key, (_, total) in split.items()}, computed_at)
    return save(regions_collection(), {key: per_category for key, (per_category, _) in split.items()}, computed_at)


def _insert_regions(cells, computed_at) -> int:
    cells = list(cells)
    _insert(totals_collection(), [_parts(cell)[1] for cell in cells], computed_at)
    return _insert(regions_collection(), [_parts(cell)[0] for cell in cells], computed_at)


def rebuild(tz: ZoneInfo, deadlines: Deadlines, computed_at: dt.datetime, cutoff_ms: int) -> tuple[int, int]:
    """Every cell afresh, a studio at a time and then a month of region cells at a time, so memory
    and each database read stay the size of one studio's issues or one month's studio cells."""
    removed = sum(collection().delete_many({}).deleted_count
                  for collection in (days_collection, months_collection, regions_collection, totals_collection))
    written, months, tops = 0, set(), set()
    # Read whole first: a cursor left open across the whole rebuild would outlive its idle timeout.
    studios = list(Studio._get_collection().find({}, {"_id": 1, "region_path": 1}))
    for done, studio in enumerate(studios, start=1):
        if done % 20 == 0:
            log.info("stats rebuild: %d of %d studios", done, len(studios))
        days = build(issues_collection().find({"studio_id": studio["_id"]}, figures.ISSUE_FIELDS), tz, deadlines)
        days = {key: compacted(cell, cutoff_ms) for key, cell in days.items()}
        written += _insert(days_collection(), days.values(), computed_at)
        written += _insert(months_collection(), sum_months(days.values()).values(), computed_at)
        months.update(day[:7] for day, _ in days)
        tops.update(studio.get("region_path", [])[:1])
    for top in sorted(tops):
        region_months = []
        for month in sorted(months):
            query = {"region_path": top, "day": {"$gte": f"{month}-01", "$lte": f"{month}-31"}}
            days = list(days_collection().find(query))
            month_cells = sum_regions(sum_months(days).values(), "month")
            written += _insert_regions([*sum_regions(days, "day").values(), *month_cells.values()], computed_at)
            region_months.extend(month_cells.values())
        written += _insert_regions(sum_years(region_months).values(), computed_at)
    return written, removed


def _insert(collection, cells, computed_at) -> int:
    docs = [{**cell, "computed_at": computed_at} for cell in cells]
    for first in range(0, len(docs), 1000):
        collection.insert_many(docs[first:first + 1000], ordered=False)
    return len(docs)


def state() -> dict | None:
    return RollupState._get_collection().find_one({"_id": STATE_ID})


def set_state(watermark: dt.datetime, fingerprint_: str, now: dt.datetime) -> None:
    RollupState._get_collection().update_one(
        {"_id": STATE_ID},
        {"$set": {"watermark": watermark, "fingerprint": fingerprint_, "refreshed_at": now}}, upsert=True)


def watermark_for(now: dt.datetime) -> dt.datetime:
    """Never ahead of the real clock (a job may be handed a future `now`), minus the commit lag."""
    return min(as_utc(now), utcnow()) - LAG
