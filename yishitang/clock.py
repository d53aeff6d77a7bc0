"""Times as people see them: ISO 8601 in the display time zone (`YISHITANG_TZ`, +08:00 by default)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import has_app_context

from . import config

DEFAULT_TZ = "Asia/Shanghai"


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def display_zone() -> ZoneInfo:
    return _zone(config.settings().tz if has_app_context() else DEFAULT_TZ)


def local(value: dt.datetime | None) -> dt.datetime | None:
    """A stored (UTC, possibly naive) time in the display zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(display_zone())


def shown(value: dt.datetime | None) -> str | None:
    """`2026-12-02T18:49:10.123000+08:00`: the one way every time leaves the API."""
    value = local(value)
    return value.isoformat() if value is not None else None
