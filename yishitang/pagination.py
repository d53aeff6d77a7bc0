"""Cursor pages for infinite scroll: `?cursor=` continues a list after the last item a phone shows.

A cursor holds the sort key of the last item sent (e.g. its `created_at` and `_id`), the list it
belongs to (path, filters, caller) and an expiry, signed with the app's key. The next page is the
items strictly after that key in the list's order, read on the list's own index, so it costs the
same at any depth and items inserted meanwhile (newer, hence before the cursor) are neither
repeated nor skipped. `page` stays for the dashboard, with its count in `X-Pagination`.

Any list adopts it with `pagination.page(query, pagination_parameters, order)` in the view,
`@blp.cursor_list()` on it, and an index whose fields end with the `order` keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time

from bson import ObjectId
from bson.errors import InvalidId
from flask import g, request

from . import config
from .errors import InvalidInput

NEWEST = (("created_at", -1), ("_id", -1))
CURSOR_TTL_S = 6 * 3600  # long enough for a scroll session, short enough that it is not a bookmark
NOT_FILTERS = {"cursor", "page", "page_size"}


class BadCursor(InvalidInput):
    status, error, message = 400, "bad_cursor", "翻页参数无效，请从第一页重新加载"


class CursorExpired(InvalidInput):
    status, error, message = 400, "cursor_expired", "翻页参数已过期，请从第一页重新加载"


def page(query, pagination_parameters, order=NEWEST):
    """One page of a mongoengine queryset sorted by `order`: by cursor when the request has
    `cursor` (an empty one starts the list, without counting it), else by page number."""
    size = pagination_parameters.page_size
    raw = request.args.get("cursor")
    if raw is None:
        pagination_parameters.item_count = query.count()
        first = pagination_parameters.first_item
        items = [] if first >= pagination_parameters.item_count else list(query.skip(first).limit(size))
        more = first + len(items) < pagination_parameters.item_count
    else:
        pagination_parameters.by_cursor = True
        pagination_parameters.item_count = 0  # not counted: a cursor page never reads the whole list
        items = list(query.limit(size + 1)) if not raw else _after(query, decode(raw), order, size + 1)
        more, items = len(items) > size, items[:size]
    if more and items:
        pagination_parameters.next_cursor = encode([_value(items[-1], key) for key, _ in order])
    return items


def _after(query, last: list, order, wanted: int) -> list:
    """The first `wanted` items strictly after `last` in `order`. The query is a plain range on the
    first key (from the cursor's value on), which every database walks on the list's index; the
    few items that share that value and come before the cursor are skipped here."""
    (first, first_dir), (second, second_dir) = order
    items = []
    for item in query.filter(__raw__={first: {"$lte" if first_dir < 0 else "$gte": last[0]}}):
        if _value(item, first) == last[0]:
            tie = _value(item, second)
            if (tie >= last[1]) if second_dir < 0 else (tie <= last[1]):
                continue  # shown already: at the cursor's time, not past it
        items.append(item)
        if len(items) == wanted:
            break
    return items


def _value(item, key):
    value = item.get(key) if isinstance(item, dict) else getattr(item, "id" if key == "_id" else key)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def _scope() -> str:
    """The list a cursor belongs to: the path, its filters and the caller."""
    filters = sorted((k, v) for k, v in request.args.items(multi=True) if k not in NOT_FILTERS)
    user = g.get("user")
    text = json.dumps([request.path, filters, str(user.id) if user is not None else None])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sign(body: bytes) -> str:
    key = ("cursor:" + config.settings().signing_key).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()[:32]


def _plain(value):
    if isinstance(value, dt.datetime):
        return {"t": round(value.timestamp() * 1000)}  # MongoDB keeps milliseconds
    if isinstance(value, ObjectId):
        return {"o": str(value)}
    return value


def _typed(value):
    if isinstance(value, dict) and set(value) == {"t"} and isinstance(value["t"], int):
        return dt.datetime.fromtimestamp(value["t"] / 1000, dt.timezone.utc)
    if isinstance(value, dict) and set(value) == {"o"}:
        try:
            return ObjectId(value["o"])
        except (InvalidId, TypeError):
            raise BadCursor() from None
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise BadCursor()


def encode(values: list, now: float | None = None) -> str:
    body = json.dumps({"k": [_plain(v) for v in values], "s": _scope(),
                       "e": int((now or time.time()) + CURSOR_TTL_S)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + _sign(body)


def decode(cursor: str, now: float | None = None) -> list:
    """The sort key a cursor continues after; 400 when it is not ours, not for this list, or too old."""
    text, _, signature = cursor.partition(".")
    try:
        body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise BadCursor() from None
    if len(cursor) > 500 or not hmac.compare_digest(_sign(body).encode(), signature.encode()):
        raise BadCursor()
    data = json.loads(body)
    if data.get("s") != _scope() or len(data.get("k") or ()) != 2:
        raise BadCursor()
    if data.get("e", 0) < (now or time.time()):
        raise CursorExpired()
    return [_typed(v) for v in data["k"]]
