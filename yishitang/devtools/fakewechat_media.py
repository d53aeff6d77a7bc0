"""The fake WeChat's asynchronous media check: fetch the photo from the link the app gave, decide,
and push the verdict to the app's message-push URL, signed with the push Token, as WeChat does.

Tests call `deliver()` when they want the verdicts (no waiting); the demo delivers each check on a
thread right away. A push the app does not answer with `success` is retried, like WeChat's.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time

import requests

log = logging.getLogger(__name__)
PUSH_ATTEMPTS = 3  # WeChat retries a push it thinks failed
FETCH_FAILED = -1008  # the event's errcode when the photo could not be downloaded


def sign(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


class MediaChecks:
    def __init__(self, appid: str, push_token: str, push_url: str | None = None, auto: bool = False):
        self.appid, self.push_token, self.push_url, self.auto = appid, push_token, push_url, auto
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._pending: list[dict] = []
            self._verdicts: dict[str, tuple[str, int]] = {}  # sha256 of the photo -> (suggest, label)
            self.pushes: list[dict] = []  # every push attempt: trace_id, status, answer

    def set_verdict(self, data: bytes, suggest: str, label: int) -> None:
        """Photos with exactly these bytes get this verdict (default: pass, 100)."""
        with self._lock:
            self._verdicts[hashlib.sha256(data).hexdigest()] = (suggest, int(label))

    def request(self, params: dict) -> dict:
        """The /wxa/media_check_async endpoint's answer, after recording the check."""
        if params.get("media_type") not in (1, 2) or not params.get("media_url"):
            return {"errcode": 40097, "errmsg": "invalid args"}
        check = {"trace_id": secrets.token_hex(12), "media_url": params["media_url"], "openid": params.get("openid")}
        with self._lock:
            self._pending.append(check)
        if self.auto:
            threading.Thread(target=self.deliver, name="fake-media-check", daemon=True).start()
        return {"errcode": 0, "errmsg": "ok", "trace_id": check["trace_id"]}

    def deliver(self) -> list[dict]:
        """Fetch, decide and push every pending check; returns the events pushed."""
        with self._lock:
            pending, self._pending = self._pending, []
        return [self._push_until_answered(self._decide(check)) for check in pending]

    def _decide(self, check: dict) -> dict:
        event = {"ToUserName": "gh_fake", "FromUserName": check["openid"] or "", "CreateTime": int(time.time()),
                 "MsgType": "event", "Event": "wxa_media_check", "appid": self.appid, "trace_id": check["trace_id"],
                 "version": 2}
        try:
            fetched = requests.get(check["media_url"], timeout=5)
            fetched.raise_for_status()
        except requests.RequestException as exc:
            log.info("fake media check could not fetch %s: %s", check["media_url"], exc)
            return {**event, "errcode": FETCH_FAILED, "errmsg": "download media failed", "detail": []}
        with self._lock:
            suggest, label = self._verdicts.get(hashlib.sha256(fetched.content).hexdigest(), ("pass", 100))
        detail = {"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}
        return {**event, "errcode": 0, "errmsg": "ok", "detail": [detail], "result": {"suggest": suggest, "label": label}}

    def _push_until_answered(self, event: dict) -> dict:
        for _attempt in range(PUSH_ATTEMPTS):
            answer = self.push(event)
            if answer is not None and answer.status_code == 200 and answer.text in ("success", ""):
                break
        return event

    def push(self, event: dict, token: str | None = None) -> requests.Response | None:
        """POST one event to the push URL, signed with `token` (the push Token unless given)."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
        query = {"signature": sign(token or self.push_token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        try:
            answer = requests.post(self.push_url, params=query, json=event, timeout=5)
        except requests.RequestException as exc:
            log.info("fake push to %s failed: %s", self.push_url, exc)
            answer = None
        with self._lock:
            self.pushes.append({"trace_id": event.get("trace_id"), "status": getattr(answer, "status_code", None),
                                "answer": getattr(answer, "text", None)})
        return answer
