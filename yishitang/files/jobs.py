"""Timed work of the files feature: uploads never attached to an issue are removed after a while."""

from __future__ import annotations

import datetime as dt

from . import moderation, service
from .models import UploadedFile

UNATTACHED_MAX_AGE = dt.timedelta(days=1)


def purge_unattached(now: dt.datetime, max_age: dt.timedelta = UNATTACHED_MAX_AGE) -> int:
    """Delete uploads still unattached `max_age` after upload; idempotent, returns how many went."""
    collection = UploadedFile._get_collection()
    purged = 0
    for doc in collection.find({"issue_id": None, "created_at": {"$lt": now - max_age}}, {"_id": 1}):
        # Conditional delete: an attach that wins the race keeps its file.
        gone = collection.find_one_and_delete({"_id": doc["_id"], "issue_id": None})
        if gone is not None:
            service.delete_bytes(gone["gridfs_id"], gone.get("thumb_gridfs_id"))
            purged += 1
    return purged


def resend_media_checks(now: dt.datetime) -> int:
    """Photos whose media check WeChat did not take are asked for again."""
    return moderation.resend_unsent(now)
