"""Short-lived signed URLs: what `<image src>` can load without an Authorization header.

`/api/v1/files/<id>?exp=<unix time>&sig=<hmac>` (and `/thumb`): the signature covers the file,
the variant and the expiry. Expiries are rounded up to a step of half the lifetime, so a page
shown twice in a few minutes reuses the same URLs and the phone's image cache.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time

from flask import request

from .. import config
from ..errors import Forbidden

VARIANTS = ("file", "thumb")


class LinkExpired(Forbidden):
    error, message = "link_expired", "链接已过期，请刷新页面"


class BadSignature(Forbidden):
    error, message = "bad_signature", "链接无效"


def _settings():
    return config.settings()


def _signature(file_id: str, variant: str, expires: int) -> str:
    key = ("files:" + _settings().signing_key).encode()
    return hmac.new(key, f"{file_id}:{variant}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def expiry(now: float | None = None, ttl_s: int | None = None) -> int:
    ttl_s = ttl_s or _settings().file_url_ttl_s
    step = max(ttl_s // 2, 1)
    return int(math.ceil(((now or time.time()) + ttl_s) / step) * step)


def base_url() -> str:
    """Where people and WeChat reach this API: `YISHITANG_PUBLIC_URL`, else the request's host."""
    return (_settings().public_url or request.host_url).rstrip("/")


def url(file_id, variant: str = "file", *, expires: int | None = None) -> str:
    file_id, expires = str(file_id), expires or expiry()
    path = f"/api/v1/files/{file_id}" + ("/thumb" if variant == "thumb" else "")
    return f"{base_url()}{path}?exp={expires}&sig={_signature(file_id, variant, expires)}"


def verify(file_id: str, variant: str, exp: str | None, sig: str | None, now: float | None = None) -> None:
    """403 `bad_signature` for anything not signed by us, 403 `link_expired` once past its time."""
    if not exp or not sig or not exp.isdigit() or len(exp) > 12:
        raise BadSignature()
    if not hmac.compare_digest(_signature(str(file_id), variant, int(exp)), sig):
        raise BadSignature()
    if int(exp) < (now or time.time()):
        raise LinkExpired()
