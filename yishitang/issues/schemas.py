import marshmallow as ma
from marshmallow import validate
from webargs.fields import DelimitedList

from ..fields import CODE, OBJECT_ID, PHONE, LocalDateTime, LocationSchema, StudioRecordSchema
from ..files.schemas import AttachmentSchema
from .models import CATEGORIES
from .workflow import CLIENT_ACTIONS, LEVELS, RATINGS, STATUSES


class IssueCreateSchema(ma.Schema):
    title = ma.fields.String(required=True, validate=validate.Length(2, 40))
    description = ma.fields.String(required=True, validate=validate.Length(5, 2000))
    category = ma.fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    studio_id = ma.fields.String(required=True, validate=OBJECT_ID)
    location = ma.fields.Nested(LocationSchema, load_default=None)
    address = ma.fields.String(load_default="", validate=validate.Length(max=200))
    anonymous = ma.fields.Boolean(load_default=False, metadata={"description": "shown as 匿名居民 on the public board"})
    contact_phone = ma.fields.String(load_default=None, validate=PHONE,
                                     metadata={"description": "seen only by the reporter and the staff responsible; defaults to the account's phone"})
    attachments = ma.fields.List(ma.fields.String(validate=OBJECT_ID), load_default=list, validate=validate.Length(max=9),
                                 metadata={"description": "ids from POST /files"})


class Shaped(ma.Schema):
    """A response the service has already shaped into JSON types (`issues.presenters.view`): the
    schema documents it in OpenAPI and is not run again (the fuzz tests check the two agree)."""

    def dump(self, obj, *, many=None):
        return obj


class ActorSchema(ma.Schema):
    id = ma.fields.String(allow_none=True)
    role = ma.fields.String()
    display_name = ma.fields.String()


class TimelineEntrySchema(ma.Schema):
    at = LocalDateTime()
    actor = ma.fields.Nested(ActorSchema)
    action = ma.fields.String()
    from_status = ma.fields.String(allow_none=True)
    to_status = ma.fields.String(allow_none=True)
    level = ma.fields.String()
    note = ma.fields.String(allow_none=True)
    visit = ma.fields.Boolean()
    consultation_id = ma.fields.String(allow_none=True)


class ReporterSchema(ma.Schema):
    id = ma.fields.String(allow_none=True, metadata={"description": "only for the reporter and staff"})
    display_name = ma.fields.String(metadata={"description": "masked (张**) or 匿名居民 on the public board"})
    anonymous = ma.fields.Boolean()


class ResolutionSchema(ma.Schema):
    summary = ma.fields.String()
    owner_unit = ma.fields.String(allow_none=True)
    resolved_at = LocalDateTime()
    evidence = ma.fields.List(ma.fields.Nested(AttachmentSchema), metadata={"description": "photos of the result"})


class FeedbackSchema(ma.Schema):
    rating = ma.fields.String()
    comment = ma.fields.String(allow_none=True)
    at = LocalDateTime()


