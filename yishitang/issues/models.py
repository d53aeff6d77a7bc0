"""Livelihood issues (民生议题), their supporters (附议) and the issue number counter."""

import mongoengine as me

from ..db import BaseDocument, Record
from .workflow import LEVELS, STATUSES

CATEGORIES = ("community_facilities", "traffic", "education", "elderly_care", "environment",
              "safety", "health", "employment", "other")
CATEGORY_NAMES = {
    "community_facilities": "社区设施", "traffic": "交通出行", "education": "教育", "elderly_care": "养老服务",
    "environment": "环境卫生", "safety": "公共安全", "health": "医疗卫生", "employment": "就业创业", "other": "其他",
}


class Actor(me.EmbeddedDocument):
    id = me.ObjectIdField()
    role = me.StringField()
    display_name = me.StringField()


class TimelineEntry(me.EmbeddedDocument):
    at = me.DateTimeField(required=True)
    actor = me.EmbeddedDocumentField(Actor)
    action = me.StringField(required=True)
    from_status = me.StringField()
    to_status = me.StringField()
    level = me.StringField()
    note = me.StringField()
    visit = me.BooleanField()
    consultation_id = me.ObjectIdField()
    held = me.BooleanField()  # a resident's note held for review: not shown to the public


class Resolution(me.EmbeddedDocument):
    summary = me.StringField()
    owner_unit = me.StringField()
    resolved_at = me.DateTimeField()
    evidence = me.ListField(me.ObjectIdField())


class Feedback(me.EmbeddedDocument):
    rating = me.StringField()
    comment = me.StringField()
    at = me.DateTimeField()


class Issue(BaseDocument):
    meta = {
        "collection": "issues",
        "indexes": [
            {"fields": ["number"], "unique": True},
            # Lists sort newest first by (created_at, _id); each scope has an index in that order.
            {"fields": ["reporter_id", "-created_at", "-id"]},
            {"fields": ["studio_id", "on_board", "-created_at", "-id"]},
            {"fields": ["studio_id", "-created_at", "-id"]},
            {"fields": ["region_path", "-created_at", "-id"]},
            {"fields": ["-created_at", "-id"]},
            {"fields": ["search_terms"]},
            {"fields": ["status", "due_at"]},  # deadline sweeps
            {"fields": ["updated_at"]},  # stats: issues written since the rollups' watermark
            {"fields": ["status", "resolution.resolved_at"]},  # auto-close sweep
            # Explicit version: re-creating the index at start then matches the stored one exactly.
            {"fields": [("location", "2dsphere")], "2dsphereIndexVersion": 3},
        ],
    }

    number = me.StringField(required=True)
    title = me.StringField(required=True)
    description = me.StringField(required=True)
    category = me.StringField(required=True, choices=CATEGORIES)
    studio_id = me.ObjectIdField(required=True)
    region_code = me.StringField(required=True)
    township_code = me.StringField()
    district_code = me.StringField()
    region_path = me.ListField(me.StringField())
    level = me.StringField(default="grassroots", choices=LEVELS)
    status = me.StringField(default="submitted", choices=STATUSES)
    reporter_id = me.ObjectIdField(required=True)
    reporter_name = me.StringField()
    anonymous = me.BooleanField(default=False)
    contact_phone = me.StringField()
    location = me.PointField()
    address = me.StringField()
    attachments = me.ListField(me.ObjectIdField())
    supporters_count = me.IntField(default=0)
    due_at = me.DateTimeField()
    supervised = me.BooleanField(default=False)
    consultation_id = me.ObjectIdField()
    owner_unit = me.StringField()  # the unit a consultation handed the issue to, until resolved
    resolution = me.EmbeddedDocumentField(Resolution)
    feedback = me.EmbeddedDocumentField(Feedback)
    timeline = me.EmbeddedDocumentListField(TimelineEntry)
    accepted_at = me.DateTimeField()
    first_response_at = me.DateTimeField()
    closed_at = me.DateTimeField()
    withdrawn_at = me.DateTimeField()
    reopened_count = me.IntField(default=0)
    escalated_count = me.IntField(default=0)
    visits_count = me.IntField(default=0)
    # First face-to-face contact: a recorded visit or a held consultation session (见面率).
    met_at = me.DateTimeField()
    duplicate_of = me.ObjectIdField()
    # "pass", or "review" while WeChat's text check (or its outage) holds it off the public board.
    moderation = me.StringField(default="pass")
    overdue_warned_for = me.DateTimeField()  # the deadline staff were warned about: warn once per deadline
    on_board = me.BooleanField(default=True)  # derived: shown on the studio's public board
    search_terms = me.ListField(me.StringField())  # n-grams of the text, for `q` on an index
    version = me.IntField(default=1)


class Support(Record):
    meta = {
        "collection": "supports",
        "indexes": [{"fields": ["issue_id", "user_id"], "unique": True}, {"fields": ["user_id"]}],
    }

    issue_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    created_at = me.DateTimeField(required=True)


class Counter(Record):
    """Sequences for human-readable numbers, e.g. issue-2026 -> 123 -> DW-2026-000123."""

    meta = {"collection": "counters"}
    id = me.StringField(primary_key=True)
    seq = me.IntField(default=0)
