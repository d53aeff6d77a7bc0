import marshmallow as ma

from ..consultations.schemas import ConsultationSchema
from ..issues.schemas import IssueSummarySchema
from ..studios.schemas import NearField, StudioSchema


class FeedQuerySchema(ma.Schema):
    near = NearField(required=True, metadata={"description": "`lng,lat` of the phone (wx.getLocation)"})
    studios = ma.fields.Integer(load_default=3, validate=ma.validate.Range(1, 5),
                                metadata={"description": "how many of the nearest studios (default: 3)"})


class FeedSchema(ma.Schema):
    studios = ma.fields.List(ma.fields.Nested(StudioSchema), metadata={"description": "nearest first, with `distance_m`"})
    issues = ma.fields.List(ma.fields.Nested(IssueSummarySchema), metadata={
        "description": "the newest public issues of those studios (at most 20), newest first"})
    consultations = ma.fields.List(ma.fields.Nested(ConsultationSchema), metadata={
        "description": "their coming sessions the caller may see (at most 10), soonest first"})
