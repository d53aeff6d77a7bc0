"""Consultation sessions (民生议事堂): who meets when and where, who signed in, what was decided."""

import mongoengine as me

from ..db import BaseDocument, Record

FORMATS = ("in_person", "online", "hybrid")
FORMAT_NAMES = {"in_person": "线下", "online": "线上", "hybrid": "线上线下结合"}
# planned -> held (someone signed in) -> minuted; planned -> cancelled. Minutes may also follow
# straight from planned: signing in is a convenience, not proof that a session took place.
STATUSES = ("planned", "held", "minuted", "cancelled")
STATUS_NAMES = {"planned": "待召开", "held": "已召开", "minuted": "已形成纪要", "cancelled": "已取消"}


class Checkin(me.EmbeddedDocument):
    user_id = me.ObjectIdField(required=True)
    at = me.DateTimeField(required=True)


class Outcome(me.EmbeddedDocument):
    issue_id = me.ObjectIdField(required=True)
    decision = me.StringField(required=True)
    owner_unit = me.StringField()
    due_at = me.DateTimeField()
    resolved = me.BooleanField(required=True)


class Minutes(me.EmbeddedDocument):
    summary = me.StringField(required=True)
    attendees_count = me.IntField(required=True)
    outcomes = me.EmbeddedDocumentListField(Outcome)
    recorded_by = me.ObjectIdField(required=True)
    recorded_at = me.DateTimeField(required=True)


class Consultation(BaseDocument):
    meta = {
        "collection": "consultations",
        "indexes": [
            # Lists sort by (starts_at, _id); each kind of list has its index in that order.
            {"fields": ["access_keys", "-starts_at", "-id"]},
            {"fields": ["studio_id", "-starts_at", "-id"]},  # also the overlap check
            {"fields": ["region_path", "-starts_at", "-id"]},
            {"fields": ["-starts_at", "-id"]},
            {"fields": ["status", "starts_at"]},  # reminders
        ],
    }

    studio_id = me.ObjectIdField(required=True)
    region_code = me.StringField(required=True)
    region_path = me.ListField(me.StringField())
    topic = me.StringField(required=True)
    description = me.StringField(default="")
    starts_at = me.DateTimeField(required=True)
    ends_at = me.DateTimeField(required=True)
    location = me.StringField(required=True)
    format = me.StringField(required=True, choices=FORMATS)
    host_member_id = me.ObjectIdField(required=True)
    member_ids = me.ListField(me.ObjectIdField())
    invitee_ids = me.ListField(me.ObjectIdField())
    issue_ids = me.ListField(me.ObjectIdField())
    # Derived: reporters of the linked issues; they may see and attend the session.
    reporter_ids = me.ListField(me.ObjectIdField())
    # Derived: who may see the session, as keys matched against the viewer's own keys
    # ("region:<code>" for the studio's region path, "studio:<id>", "user:<id>" for participants);
    # one multikey index then serves every non-admin list.
    access_keys = me.ListField(me.StringField())
    capacity = me.IntField(required=True)
    status = me.StringField(default="planned", choices=STATUSES)
    checkins = me.EmbeddedDocumentListField(Checkin)
    checkins_count = me.IntField(default=0)
    minutes = me.EmbeddedDocumentField(Minutes)
    minutes_history = me.EmbeddedDocumentListField(Minutes)  # earlier versions, oldest first
    minuted_at = me.DateTimeField()  # first minutes: the correction window runs from here
    cancelled_at = me.DateTimeField()
    cancel_reason = me.StringField()
    created_by = me.ObjectIdField(required=True)
    version = me.IntField(default=1)  # the ETag; bumped by edits, cancel and minutes, not by check-ins


class StudioCalendar(Record):
    """One per studio; every booking bumps it inside its transaction, so two overlapping
    bookings made at the same moment write-conflict and the second one sees the first."""

    meta = {"collection": "consultation_calendars"}
    id = me.ObjectIdField(primary_key=True)  # the studio's id
    seq = me.IntField(default=0)
