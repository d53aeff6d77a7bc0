import datetime as dt
from zoneinfo import ZoneInfo

import marshmallow as ma
from marshmallow import validate
from webargs.fields import DelimitedList

from .. import config
from ..fields import CODE, OBJECT_ID, LocalDateTime, StudioRecordSchema
from .models import FORMATS, STATUSES

TIME_ERRORS = {"invalid": "时间格式应为 ISO 8601，例如 2026-12-01T19:00:00+08:00",
               "invalid_awareness": "时间须带时区，例如 2026-12-01T19:00:00+08:00"}


class Instant(ma.fields.AwareDateTime):
    """ISO 8601 with an offset, as a UTC instant at the database's millisecond precision."""

    def __init__(self, **kwargs):
        kwargs.setdefault("error_messages", TIME_ERRORS)
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs).astimezone(dt.timezone.utc)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)


class DayOrInstant(ma.fields.String):
    """A query bound: a date (the day's start in Asia/Shanghai) or an ISO 8601 time with offset."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                return dt.datetime.combine(day, dt.time(), ZoneInfo(config.settings().tz)).astimezone(dt.timezone.utc)
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ma.ValidationError("应为日期（2026-12-01）或带时区的时间（2026-12-01T19:00:00+08:00）") from None
        if moment.tzinfo is None:
            raise ma.ValidationError(TIME_ERRORS["invalid_awareness"])
        return moment.astimezone(dt.timezone.utc)


ids = dict(validate=validate.Length(max=200))


class ConsultationCreateSchema(ma.Schema):
    studio_id = ma.fields.String(required=True, validate=OBJECT_ID)
    topic = ma.fields.String(required=True, validate=validate.Length(2, 60))
    description = ma.fields.String(load_default="", validate=validate.Length(max=2000))
    starts_at = Instant(required=True, metadata={"description": "ISO 8601 with offset; stored in UTC"})
    ends_at = Instant(required=True, metadata={"description": "after starts_at, at most 12 h later"})
    location = ma.fields.String(required=True, validate=validate.Length(1, 100),
                                metadata={"description": "the room, or the meeting link or number when online"})
    format = ma.fields.String(load_default="in_person", validate=validate.OneOf(FORMATS))
    host_member_id = ma.fields.String(validate=OBJECT_ID, metadata={
        "description": "a member of the studio; defaults to the caller when the caller is one"})
    member_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), load_default=list,
                                validate=validate.Length(max=50), metadata={"description": "other members taking part"})
    invitee_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), load_default=list, **ids,
                                 metadata={"description": "residents, unit representatives: any active user"})
    capacity = ma.fields.Integer(required=True, validate=validate.Range(1, 2000),
                                 metadata={"description": "most people who may sign in"})
    issue_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), load_default=list, validate=validate.Length(max=20),
                               metadata={"description": "accepted issues of the studio; they move to `scheduled`"})


class ConsultationPatchSchema(ma.Schema):
    topic = ma.fields.String(validate=validate.Length(2, 60))
    description = ma.fields.String(validate=validate.Length(max=2000))
    starts_at = Instant()
    ends_at = Instant()
    location = ma.fields.String(validate=validate.Length(1, 100))
    format = ma.fields.String(validate=validate.OneOf(FORMATS))
    host_member_id = ma.fields.String(validate=OBJECT_ID)
    member_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), validate=validate.Length(max=50))
    invitee_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), **ids)
    capacity = ma.fields.Integer(validate=validate.Range(1, 2000))
    issue_ids = ma.fields.List(ma.fields.String(validate=OBJECT_ID), validate=validate.Length(max=20),
                               metadata={"description": "the whole new list: added issues are scheduled, removed ones go back to `accepted`"})

    @ma.validates_schema
    def not_empty(self, data, **kwargs):
        if not data:
            raise ma.ValidationError("请至少修改一项", "_schema")


class CancelSchema(ma.Schema):
    reason = ma.fields.String(load_default="", validate=validate.Length(max=200),
                              metadata={"description": "told to everyone concerned and noted on the linked issues"})


class CheckinCreateSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=validate.Length(1, 64), metadata={"description": "from the QR code"})


class OutcomeInSchema(ma.Schema):
    issue_id = ma.fields.String(required=True, validate=OBJECT_ID)
    decision = ma.fields.String(required=True, validate=validate.Length(1, 1000))
    owner_unit = ma.fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 60),
                                  metadata={"description": "the unit that handles (or handled) it, e.g. 交警大队"})
    due_at = Instant(load_default=None, allow_none=True, metadata={"description": "deadline when not resolved"})
    resolved = ma.fields.Boolean(required=True)


class MinutesInSchema(ma.Schema):
    summary = ma.fields.String(required=True, validate=validate.Length(1, 5000))
    attendees_count = ma.fields.Integer(validate=validate.Range(0, 100000), metadata={
        "description": "defaults to the number who signed in (first minutes) or the previous value"})
    outcomes = ma.fields.List(ma.fields.Nested(OutcomeInSchema), required=True, validate=validate.Length(max=20),
                              metadata={"description": "exactly one per linked issue"})


class ConsultationQuerySchema(ma.Schema):
    studio = ma.fields.String(validate=OBJECT_ID)
    region = ma.fields.String(validate=CODE, metadata={"description": "any ancestor region of the studio"})
    start = DayOrInstant(data_key="from", metadata={"description": "starting at or after (date or time)"})
    end = DayOrInstant(data_key="to", metadata={"description": "starting before (date or time)"})
    status = DelimitedList(ma.fields.String(validate=validate.OneOf(STATUSES)), metadata={"description": "comma list"})
    order = ma.fields.String(load_default="desc", validate=validate.OneOf(("desc", "asc")),
                             metadata={"description": "desc: latest start first (default); asc: soonest first"})


class PersonSchema(ma.Schema):
    id = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)


class CheckinSchema(ma.Schema):
    user_id = ma.fields.String()
    at = LocalDateTime()


class OutcomeSchema(ma.Schema):
    issue_id = ma.fields.String()
    decision = ma.fields.String()
    owner_unit = ma.fields.String(allow_none=True)
    due_at = LocalDateTime(allow_none=True)
    resolved = ma.fields.Boolean()


class MinutesSchema(ma.Schema):
    summary = ma.fields.String()
    attendees_count = ma.fields.Integer()
    outcomes = ma.fields.List(ma.fields.Nested(OutcomeSchema))
    recorded_by = ma.fields.String(allow_none=True, metadata={"description": "staff only"})
    recorded_at = LocalDateTime()


class ConsultationSchema(StudioRecordSchema):
    topic = ma.fields.String()
    description = ma.fields.String()
    starts_at = LocalDateTime(metadata={"description": "in Asia/Shanghai, e.g. 2026-12-01T19:00:00+08:00"})
    ends_at = LocalDateTime()
    location = ma.fields.String()
    format = ma.fields.String(metadata={"description": "in_person | online | hybrid"})
    host_member_id = ma.fields.String()
    host = ma.fields.Nested(PersonSchema)
    member_ids = ma.fields.List(ma.fields.String())
    members = ma.fields.List(ma.fields.Nested(PersonSchema))
    invitee_ids = ma.fields.List(ma.fields.String(), allow_none=True, metadata={"description": "null for residents"})
    issue_ids = ma.fields.List(ma.fields.String())
    capacity = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "planned | held | minuted | cancelled"})
    checkins = ma.fields.List(ma.fields.Nested(CheckinSchema), allow_none=True, metadata={"description": "null for residents"})
    checkins_count = ma.fields.Integer()
    checked_in = ma.fields.Boolean(metadata={"description": "the caller has signed in"})
    minutes = ma.fields.Nested(MinutesSchema, allow_none=True)
    minutes_history = ma.fields.List(ma.fields.Nested(MinutesSchema), allow_none=True,
                                     metadata={"description": "earlier versions, oldest first; null for residents"})
    cancelled_at = LocalDateTime(allow_none=True)
    cancel_reason = ma.fields.String(allow_none=True)
    created_by = ma.fields.String(allow_none=True)
    created_at = LocalDateTime()
    updated_at = LocalDateTime()
    version = ma.fields.Integer(metadata={"description": "also sent as the ETag"})
    allowed_actions = ma.fields.List(ma.fields.String(), metadata={"description": (
        "what the caller may do now, from the state table and its clock: edit, cancel, check_in (with the "
        "code shown in the room), minute, correct")})


class CheckinCodeSchema(ma.Schema):
    code = ma.fields.String(metadata={"description": "show as a QR code; a new one every minute"})
    expires_at = LocalDateTime(metadata={"description": "accepted until then (5 minutes)"})
    refresh_at = LocalDateTime(metadata={"description": "when the next code is due"})


class CheckinResultSchema(ma.Schema):
    consultation_id = ma.fields.String()
    user_id = ma.fields.String()
    at = LocalDateTime()
    checkins_count = ma.fields.Integer()
