"""The coordinators' figures for a region and period: rollup cells, patched live, grouped and ranked."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from fractions import Fraction
from zoneinfo import ZoneInfo


from .. import config
from ..auth import has_role, require_scope
from ..db import as_utc, utcnow
from ..errors import Forbidden, InvalidInput
from ..issues.models import CATEGORIES, CATEGORY_NAMES
from ..regions import service as regions
from ..regions.models import Region
from ..studios.models import Studio
from . import cells as figures
from . import periods, rollups

GROUPINGS = ("township", "studio", "category", "month")
GROUP_NAMES = {"township": "镇街", "studio": "委员工作室", "category": "类别", "month": "月份"}
RATE_NAMES = tuple(figures.RATES)
MAX_PERIOD_DAYS = 3660  # ten years: the month trend stays a readable length



def resolve_region(user, code: str | None) -> Region:
    """The region asked for, or the caller's default: a coordinator's scope, an admin's district."""
    if code is None:
        if has_role(user, "admin"):
            district = Region.objects(kind="district").order_by("code").first()
            if district is None:
                raise InvalidInput(errors={"region": ["尚无区级地区，请指定地区"]})
            return district
        code = getattr(user, "scope_region_code", None)
        if not code:
            raise Forbidden("您尚未分配管辖地区", error="scope_forbidden")
    region = regions.get(code)
    require_scope(user, region.path)
    return region


