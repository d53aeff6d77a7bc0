"""The WeChat server API client: requests with timeouts, retries, and a token cache shared by all processes.

Every process (API workers, the scheduler) reads the access token from one database document
per appid and refreshes it through `stable_token`, so no process invalidates another's token.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time

import mongoengine as me
import requests

from .db import BaseDocument, as_utc, utcnow
from .errors import UpstreamUnavailable

log = logging.getLogger(__name__)

ATTEMPTS = 3  # in all, for busy answers and transport errors
BACKOFF_S = 0.2  # doubled after each failed attempt
TOKEN_ERRCODES = {40001, 40014, 42001}  # refresh the token once and retry once
BUSY_ERRCODES = {-1, 45011}  # system busy, minute quota: back off and retry
TOKEN_MARGIN = dt.timedelta(minutes=5)  # refresh a cached token this long before it expires

# Subscribe message value limits by key kind ("thing1" -> "thing"); WeChat answers 47003 past them.
VALUE_LIMITS = {
    "thing": 20,
    "phrase": 5,
    "name": 10,
    "number": 32,
    "character_string": 32,
    "letter": 32,
    "phone_number": 17,
    "car_number": 8,
}
ELLIPSIS = "…"


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str = ""):
        Exception.__init__(self, f"WeChat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatUnavailable(WeChatError, UpstreamUnavailable):
    """Busy, over quota, timed out or unreachable after the retries; a 503 if it reaches the edge."""

    def __init__(self, errcode: int, errmsg: str = ""):
        UpstreamUnavailable.__init__(self)  # status 503 and the Chinese message for people
        WeChatError.__init__(self, errcode, errmsg)


class WeChatToken(BaseDocument):
    """The access token cache: one document per appid, shared by every process."""

    meta = {"collection": "wechat_tokens"}

    appid = me.StringField(required=True, unique=True)
    access_token = me.StringField(required=True)
    expires_at = me.DateTimeField(required=True)


def fit_value(key: str, value) -> str:
    """Fit a template value to WeChat's limit for its kind, so long text never causes a 47003."""
    text = " ".join(str(value if value is not None else "").split())
    limit = VALUE_LIMITS.get(re.sub(r"\d+$", "", key))
    if limit is None or len(text) <= limit:
        return text
    if key.startswith("thing"):
        return text[: limit - 1] + ELLIPSIS
    return text[:limit]


