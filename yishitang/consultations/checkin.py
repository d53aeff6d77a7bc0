"""Signing in to a session: a code shown in the room as a QR code, new every minute, and the
check-in itself, which keeps to the capacity even when everyone scans at the same moment."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

from .. import config, db
from ..db import as_utc, get_or_404, utcnow
from ..errors import Conflict, Forbidden, InvalidInput
from . import access as access_rules
from . import workflow
from .models import Consultation
from .presenters import local, local_text

CODE_STEP_S = 60  # a new code every minute, so a photographed QR code soon goes stale
CODE_LIFETIME = dt.timedelta(minutes=5)  # a code is accepted this long after it was shown

def _sign(consultation_id, window: int) -> str:
    key = config.settings().checkin_key
    digest = hmac.new(key, f"yishitang-checkin|{consultation_id}|{window}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:5]).decode()  # 8 characters: enough for a code valid minutes


def _window(now) -> int:
    return int(now.timestamp()) // CODE_STEP_S


def _require_checkin_open(c, now) -> None:
    workflow.next_status(c.status, "check_in")  # a cancelled session takes no sign-in
    opens, closes = as_utc(c.starts_at) - workflow.CHECKIN_OPENS_BEFORE, as_utc(c.ends_at)
    if not workflow.in_time("check_in", c, now):
        raise Conflict(f"签到时间为 {local_text(opens)} 至 {local_text(closes)}", error="checkin_closed")


def checkin_code(consultation_id, user, now=None) -> dict:
    """The code to show as a QR code now: a new one every minute, each accepted for 5 minutes."""
    now = now or utcnow()
    c, access = access_rules.get_visible(consultation_id, user)
    if not access.may_show_code:
        raise Forbidden("只有主持人和参会委员可以出示签到码", error="checkin_code_forbidden")
    _require_checkin_open(c, now)
    window = _window(now)
    issued = dt.datetime.fromtimestamp(window * CODE_STEP_S, dt.timezone.utc)
    return {"code": f"{window}.{_sign(c.id, window)}", "expires_at": local(issued + CODE_LIFETIME),
            "refresh_at": local(issued + dt.timedelta(seconds=CODE_STEP_S))}


def _verify_code(c, code: str, now) -> None:
    window_text, _, signature = (code or "").strip().partition(".")
    if not window_text.isdigit() or len(window_text) > 12:
        raise InvalidInput("签到码无效", error="invalid_checkin_code")
    window = int(window_text)
    if not hmac.compare_digest(_sign(c.id, window).encode(), signature.upper().encode()) or window > _window(now) + 1:
        raise InvalidInput("签到码无效", error="invalid_checkin_code")
    if now >= dt.datetime.fromtimestamp(window * CODE_STEP_S, dt.timezone.utc) + CODE_LIFETIME:
        raise InvalidInput("签到码已过期，请扫描屏幕上的最新二维码", error="checkin_code_expired")


def check_in(consultation_id, user, code, now=None) -> dict:
    """Sign the caller in once; capacity holds even when everyone scans at the same moment."""
    now = now or utcnow()
    c, _ = access_rules.get_visible(consultation_id, user)
    _require_checkin_open(c, now)
    _verify_code(c, code, now)
    collection = Consultation._get_collection()
    for _attempt in range(5):
        if any(ci.user_id == user.id for ci in c.checkins):
            raise Conflict("您已签到", error="already_checked_in")
        if c.checkins_count >= c.capacity:
            raise Conflict("议事会人数已满", error="consultation_full")
        _require_checkin_open(c, now)
        # One conditional update: same status and capacity as read, caller absent, room left.
        # The count read back may include a later sign-in: "at least mine" is all the answer says.
        updated = db.update_and_get(
            collection, {"_id": c.id, "status": c.status, "capacity": c.capacity, "checkins.user_id": {"$ne": user.id},
                         "checkins_count": {"$lt": c.capacity}},
            {"$push": {"checkins": {"user_id": user.id, "at": now}}, "$inc": {"checkins_count": 1},
             "$set": {"status": workflow.next_status(c.status, "check_in")}}, {"_id": c.id},
            projection={"checkins_count": 1})
        if updated is not None:
            return {"consultation_id": str(c.id), "user_id": str(user.id), "at": local(now),
                    "checkins_count": updated["checkins_count"]}
        c = get_or_404(Consultation, c.id)
    raise Conflict("签到人数较多，请稍后重试", error="concurrent_update")
