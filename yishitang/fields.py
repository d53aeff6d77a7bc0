"""Marshmallow fields and validators every feature's schemas share (ids, phones, region codes,
a map point), so no feature borrows them from another's schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from . import clock

OBJECT_ID = validate.Regexp(r"^[0-9a-f]{24}$", error="无效的 id")
PHONE = validate.Regexp(r"^1[3-9][0-9]{9}$", error="手机号格式不正确")  # a mainland mobile number
CODE = validate.Regexp(r"^[0-9]{6,12}$", error="地区代码应为 6 到 12 位数字")  # a region code


class LocationSchema(ma.Schema):
    lng = ma.fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = ma.fields.Float(required=True, validate=validate.Range(-90, 90))


class StudioRecordSchema(ma.Schema):
    """What a record kept at a studio (an issue, a session) shows first: its id, its studio and the
    studio's community."""

    id = ma.fields.String()
    studio_id = ma.fields.String()
    region_code = ma.fields.String()


class LocalDateTime(ma.fields.DateTime):
    """A time as people read it: ISO 8601 in the display zone (`YISHITANG_TZ`, +08:00), whatever
    zone it was stored or sent in. Input is read as any ISO 8601 time with an offset."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, str):  # shaped already (`clock.shown`)
            return value
        return super()._serialize(clock.local(value), attr, obj, **kwargs)
