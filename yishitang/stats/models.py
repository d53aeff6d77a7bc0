"""Rollup cells of the issue figures (per studio and day, and per studio and month), and the
job's watermark.

A day cell holds the counters of every issue created on one day (in the configured time zone) at
one studio, per category; it is recomputed whole from those issues, never incremented, so it is
always the exact tally of its issues as they were when `computed_at` was taken. A month cell is
the sum of the studio's day cells of that month, recomputed whole from them.
"""

import mongoengine as me


class RollupCell(me.Document):
    meta = {
        "collection": "stats_cells",
        "auto_create_index": False,
        "indexes": [
            # A region's cells over a period: equality on one path code, a range of days.
            {"fields": ["region_path", "day"]},
            {"fields": ["studio_id", "day"]},  # a studio's days of one month, to sum them
        ],
    }

    id = me.StringField(primary_key=True)  # "<day>:<studio_id>"
    day = me.StringField(required=True)  # YYYY-MM-DD, local date of the issues' creation
    studio_id = me.ObjectIdField(required=True)
    region_code = me.StringField()
    region_path = me.ListField(me.StringField())
    township_code = me.StringField()
    # category -> counters (see `cells.COUNTERS`) plus `unanswered_at` and `close_ms` lists.
    by_category = me.DictField()
    computed_at = me.DateTimeField(required=True)


class MonthCell(me.Document):
    """The sum of a studio's day cells of one month: a year is read as twelve cells per studio."""

    meta = {
        "collection": "stats_month_cells",
        "auto_create_index": False,
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


class RollupState(me.Document):
    """One document: up to when the cells are known to be current, and under which definitions."""

    meta = {"collection": "stats_state", "auto_create_index": False}

    id = me.StringField(primary_key=True)  # "rollups"
    # Every issue written after this instant is recomputed at request time.
    watermark = me.DateTimeField(required=True)
    fingerprint = me.StringField(required=True)  # time zone + response deadline the cells assume
    refreshed_at = me.DateTimeField()
