"""Check a push's signature and hand each event to the feature that waits for it.

WeChat signs with the Token of the mini-program console: SHA-1 of the sorted, joined
`[token, timestamp, nonce]`, in the query string of the GET that verifies the URL and of every
POST. Plain mode (明文模式) only: the body is the event as JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from .. import config
from ..errors import Forbidden, InvalidInput
from ..files import moderation

log = logging.getLogger(__name__)

# Event -> handler(event dict); an event nobody handles is answered `success` and logged.
HANDLERS = {"wxa_media_check": moderation.record_verdict}


class BadPushSignature(Forbidden):
    error, message = "bad_signature", "消息推送签名无效"


def signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def verify(args) -> None:
    token = config.settings().push_token
    expected = signature(token, args.get("timestamp") or "", args.get("nonce") or "")
    if not token or not hmac.compare_digest(expected.encode(), (args.get("signature") or "").encode()):
        raise BadPushSignature()


def receive(event) -> None:
    if not isinstance(event, dict):
        raise InvalidInput("消息推送须为 JSON 对象", error="bad_push_body")
    handler = HANDLERS.get(event.get("Event"))
    if handler is None:
        log.info("push event %r ignored", event.get("Event"))
        return
    handler(event)
