"""WeChat's asynchronous media check of photos: ask at upload, take the verdict WeChat pushes.

A photo reaches the public board only once its verdict is `pass`. WeChat fetches the photo from
a signed link (`YISHITANG_PUBLIC_URL` must be reachable from the internet in production), then
pushes a `wxa_media_check` event, possibly several times: recording it is idempotent by trace_id.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import current_app, has_request_context

from .. import config
from ..db import utcnow
from ..wechat import WeChatError
from . import links
from .models import UploadedFile

log = logging.getLogger(__name__)
VERDICTS = ("pass", "review", "risky")
RESEND_AFTER = dt.timedelta(minutes=1)
RESEND_BATCH = 200


def request_check(upload, owner, now=None) -> bool:
    """Ask WeChat to check one photo; when WeChat does not answer it stays `unsent` for the job."""
    now = now or utcnow()
    if not has_request_context() and not config.settings().public_url:
        log.warning("YISHITANG_PUBLIC_URL is unset: WeChat cannot fetch photo %s", upload.id)
        return False
    try:
        trace_id = current_app.extensions["wechat"].check_media_async(
            links.url(upload.id), getattr(owner, "openid", None) or "", media_type=2, scene=3)
    except WeChatError as exc:
        log.warning("media check of %s not sent, will retry: %s", upload.id, exc)
        return False
    UploadedFile._get_collection().update_one(
        {"_id": upload.id, "media_check.state": "unsent"},
        {"$set": {"media_check.state": "pending", "media_check.trace_id": trace_id, "media_check.requested_at": now}})
    return True


def record_verdict(event: dict, now=None) -> int:
    """Store a pushed `wxa_media_check` verdict; a repeated push changes nothing. Returns photos matched."""
    trace_id = str(event.get("trace_id") or "")
    if not trace_id:
        return 0
    result = event.get("result") or {}
    if event.get("errcode", 0) not in (0, None):  # WeChat could not check it (e.g. fetch failed): ask again
        update = {"media_check.state": "unsent", "media_check.trace_id": None}
    else:
        suggest = result.get("suggest")
        update = {"media_check.state": suggest if suggest in VERDICTS else "review",
                  "media_check.label": _label(result.get("label")), "media_check.decided_at": now or utcnow()}
    found = UploadedFile._get_collection().update_one({"media_check.trace_id": trace_id}, {"$set": update})
    if not found.matched_count:
        log.info("media check verdict for unknown trace_id %s", trace_id)
    return found.matched_count


def _label(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def resend_unsent(now: dt.datetime) -> int:
    """Job: ask again for photos WeChat did not take (an outage at upload, or a failed check)."""
    from ..users.models import User

    sent = 0
    for raw in UploadedFile.objects(media_check__state="unsent", created_at__lt=now - RESEND_AFTER) \
            .only("id", "owner_id").limit(RESEND_BATCH):
        owner = User.objects(id=raw.owner_id).only("openid").first()
        sent += request_check(raw, owner, now)
    return sent
