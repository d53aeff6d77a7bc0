"""Rollup cells of the issue figures (per studio and day, and per studio and month), and the
job's watermark.

A day cell holds the counters of every issue created on one day (in the configured time zone) at
one studio, per category; it is recomputed whole from those issues, never incremented, so it is
always the exact tally of its issues as they were when `computed_at` was taken. A month cell is
the sum of the studio's day cells of that month, recomputed whole from them. A region cell is the
sum of the studio cells of a district or township for a day or month, recomputed whole from them.
"""

import mongoengine as me

from ..db import Record


class RollupCell(Record):
    meta = {
        "collection": "stats_cells",
        "indexes": [
            # A region's cells over a period: equality on one path code, a range of days.
            {"fields": ["region_path", "day"]},
            {"fields": ["studio_id", "day"]},  # a studio's days of one month, to sum them
            {"fields": ["next_due"]},  # cells whose earliest listed deadline has passed: compact them
        ],
    }

    id = me.StringField(primary_key=True)  # "<day>:<studio_id>"
    day = me.StringField(required=True)  # YYYY-MM-DD, local date of the issues' creation
    studio_id = me.ObjectIdField(required=True)
    region_code = me.StringField()
    region_path = me.ListField(me.StringField())
    township_code = me.StringField()
    # category -> counters (see `cells.COUNTERS`), due lists and close steps
    by_category = me.DictField()
    next_due = me.LongField()  # epoch ms of the earliest listed due instant (see `cells.compact`)
    computed_at = me.DateTimeField(required=True)


class MonthCell(Record):
    """The sum of a studio's day cells of one month: a year is read as twelve cells per studio."""

    meta = {
        "collection": "stats_month_cells",
        "indexes": [{"fields": ["region_path", "month"]}],
    }

    id = me.StringField(primary_key=True)  # "<month>:<studio_id>"
    month = me.StringField(required=True)  # YYYY-MM
    studio_id = me.ObjectIdField(required=True)
    region_code = me.StringField()
    region_path = me.ListField(me.StringField())
    township_code = me.StringField()
    by_category = me.DictField()
    computed_at = me.DateTimeField(required=True)


class RegionCell(Record):
    """The sum of the studio cells of one district or township for a day, a month or a year: a
    district's year by township is read as 16 cells, whatever its number of studios or issues."""

    meta = {
        "collection": "stats_region_cells",
        "indexes": [
            {"fields": ["region_code", "grain", "period"]},  # a region's own cells over a period
            {"fields": ["parent_code", "grain", "period"]},  # a district's townships over a period
        ],
    }

    id = me.StringField(primary_key=True)  # "<grain>:<period>:<region_code>"
    grain = me.StringField(required=True, choices=("day", "month", "year"))
    period = me.StringField(required=True)  # YYYY-MM-DD, YYYY-MM or YYYY
    region_code = me.StringField(required=True)
    parent_code = me.StringField()
    township_code = me.StringField()  # the region itself when it is a township
    by_category = me.DictField()
    computed_at = me.DateTimeField(required=True)


class RegionTotal(Record):
    """A region cell's counters over all categories, stored apart: a question not asked by
    category reads these small documents and never the per-category ones."""

    meta = {
        "collection": "stats_region_totals",
        "indexes": [
            {"fields": ["region_code", "grain", "period"]},
            {"fields": ["parent_code", "grain", "period"]},
        ],
    }

    id = me.StringField(primary_key=True)  # the region cell's id
    grain = me.StringField(required=True, choices=("day", "month", "year"))
    period = me.StringField(required=True)
    region_code = me.StringField(required=True)
    parent_code = me.StringField()
    township_code = me.StringField()
    total = me.DictField()
    computed_at = me.DateTimeField(required=True)


class RollupState(Record):
    """One document: up to when the cells are known to be current, and under which definitions."""

    meta = {"collection": "stats_state"}

    id = me.StringField(primary_key=True)  # "rollups"
    # Every issue written after this instant is recomputed at request time.
    watermark = me.DateTimeField(required=True)
    fingerprint = me.StringField(required=True)  # time zone + response deadline the cells assume
    refreshed_at = me.DateTimeField()