def period(date_from: dt.date | None, date_to: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """Both dates inclusive; by default from 1 January of the end date's year to today."""
    date_to = date_to or today
    date_from = date_from or dt.date(date_to.year, 1, 1)
    if date_from > date_to:
        raise InvalidInput(errors={"from": ["开始日期不能晚于结束日期"]})
    if (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise InvalidInput(errors={"to": ["统计期间最长十年"]})
    return date_from, date_to


def default_grouping(region: Region) -> str:
    return "township" if region.tier == "district" else "studio"


def overview(user, region: str | None = None, date_from: dt.date | None = None, date_to: dt.date | None = None,
             group_by: str | None = None, rank: str | None = None, now: dt.datetime | None = None) -> dict:
    """The figures of a region's issues created in a period, per group and in total."""
    settings = config.settings()
    tz, deadlines = ZoneInfo(settings.tz), rollups.deadlines(settings)
    now = as_utc(now) if now else utcnow()
    area = resolve_region(user, region)
    date_from, date_to = period(date_from, date_to, now.astimezone(tz).date())
    group_by = group_by or default_grouping(area)
    start, end = figures.day_start(date_from, tz), figures.day_start(date_to + dt.timedelta(days=1), tz)

    cells, source = _cells(area, group_by, date_from, date_to, start, end, tz, deadlines, now)
    sums: dict = defaultdict(figures.new_settled)
    for cell in cells:
        for category, counters in cell["by_category"].items():
            figures.add_settled(sums[_cell_group(cell, category, group_by)], counters)
    totals = figures.new_settled()
    for group in sums.values():  # every cell's category counts in exactly one group
        figures.add_settled(totals, group)

    names = _group_names(area, group_by, date_from, date_to)
    for key in sums:
        if key not in names:
            names[key] = _fallback_name(group_by, key)
    rows = [{"group": key, "name": name, **figures.row(sums.get(key) or figures.new_settled()), "rank": None}
            for key, name in names.items()]
    min_issues = settings.stats_min_issues_for_rank
    rows, excluded = _ranked(rows, rank, min_issues)
    return {
        "region": {"code": area.code, "name": area.name, "kind": area.kind},
        "date_from": date_from, "date_to": date_to, "time_zone": settings.tz,
        "response_deadline_days": settings.response_deadline_days,
        "group_by": group_by, "rank": rank, "min_issues": min_issues, "excluded": excluded,
        "rows": rows,
        "totals": {"group": None, "name": "合计", **figures.row(totals), "rank": None},
        "generated_at": now,
        "rollup": source,
    }


def _cells(area, group_by, date_from, date_to, start, end, tz, deadlines, now):
    """The cells of the region and period, current to this instant and settled at `now` (see
    `cells.settle`), and where they came from: the stored cells that answer the question, with
    every studio cell holding an issue written since the rollups' watermark recomputed from its
    issues and the region cells over those re-summed."""
    now_ms = figures.epoch_ms(now)
    current = rollups.state()
    if current is None or current["fingerprint"] != rollups.fingerprint(config.settings()):
        built = rollups.live(area.code, start, end, tz, deadlines)
        source = {"as_of": None, "cells": len(built), "recomputed_cells": len(built)}
        return [_settled(cell, now_ms) for cell in built.values()], source
    scope = periods.scope(area.code, area.tier, group_by)
    # grouped by month, a year is read as its months
    ranges = periods.periods(date_from, date_to, now.astimezone(tz).date(),
                             years=scope[0] == "region" and group_by != "month")
    by_category = group_by == "category"
    found = rollups.stored(scope, ranges, by_category)

    touched = rollups.written_since(current["watermark"], tz, area.code, date_from.isoformat(), date_to.isoformat())
    fresh = rollups.recompute(touched, tz, deadlines)
    overrides = {("day", day, studio): cell for (day, studio), cell in fresh.items()
                 if periods.covering(ranges, day) == "day"}
    months = {(day[:7], studio) for day, studio in fresh if periods.covering(ranges, day) != "day"}
    overrides.update({("month", month, studio): cell for (month, studio), cell in rollups.resum(months, fresh).items()})
    if scope[0] == "studio":
        replaced = {rollups.cell_id(period, studio): cell for (_, period, studio), cell in overrides.items()}
    else:
        paths = rollups.studio_paths({studio for _, _, studio in overrides})
        targets = {(grain, period, code) for grain, period, studio in overrides
                   if (code := periods.scope_code(scope, paths.get(studio, []))) is not None}
        regions = rollups.resum_regions(targets, overrides)
        # months inside a whole year are read through their year cell
        in_years = {key: cell for key, cell in regions.items()
                    if key.startswith("month:") and periods.covering(ranges, key.split(":")[1]) == "year"}
        years = rollups.resum_years({(key.split(":")[1][:4], key.split(":")[2]) for key in in_years}, in_years)
        replaced = {key: cell for key, cell in regions.items() if key not in in_years} | years
    for key, cell in replaced.items():
        if cell is None:
            found.pop(key, None)
        else:
            found[key] = cell
    cells = [_settled(cell, now_ms, by_category) for cell in found.values()]
    return cells, {"as_of": as_utc(current["watermark"]), "cells": len(cells), "recomputed_cells": len(fresh)}


def _settled(cell: dict, now_ms: int, by_category: bool = True) -> dict:
    """The cell with the clock applied: per category, or its total as one pseudo-category."""
    if not by_category:
        return {**cell, "by_category": {None: figures.settle(cell["total"], now_ms)}}
    return {**cell, "by_category": {category: figures.settle(counters, now_ms)
                                    for category, counters in cell["by_category"].items()}}


def _cell_group(cell: dict, category: str, group_by: str):
    if group_by == "township":
        return cell.get("township_code")
    if group_by == "studio":
        return str(cell["studio_id"])
    if group_by == "category":
        return category
    return (cell.get("month") or cell.get("day") or cell["period"])[:7]


def _group_names(area: Region, group_by: str, date_from: dt.date, date_to: dt.date) -> dict:
    """Every group of the region in its natural order, named as people know it (inactive studios
    are listed only when they have issues, through `_fallback_name`)."""
    if group_by == "township":
        if area.tier == "district":
            townships = Region.objects(parent_code=area.code, kind__in=("town", "street")).order_by("code")
        elif area.tier == "township":
            townships = [area]
        else:
            townships = Region.objects(code=area.parent_code)
        return {t.code: t.name for t in townships}
    if group_by == "studio":
        studios = Studio.objects(region_path=area.code, active=True).order_by("region_code", "name").only("id", "name")
        return {str(s.id): s.name for s in studios}
    if group_by == "category":
        return {c: CATEGORY_NAMES[c] for c in CATEGORIES}
    names, month = {}, date_from.replace(day=1)
    while month <= date_to:
        names[month.strftime("%Y-%m")] = f"{month.year}年{month.month}月"
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return names


def _fallback_name(group_by: str, key) -> str:
    if key is None:
        return "未知"
    if group_by == "township":
        region = Region.objects(code=key).only("name").first()
        return region.name if region else key
    if group_by == "studio":
        studio = Studio.objects(id=key).only("name").first()
        return studio.name if studio else key
    return CATEGORY_NAMES.get(key, key) if group_by == "category" else key


def _exact(row: dict, rate: str) -> Fraction | None:
    numerator, denominator = figures.RATES[rate]
    top = row["satisfied"] + row["basically_satisfied"] if numerator == "satisfied_total" else row[numerator]
    return None if row[denominator] == 0 else Fraction(top, row[denominator])


def _ranked(rows: list[dict], rank: str | None, min_issues: int) -> tuple[list[dict], list[dict]]:
    """Best first by the exact rate (ties share a place); too-small groups are set aside and named."""
    if not rank:
        return rows, []
    excluded = [{"group": r["group"], "name": r["name"], "received": r["received"]}
                for r in rows if r["received"] < min_issues]
    kept = [r for r in rows if r["received"] >= min_issues]
    rated = sorted((r for r in kept if _exact(r, rank) is not None),
                   key=lambda r: (-_exact(r, rank), -r["received"]))
    place, previous = 0, None
    for position, r in enumerate(rated, start=1):
        if _exact(r, rank) != previous:
            place, previous = position, _exact(r, rank)
        r["rank"] = place
    return rated + [r for r in kept if _exact(r, rank) is None], excluded