class IssueSchema(Shaped, StudioRecordSchema):
    number = ma.fields.String(metadata={"description": "human-readable, e.g. DW-2026-000123"})
    title = ma.fields.String()
    description = ma.fields.String()
    category = ma.fields.String()
    township_code = ma.fields.String()
    district_code = ma.fields.String()
    level = ma.fields.String(metadata={"description": "tier now responsible: grassroots | township | district"})
    status = ma.fields.String()
    reporter = ma.fields.Nested(ReporterSchema)
    contact_phone = ma.fields.String(allow_none=True)
    location = ma.fields.Nested(LocationSchema, allow_none=True)
    address = ma.fields.String()
    attachments = ma.fields.List(ma.fields.Nested(AttachmentSchema), metadata={
        "description": "photos and videos with signed links; the public board lists the photos WeChat passed"})
    supporters_count = ma.fields.Integer()
    due_at = LocalDateTime(allow_none=True)
    overdue = ma.fields.Boolean()
    supervised = ma.fields.Boolean()
    consultation_id = ma.fields.String(allow_none=True)
    owner_unit = ma.fields.String(allow_none=True, metadata={"description": "unit a consultation handed it to"})
    met_at = LocalDateTime(allow_none=True, metadata={"description": "first face-to-face contact (visit or held session)"})
    resolution = ma.fields.Nested(ResolutionSchema, allow_none=True)
    feedback = ma.fields.Nested(FeedbackSchema, allow_none=True)
    moderation = ma.fields.String(allow_none=True, metadata={"description": "pass | review (staff and reporter only)"})
    duplicate_of = ma.fields.String(allow_none=True)
    reopened_count = ma.fields.Integer()
    escalated_count = ma.fields.Integer()
    timeline = ma.fields.List(ma.fields.Nested(TimelineEntrySchema), metadata={"description": "newest last"})
    created_at = LocalDateTime()
    updated_at = LocalDateTime()
    accepted_at = LocalDateTime(allow_none=True)
    first_response_at = LocalDateTime(allow_none=True)
    closed_at = LocalDateTime(allow_none=True)
    version = ma.fields.Integer(metadata={"description": "also sent as the ETag"})
    allowed_actions = ma.fields.List(ma.fields.String(), metadata={"description": (
        "what the caller may do now, from the table that decides: actions of POST /actions, `feedback` "
        "(POST /feedback) and `support` (POST /supports); a button for anything else would be refused")})
    supported_by_me = ma.fields.Boolean(metadata={"description": "the caller supports it (附议)"})


class IssueSummarySchema(IssueSchema):
    """An issue in a list: everything but the timeline (GET /issues/<id> has it)."""

    class Meta:
        exclude = ("timeline",)


class IssueQuerySchema(ma.Schema):
    board = ma.fields.Boolean(load_default=False, metadata={"description": "public issues of `studio`"})
    mine = ma.fields.Boolean(load_default=False, metadata={"description": "issues I raised"})
    studio = ma.fields.String(validate=OBJECT_ID)
    region = ma.fields.String(validate=CODE)
    status = DelimitedList(ma.fields.String(validate=validate.OneOf(STATUSES)), metadata={"description": "comma list"})
    level = ma.fields.String(validate=validate.OneOf(LEVELS))
    category = ma.fields.String(validate=validate.OneOf(CATEGORIES))
    overdue = ma.fields.Boolean()
    supervised = ma.fields.Boolean()
    q = ma.fields.String(validate=validate.Length(1, 40), metadata={"description": "words in the title or description (Chinese works)"})


class SimilarQuerySchema(ma.Schema):
    studio = ma.fields.String(required=True, validate=OBJECT_ID)
    title = ma.fields.String(required=True, validate=validate.Length(1, 40))


class SimilarIssueSchema(IssueSummarySchema):
    similarity = ma.fields.Float(metadata={"description": "0..1"})


class ActionSchema(ma.Schema):
    action = ma.fields.String(required=True, validate=validate.OneOf(CLIENT_ACTIONS))
    note = ma.fields.String(validate=validate.Length(1, 1000), metadata={"description": "reason, result or comment"})
    visit = ma.fields.Boolean(load_default=False, metadata={"description": "comment: a face-to-face visit took place"})
    owner_unit = ma.fields.String(validate=validate.Length(1, 60), metadata={"description": "resolve: the unit that handled it"})
    evidence = ma.fields.List(ma.fields.String(validate=OBJECT_ID), validate=validate.Length(max=9),
                              metadata={"description": "resolve: file ids"})
    duplicate_of = ma.fields.String(validate=OBJECT_ID, metadata={"description": "duplicate: the original issue"})


class FeedbackCreateSchema(ma.Schema):
    rating = ma.fields.String(required=True, validate=validate.OneOf(RATINGS))
    comment = ma.fields.String(validate=validate.Length(1, 500))


class SupportStateSchema(Shaped):
    issue_id = ma.fields.String()
    supported = ma.fields.Boolean()
    supporters_count = ma.fields.Integer()
