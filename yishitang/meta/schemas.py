import marshmallow as ma

from ..fields import LocalDateTime


class LabelsSchema(ma.Schema):
    issue_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    issue_action = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    category = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    level = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    rating = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    role = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    committee = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    consultation_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    consultation_format = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


class TemplateSchema(ma.Schema):
    key = ma.fields.String(metadata={"description": "the `WECHAT_TEMPLATE_<KEY>` setting, lower case"})
    template_id = ma.fields.String(allow_none=True, metadata={
        "description": "for `wx.requestSubscribeMessage`; null when not configured on this server"})
    used_for = ma.fields.String(metadata={"description": "the events it carries, in Chinese"})


class UploadLimitsSchema(ma.Schema):
    max_bytes = ma.fields.Integer()
    max_attachments = ma.fields.Integer(metadata={"description": "per issue"})
    content_types = ma.fields.List(ma.fields.String())
    thumbnail_px = ma.fields.Integer(metadata={"description": "longest side of `thumb_url` images"})
    max_pixels = ma.fields.Integer(metadata={"description": "larger images are refused (image_too_large)"})


class MetaSchema(ma.Schema):
    labels = ma.fields.Nested(LabelsSchema, metadata={"description": "Chinese name of every key, by enum"})
    subscribe_templates = ma.fields.List(ma.fields.Nested(TemplateSchema))
    uploads = ma.fields.Nested(UploadLimitsSchema)
    page_size_max = ma.fields.Integer()
    time_zone = ma.fields.String(metadata={"description": "every time shown carries this zone's offset"})
    server_time = LocalDateTime(metadata={"description": "to correct a phone's clock"})
