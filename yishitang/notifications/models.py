"""Notifications: one document is both the user's inbox item and the WeChat outbox entry."""

import mongoengine as me

from ..db import BaseDocument

DELIVERY_STATES = ("pending", "sending", "sent", "no_grant", "failed", "skipped")


class Delivery(me.EmbeddedDocument):
    """The WeChat subscribe message for this item."""

    state = me.StringField(default="pending", choices=DELIVERY_STATES)
    attempts = me.IntField(default=0)
    next_attempt_at = me.DateTimeField()
    last_error = me.StringField()
    sent_at = me.DateTimeField()
    lease_until = me.DateTimeField()  # a sender working on it; past this another may take it


class Notification(BaseDocument):
    meta = {
        "collection": "notifications",
        "indexes": [
            {"fields": ["user_id", "-created_at"]},
            {"fields": ["user_id", "read_at", "-created_at"]},
            {"fields": ["delivery.state", "delivery.next_attempt_at"]},  # the sender's due items
            {"fields": ["delivery.state", "delivery.lease_until"]},  # and those a dead sender left
            # The idempotency stamp of timed work: a rerun never notifies twice.
            {"fields": ["dedupe_key"], "unique": True, "sparse": True},
        ],
    }

    user_id = me.ObjectIdField(required=True)
    kind = me.StringField(required=True)
    title = me.StringField(required=True)
    body = me.StringField(default="")
    page = me.StringField()  # mini-program page to open, e.g. pages/issue/detail?id=...
    template = me.StringField()  # key of WECHAT_TEMPLATE_*; None: in-app only
    data = me.DictField()  # template values, fitted to WeChat's limits when sent
    read_at = me.DateTimeField()
    delivery = me.EmbeddedDocumentField(Delivery, default=Delivery)
    dedupe_key = me.StringField()
