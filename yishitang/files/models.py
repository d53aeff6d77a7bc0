"""Uploaded photos and videos: the bytes live in GridFS, this document says whose they are and where."""

import mongoengine as me

from ..db import BaseDocument

KINDS = ("image", "video")
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "video/mp4")
# WeChat's asynchronous media check of a photo: `unsent` until WeChat took the request (a job
# retries), `pending` until its verdict is pushed; only `pass` reaches the public board.
# Videos are not checked by WeChat (`unchecked`) and stay off the board.
MEDIA_CHECK_STATES = ("unsent", "pending", "pass", "review", "risky", "unchecked")


class MediaCheck(me.EmbeddedDocument):
    state = me.StringField(required=True, choices=MEDIA_CHECK_STATES)
    trace_id = me.StringField()
    label = me.IntField()
    requested_at = me.DateTimeField()
    decided_at = me.DateTimeField()


class UploadedFile(BaseDocument):
    meta = {
        "collection": "uploads",
        "indexes": [
            {"fields": ["owner_id", "created_at"]},  # a user's uploads
            {"fields": ["issue_id", "created_at"]},  # an issue's attachments; unattached ones for the purge
            {"fields": ["media_check.trace_id"], "sparse": True},  # a pushed verdict finds its photo
            {"fields": ["media_check.state", "created_at"]},  # the job resending unsent checks
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
    width = me.IntField()  # photos Pillow could read
    height = me.IntField()
    thumb_gridfs_id = me.ObjectIdField()  # a JPEG of at most 320 px, made at upload
    thumb_size = me.IntField()
    media_check = me.EmbeddedDocumentField(MediaCheck)
