"""What WeChat accepts, for the fake (`fakewechat.py`): where each call reads its input, and the
limits of subscribe-message values. Kept apart from the client's own tables on purpose: the fake
checks the client, so it must not share its mistakes.
"""

from __future__ import annotations

import re

# Value limits by key kind ("thing1" -> "thing"); longer values get 47003.
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
# Where each call reads its input, as WeChat does: the access token only ever from the query string.
QUERY_INPUT = {"/sns/jscode2session", "/cgi-bin/token"}
BODY_INPUT = {"/cgi-bin/stable_token"}


def input_of(path: str, query: dict, body: dict) -> dict:
    """What the endpoint reads: the query string for GET calls, the JSON body for stable_token, else the
    JSON body and the access token from the query string (one sent in the body is not seen: 41001)."""
    if path in QUERY_INPUT:
        return dict(query)
    if path in BODY_INPUT:
        return dict(body)
    params = {k: v for k, v in body.items() if k != "access_token"}
    if "access_token" in query:
        params["access_token"] = query["access_token"]
    return params


def value_problem(key: str, value) -> str | None:
    """Why WeChat would refuse this template value (47003), or None."""
    if not isinstance(value, str) or not value:
        return "is empty"
    kind = re.sub(r"\d+$", "", key)
    limit = VALUE_LIMITS.get(kind)
    if limit is not None and len(value) > limit:
        return f"exceeds limit {limit}"
    return None
