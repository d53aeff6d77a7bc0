import marshmallow as ma
from marshmallow import validate

from ..fields import CODE
from .models import KINDS


class RegionSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=CODE)
    name = ma.fields.String(required=True, validate=validate.Length(1, 40))
    kind = ma.fields.String(required=True, validate=validate.OneOf(KINDS))
    parent_code = ma.fields.String(allow_none=True, load_default=None, validate=CODE)
    ancestors = ma.fields.List(ma.fields.String(), dump_only=True)
    tier = ma.fields.String(dump_only=True, metadata={"description": "district | township | grassroots"})


class RegionPatchSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 40))


class RegionQuerySchema(ma.Schema):
    parent = ma.fields.String(validate=CODE, metadata={"description": "direct children of this region"})
    within = ma.fields.String(validate=CODE, metadata={"description": "the whole subtree under this region"})
    kind = ma.fields.String(validate=validate.OneOf(KINDS))
    q = ma.fields.String(validate=validate.Length(1, 40), metadata={"description": "name contains"})
