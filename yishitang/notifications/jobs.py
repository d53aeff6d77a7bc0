"""The sender: deliver queued notifications as WeChat subscribe messages, with bounded retries.

Each item is claimed with a lease before it is sent, so two senders never send the same item;
a sender that dies mid-send leaves a lease that expires, and the item is tried again.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import current_app

from .. import config
from ..db import update_and_get
from ..users import service as users
from ..wechat import WeChatError, WeChatUnavailable
from .models import Notification

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
LEASE = dt.timedelta(minutes=2)
RETRY_BASE = dt.timedelta(seconds=30)  # 30 s, 1 min, 2 min, 4 min between attempts
NO_GRANT = 43101


def _due(now, limit) -> list[dict]:
    """Items due for sending, oldest first: two index ranges (SecantusDB scans for an $or of them)."""
    collection = Notification._get_collection()
    pending = collection.find({"delivery.state": "pending", "delivery.next_attempt_at": {"$lte": now}},
                              {"delivery": 1}).sort("delivery.next_attempt_at", 1).limit(limit)
    stale = collection.find({"delivery.state": "sending", "delivery.lease_until": {"$lt": now}},  # a sender died mid-send
                            {"delivery": 1}).limit(limit)
    return sorted([*pending, *stale], key=lambda item: item["delivery"].get("next_attempt_at") or now)[:limit]


def _claim(item, now):
    """Take the item with one conditional update on what we read: of two senders only one wins."""
    state = item["delivery"]["state"]
    guard = ({"delivery.state": "pending"} if state == "pending"
             else {"delivery.state": "sending", "delivery.lease_until": item["delivery"].get("lease_until")})
    return update_and_get(
        Notification._get_collection(), {"_id": item["_id"], **guard},
        {"$set": {"delivery.state": "sending", "delivery.lease_until": now + LEASE, "updated_at": now},
         "$inc": {"delivery.attempts": 1}}, {"_id": item["_id"]})


def _settle(item, now, state, error=None, retry_at=None):
    changes = {"delivery.state": state, "delivery.lease_until": None, "updated_at": now}
    if state == "sent":
        changes["delivery.sent_at"] = now
    if error:
        changes["delivery.last_error"] = error[:300]
    if retry_at:
        changes["delivery.next_attempt_at"] = retry_at
    Notification._get_collection().update_one({"_id": item["_id"], "delivery.state": "sending"}, {"$set": changes})


def send_outbox(now: dt.datetime, batch: int = 100) -> dict:
    """Send what is due; returns counts by outcome."""
    settings = config.settings()
    client = current_app.extensions["wechat"]
    outcome: dict[str, int] = {}
    for candidate in list(_due(now, batch)):
        item = _claim(candidate, now)
        if item is None:  # another sender took it
            continue
        state = _deliver(item, now, settings, client)
        outcome[state] = outcome.get(state, 0) + 1
    return outcome


def _deliver(item, now, settings, client) -> str:
    template_id = settings.wechat_templates.get(item.get("template") or "")
    openid = users.wechat_openid(item["user_id"])
    if not template_id or openid is None:
        _settle(item, now, "skipped", "no template configured or no WeChat account")
        return "skipped"
    try:
        client.send_subscribe_message(openid, template_id, item.get("data") or {}, page=item.get("page"))
    except WeChatUnavailable as exc:
        attempts = item["delivery"]["attempts"]
        if attempts >= MAX_ATTEMPTS:
            _settle(item, now, "failed", f"{exc.errcode} {exc.errmsg} after {attempts} attempts")
            return "failed"
        _settle(item, now, "pending", f"{exc.errcode} {exc.errmsg}", retry_at=now + RETRY_BASE * 2 ** (attempts - 1))
        return "retry"
    except WeChatError as exc:
        if exc.errcode == NO_GRANT:  # the user has no subscription grant left: the inbox item remains
            _settle(item, now, "no_grant", f"{exc.errcode} {exc.errmsg}")
            return "no_grant"
        _settle(item, now, "failed", f"{exc.errcode} {exc.errmsg}")
        return "failed"
    _settle(item, now, "sent")
    return "sent"
