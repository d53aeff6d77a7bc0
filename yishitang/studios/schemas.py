import marshmallow as ma
from marshmallow import validate

from ..fields import CODE, LocationSchema


class StudioSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String(required=True, validate=validate.Length(1, 60))
    region_code = ma.fields.String(required=True, validate=CODE)
    township_code = ma.fields.String(dump_only=True)
    district_code = ma.fields.String(dump_only=True)
    address = ma.fields.String(load_default="", validate=validate.Length(max=200))
    location = ma.fields.Nested(LocationSchema, allow_none=True, load_default=None)
    open_hours = ma.fields.String(load_default="", validate=validate.Length(max=100))
    member_ids = ma.fields.List(ma.fields.String(), dump_only=True)
    members = ma.fields.List(ma.fields.Nested("StudioMemberSchema"), dump_only=True, metadata={
        "description": "the members on duty (active), for the studio's page; no phone"})
    active = ma.fields.Boolean(load_default=True)
    distance_m = ma.fields.Float(dump_only=True, allow_none=True, metadata={"description": "with `near` only"})


class StudioPatchSchema(ma.Schema):
    name = ma.fields.String(validate=validate.Length(1, 60))
    address = ma.fields.String(validate=validate.Length(max=200))
    location = ma.fields.Nested(LocationSchema, allow_none=True)
    open_hours = ma.fields.String(validate=validate.Length(max=100))
    active = ma.fields.Boolean()


def parse_near(value: str):
    """`near=lng,lat` -> (lng, lat)."""
    try:
        lng, lat = (float(part) for part in value.split(","))
    except ValueError:
        raise ma.ValidationError("格式应为 经度,纬度") from None
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        raise ma.ValidationError("经纬度超出范围")
    return lng, lat


class NearField(ma.fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        return parse_near(super()._deserialize(value, attr, data, **kwargs))


class StudioQuerySchema(ma.Schema):
    region = ma.fields.String(validate=CODE, metadata={"description": "any ancestor region"})
    near = NearField(metadata={"description": "`lng,lat`: sorted by distance"})
    active = ma.fields.Boolean()


class MembersSchema(ma.Schema):
    member_ids = ma.fields.List(ma.fields.String(validate=validate.Regexp(r"^[0-9a-f]{24}$", error="无效的用户 id")),
                                required=True, validate=validate.Length(max=200))


class StudioMemberSchema(ma.Schema):
    id = ma.fields.String()
    display_name = ma.fields.String()
    committee = ma.fields.String(allow_none=True, metadata={"description": "专委会"})
