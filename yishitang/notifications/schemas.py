import marshmallow as ma

from ..fields import LocalDateTime


class DeliverySchema(ma.Schema):
    state = ma.fields.String(metadata={"description": "pending | sending | sent | no_grant | failed | skipped (in-app only)"})
    attempts = ma.fields.Integer()
    sent_at = LocalDateTime(allow_none=True)


class NotificationSchema(ma.Schema):
    id = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "e.g. issue_accepted, issue_resolved, consultation_reminder"})
    title = ma.fields.String()
    body = ma.fields.String()
    page = ma.fields.String(allow_none=True, metadata={"description": "mini-program page to open"})
    read_at = LocalDateTime(allow_none=True)
    created_at = LocalDateTime()
    delivery = ma.fields.Nested(DeliverySchema)


class InboxQuerySchema(ma.Schema):
    unread = ma.fields.Boolean(load_default=False)


class UnreadCountSchema(ma.Schema):
    unread_count = ma.fields.Integer()


class ReadAllSchema(ma.Schema):
    marked = ma.fields.Integer(metadata={"description": "notifications marked read by this call"})
    unread_count = ma.fields.Integer()
