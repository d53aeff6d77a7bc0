"""Integrations: outside systems that file issues through Open311 with an api key."""

import mongoengine as me

from ..db import BaseDocument


class Integration(BaseDocument):
    """A named outside system (e.g. the city's 12345 hotline); its key is stored only as SHA-256."""

    meta = {
        "collection": "integrations",
        "indexes": [
            {"fields": ["key_hash"], "unique": True},
            {"fields": ["-created_at", "-id"]},
        ],
    }

    name = me.StringField(required=True)
    contact = me.StringField(required=True)  # who answers for the integration (people, not programs)
    key_hash = me.StringField(required=True)  # sha256 hex of the api key; the key itself is shown once
    key_prefix = me.StringField(required=True)  # the key's first characters, so admins can tell keys apart
    account_id = me.ObjectIdField(required=True)  # the reporter of record of what it files
    created_by = me.ObjectIdField()
    revoked_at = me.DateTimeField()
    revoked_by = me.ObjectIdField()
    last_used_at = me.DateTimeField()
    requests_count = me.IntField(default=0)

    @property
    def active(self) -> bool:
        return self.revoked_at is None
