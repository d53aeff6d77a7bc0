"""Notify people: an inbox item for each, and a WeChat subscribe message queued for the sender job.

Features call `notify(...)` right after their own write succeeds. Timed work passes a
`dedupe_key` per person and event, so a rerun after a crash notifies nobody twice.
"""

from __future__ import annotations

from pymongo.errors import BulkWriteError

from ..db import get_or_404, utcnow
from ..errors import NotFound
from .models import Notification


def notify(user_ids, kind: str, *, title: str, body: str = "", page: str | None = None,
           template: str | None = None, data: dict | None = None, dedupe_key: str | None = None,
           now=None) -> int:
    """Queue one notification per user; returns how many were new (duplicates by key are skipped)."""
    now = now or utcnow()
    docs = []
    for user_id in dict.fromkeys(user_ids):
        if user_id is None:
            continue
        doc = {
            "user_id": user_id, "kind": kind, "title": title, "body": body, "page": page, "template": template,
            "data": data or {}, "created_at": now, "updated_at": now,
            "delivery": {"state": "pending" if template else "skipped", "attempts": 0, "next_attempt_at": now},
        }
        if dedupe_key:
            doc["dedupe_key"] = f"{dedupe_key}:{user_id}"
        docs.append(doc)
    if not docs:
        return 0
    try:
        return len(Notification._get_collection().insert_many(docs, ordered=False).inserted_ids)
    except BulkWriteError as exc:  # some were sent before (same dedupe key): only those are skipped
        if any(error["code"] != 11000 for error in exc.details["writeErrors"]):
            raise
        return exc.details["nInserted"]


def inbox(user, unread=False):
    query = Notification.objects(user_id=user.id)
    if unread:
        query = query.filter(read_at=None)
    return query.order_by("-created_at", "-id")


def mark_read(user, notification_id) -> Notification:
    item = get_or_404(Notification, notification_id)
    if item.user_id != user.id:
        raise NotFound()
    if item.read_at is None:
        Notification.objects(id=item.id, read_at=None).update(set__read_at=utcnow())
        item.reload()
    return item


def mark_all_read(user, now=None) -> int:
    """One write on the (user_id, read_at) index; items arriving meanwhile stay unread."""
    return Notification._get_collection().update_many(
        {"user_id": user.id, "read_at": None}, {"$set": {"read_at": now or utcnow()}}).modified_count


def unread_count(user) -> int:
    return Notification.objects(user_id=user.id, read_at=None).count()


def personal_data(user) -> dict:
    return {"notifications": [{"kind": n.kind, "title": n.title, "body": n.body, "created_at": n.created_at,
                               "read_at": n.read_at} for n in inbox(user)]}


def forget(user, session=None) -> int:
    return Notification._get_collection().delete_many({"user_id": user.id}, session=session).deleted_count
