"""Which cells answer a question: the area's cells (`scope`) and a period cut into the fewest
cells (`periods`: whole years, whole months, the days at the ends)."""

from __future__ import annotations

import datetime as dt

REGION_DEPTH = 2  # region cells for the district and the township of a studio's path


def scope(area_code: str, area_tier: str, group_by: str) -> tuple[str, dict]:
    """Which cells answer a question: ("studio" | "region", the match on them)."""
    if group_by == "studio" or area_tier == "grassroots":
        return "studio", {"region_path": area_code}
    if group_by == "township" and area_tier == "district":
        return "region", {"parent_code": area_code}
    return "region", {"region_code": area_code}


def scope_code(scope_: tuple[str, dict], path: list[str]) -> str | None:
    """The region cell of `scope_` a studio on `path` sums into."""
    match = scope_[1]
    if "region_code" in match:
        return match["region_code"] if match["region_code"] in path else None
    parent = match["parent_code"]
    depth = path.index(parent) + 1 if parent in path else len(path)
    return path[depth] if depth < min(len(path), REGION_DEPTH) else None


def periods(date_from: dt.date, date_to: dt.date, today: dt.date,
            years: bool = True) -> list[tuple[str, str, str]]:
    """The period as (grain, first, last) ranges of the fewest cells: whole years (with `years`),
    whole months, and the days at the ends. A period running to today or later is read to the end
    of today's month, or year when that makes it whole: nothing is created after now."""
    if date_to >= today:
        whole_year = years and date_from <= dt.date(today.year, 1, 1)
        date_to = max(date_to, dt.date(today.year, 12, 31) if whole_year else _next_month(today) - dt.timedelta(days=1))
    parts, ranges = [(date_from, date_to)], []
    first_year = date_from.year + (date_from != dt.date(date_from.year, 1, 1))
    last_year = date_to.year - (date_to != dt.date(date_to.year, 12, 31))
    if years and first_year <= last_year:
        ranges.append(("year", str(first_year), str(last_year)))
        parts = [(date_from, dt.date(first_year, 1, 1) - dt.timedelta(days=1)), (dt.date(last_year + 1, 1, 1), date_to)]
    for first, last in parts:
        if first > last:
            continue
        whole, edges = split(first, last)
        ranges += [("month", *whole)] if whole else []
        ranges += [("day", *edge) for edge in edges]
    return ranges


def covering(ranges: list[tuple[str, str, str]], day: str) -> str | None:
    """The grain of the range that reads `day`'s issues."""
    for grain, first, last in ranges:
        if first <= day[:len(first)] <= last:
            return grain
    return None


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