class WeChatClient:
    def __init__(self, settings, session: requests.Session | None = None, sleep=time.sleep):
        self.settings = settings
        self.base_url = settings.wechat_api_base.rstrip("/")
        self.session = session or requests.Session()
        self.sleep = sleep
        self._memo: tuple[str, dt.datetime] | None = None  # this process's copy of the shared token

    # -- the calls ---------------------------------------------------------------------------

    def code2session(self, code: str) -> dict:
        """Exchange a login code: {"openid", "session_key", "unionid"?}; a bad or reused code is 40029."""
        data = self._call(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self.settings.wechat_appid,
                "secret": self.settings.wechat_secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            with_token=False,
        )
        return {key: data[key] for key in ("openid", "session_key", "unionid") if key in data}

    def phone_number(self, code: str) -> str:
        """The phone number (without country code) behind a single-use phone code."""
        data = self._call("POST", "/wxa/business/getuserphonenumber", json={"code": code})
        return data["phone_info"]["purePhoneNumber"]

    def check_text(self, content: str, openid: str, scene: int = 2) -> dict:
        """WeChat's verdict on user text: {"suggest": "pass" | "review" | "risky", "label": int}."""
        data = self._call(
            "POST",
            "/wxa/msg_sec_check",
            json={"content": content, "version": 2, "scene": scene, "openid": openid},
        )
        result = data["result"]
        return {"suggest": result["suggest"], "label": int(result["label"])}

    def check_media_async(self, media_url: str, openid: str, media_type: int = 2, scene: int = 2) -> str:
        """Submit an image (2) or audio (1) for checking; the verdict is pushed later. Returns trace_id."""
        data = self._call(
            "POST",
            "/wxa/media_check_async",
            json={
                "media_url": media_url,
                "media_type": media_type,
                "version": 2,
                "scene": scene,
                "openid": openid,
            },
        )
        return data["trace_id"]

    def send_subscribe_message(
        self, openid: str, template_id: str, data: dict, page: str | None = None, state: str = "formal"
    ) -> None:
        """Send one subscribe message; `data` maps keys to plain values, fitted to WeChat's limits."""
        body = {
            "touser": openid,
            "template_id": template_id,
            "miniprogram_state": state,
            "lang": "zh_CN",
            "data": {key: {"value": fit_value(key, value)} for key, value in data.items()},
        }
        if page:
            body["page"] = page
        self._call("POST", "/cgi-bin/message/subscribe/send", json=body)

    # -- the access token --------------------------------------------------------------------

    def access_token(self, force: bool = False) -> str:
        """The shared token; fetched from WeChat when the cache has none fresh enough, or when `force`."""
        if not force:
            cached = self._cached_token()
            if cached:
                return cached
        return self._fetch_token(force_refresh=False)

    def _cached_token(self) -> str | None:
        # Kept in memory until it nears expiry: no database read per WeChat call.
        if self._memo and self._memo[1] - utcnow() > TOKEN_MARGIN:
            return self._memo[0]
        return self._stored_token()

    def _stored_token(self) -> str | None:
        cached = WeChatToken.objects(appid=self.settings.wechat_appid).first()
        if cached and as_utc(cached.expires_at) - utcnow() > TOKEN_MARGIN:
            self._memo = (cached.access_token, as_utc(cached.expires_at))
            return cached.access_token
        return None

    def _refresh_token(self, rejected: str) -> str:
        """A token WeChat refused: take a newer one; spend a forced refresh (20/day) only if needed."""
        self._memo = None
        cached = self._stored_token()
        if cached and cached != rejected:  # another process refreshed it already
            return cached
        token = self._fetch_token(force_refresh=False)
        if token == rejected:
            token = self._fetch_token(force_refresh=True)
        return token

    def _fetch_token(self, force_refresh: bool) -> str:
        data = self._call(
            "POST",
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.settings.wechat_appid,
                "secret": self.settings.wechat_secret,
                "force_refresh": force_refresh,
            },
            with_token=False,
        )
        token, now = data["access_token"], utcnow()
        expires_at = now + dt.timedelta(seconds=int(data.get("expires_in", 7200)))
        self._memo = (token, expires_at)
        update = {
            "set__access_token": token,
            "set__expires_at": expires_at,
            "set__updated_at": now,
            "set_on_insert__created_at": now,
        }
        # One atomic upsert on the unique appid: concurrent first fetches still leave one document.
        WeChatToken.objects(appid=self.settings.wechat_appid).update_one(upsert=True, **update)
        return token

    # -- transport ---------------------------------------------------------------------------

    def _call(self, method, path, *, params=None, json=None, with_token=True) -> dict:
        """One WeChat call; a refused token is refreshed once and the call retried once."""
        token = self.access_token() if with_token else None
        for token_attempt in (1, 2):
            query = dict(params or {})
            if with_token:
                query["access_token"] = token
            data = self._send(method, path, query, json)
            errcode = int(data.get("errcode") or 0)
            if errcode == 0:
                return data
            if with_token and errcode in TOKEN_ERRCODES and token_attempt == 1:
                log.info("WeChat %s refused the access token (%s); refreshing it", path, errcode)
                token = self._refresh_token(token)
                continue
            log.warning("WeChat %s failed: errcode %s, %s", path, errcode, data.get("errmsg", ""))
            raise WeChatError(errcode, data.get("errmsg", ""))

    def _send(self, method, path, params, json) -> dict:
        """One request, backing off on busy answers and transport errors; at most ATTEMPTS in all."""
        for attempt in range(1, ATTEMPTS + 1):
            if attempt > 1:
                self.sleep(BACKOFF_S * 2 ** (attempt - 2))
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=json,
                    timeout=self.settings.wechat_timeout_s,
                )
                response.raise_for_status()
                data = response.json()
            except requests.RequestException as exc:
                # The exception text holds the URL, hence the secret or token: log its type only.
                errcode, errmsg = -1, type(exc).__name__
            else:
                errcode, errmsg = int(data.get("errcode") or 0), data.get("errmsg", "")
                if errcode not in BUSY_ERRCODES:
                    return data
            log.warning(
                "WeChat %s unavailable (attempt %d of %d): %s %s", path, attempt, ATTEMPTS, errcode, errmsg
            )
        raise WeChatUnavailable(errcode, errmsg)
