"""Uploaded photos and videos: the bytes live in GridFS, this document says whose they are and where."""

import mongoengine as me

from ..db import BaseDocument

KINDS = ("image", "video")
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4")


class UploadedFile(BaseDocument):
    meta = {
        "collection": "uploads",
        "indexes": [
            {"fields": ["owner_id", "created_at"]},  # a user's uploads
            {"fields": ["issue_id", "created_at"]},  # an issue's attachments; unattached ones for the purge
        ],
    }

    owner_id = me.ObjectIdField(required=True)
    issue_id = me.ObjectIdField(null=True, default=None)  # None until attached to an issue
    content_type = me.StringField(required=True, choices=CONTENT_TYPES)  # sniffed, never the client's
    kind = me.StringField(required=True, choices=KINDS)
    size = me.IntField(required=True, min_value=1)
    sha256 = me.StringField(required=True)
    gridfs_id = me.ObjectIdField(required=True)  # in the "uploads" bucket
    filename = me.StringField(max_length=100)  # sanitised original name, for people only
