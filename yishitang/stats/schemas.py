import marshmallow as ma
from marshmallow import validate

from ..fields import CODE, LocalDateTime
from .service import GROUPINGS, RATE_NAMES


class StatsQuerySchema(ma.Schema):
    region = ma.fields.String(validate=CODE, metadata={
        "description": "region code (its whole subtree); default: a coordinator's scope, an admin's district"})
    date_from = ma.fields.Date(data_key="from", metadata={
        "description": "first creation date counted (inclusive, local date); default 1 January of `to`'s year"})
    date_to = ma.fields.Date(data_key="to", metadata={
        "description": "last creation date counted (inclusive, local date); default today"})
    group_by = ma.fields.String(validate=validate.OneOf(GROUPINGS), metadata={
        "description": "rows per township, studio, category or month; default township for a district, "
                       "studio below"})
    rank = ma.fields.String(validate=validate.OneOf(RATE_NAMES), metadata={
        "description": "order rows by this rate, best first; groups with fewer than `min_issues` issues "
                       "are left out and listed under `excluded`"})


def _rate(label: str, numerator: str, denominator: str):
    return ma.fields.Float(allow_none=True, metadata={
        "description": f"{label}: `{numerator}` / `{denominator}`, a fraction 0..1 rounded to 4 decimals; "
                       "null when the denominator is 0"})


def _count(text: str):
    return ma.fields.Integer(metadata={"description": text})


class StatsRowSchema(ma.Schema):
    group = ma.fields.String(allow_none=True, metadata={
        "description": "township code, studio id, category or YYYY-MM; null for the totals"})
    name = ma.fields.String(metadata={"description": "what people call the group (合计 for the totals)"})
    rank = ma.fields.Integer(allow_none=True, metadata={
        "description": "place by the `rank` rate (equal rates share a place); null when not ranked or the rate is null"})
    received = _count("收到议题: issues created in the period")
    response_rate = _rate("答复率", "responded_in_time", "response_base")
    meeting_rate = _rate("见面率", "met", "accepted")
    closure_rate = _rate("办结率", "closed", "accepted")
    satisfaction_rate = _rate("满意率", "satisfied + basically_satisfied", "rated")
    median_days_to_close = ma.fields.Float(allow_none=True, metadata={
        "description": "办结天数中位数: median of closed_at − created_at over the `closed` issues, in days, "
                       "rounded half up to 1 decimal; null when none closed"})
    overdue_open = _count("超期未办结: open issues past their deadline at `generated_at`")
    escalated = _count("上报: issues escalated at least once (each once, in its own studio's region)")
    supervised = _count("督办: issues under supervision")
    responded_in_time = _count("accepted or rejected within the response deadline of their creation")
    response_base = _count("responded_in_time + answered late + unanswered past the deadline")
    response_pending = _count("unanswered, still inside the response deadline: not counted yet")
    withdrawn_before_response = _count("withdrawn before any answer: left out of the response rate")
    duplicate_before_response = _count("merged as a duplicate before any answer: left out of the response rate")
    accepted = _count("accepted (`accepted_at` set), duplicates excluded")
    met = _count("accepted issues with a first face-to-face contact (visit or held session)")
    closed = _count("accepted issues now `closed` (duplicates are not closures)")
    rated = _count("issues the reporter rated at least once")
    satisfied = _count("latest rating satisfied")
    basically_satisfied = _count("latest rating basically_satisfied")
    unsatisfied = _count("latest rating unsatisfied (kept when the issue is resolved again)")


class RegionRefSchema(ma.Schema):
    code = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String()


class ExcludedGroupSchema(ma.Schema):
    group = ma.fields.String(allow_none=True)
    name = ma.fields.String()
    received = ma.fields.Integer()


class RollupInfoSchema(ma.Schema):
    as_of = LocalDateTime(allow_none=True, metadata={
        "description": "watermark of the stored daily rollups; null: computed from the issues directly"})
    cells = ma.fields.Integer(metadata={"description": "day-and-studio cells merged"})
    recomputed_cells = ma.fields.Integer(metadata={"description": "cells recomputed from issues written since `as_of`"})


class OverviewSchema(ma.Schema):
    region = ma.fields.Nested(RegionRefSchema)
    date_from = ma.fields.Date(data_key="from")
    date_to = ma.fields.Date(data_key="to")
    time_zone = ma.fields.String(metadata={"description": "creation dates and months are taken in this zone"})
    response_deadline_days = ma.fields.Integer(metadata={"description": "default response deadline (categories may override)"})
    group_by = ma.fields.String()
    rank = ma.fields.String(allow_none=True)
    min_issues = ma.fields.Integer(metadata={"description": "fewest issues a group needs to be ranked"})
    excluded = ma.fields.List(ma.fields.Nested(ExcludedGroupSchema), metadata={
        "description": "groups left out of the ranking for having fewer than `min_issues` issues"})
    rows = ma.fields.List(ma.fields.Nested(StatsRowSchema), metadata={
        "description": "every group of the region (also those with no issues), in natural order or ranked"})
    totals = ma.fields.Nested(StatsRowSchema)
    generated_at = LocalDateTime()
    rollup = ma.fields.Nested(RollupInfoSchema)
