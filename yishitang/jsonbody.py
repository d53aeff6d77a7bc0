"""Every request body is checked once before any view reads it: nesting depth, and text that is
not valid Unicode or hides characters a reader cannot see.

A string holding half of a UTF-16 pair (`"\\ud800"`) parses in Python but cannot be stored or
answered in UTF-8, and a body nested thousands deep exhausts the parser's recursion: both were
500s, and are one 400 here. NUL, other control characters, invisible and bidirectional-override
characters make a title or a name read differently from what it holds (or break a calendar
file): any text field holding one is refused with 422, naming the field.
"""

from __future__ import annotations

import json
import re

from flask import request

from .errors import DomainError as BadRequest  # status 400, error "bad_request"
from .errors import InvalidInput

MAX_DEPTH = 32  # the deepest body of the API nests 4 levels
# Control characters but tab and newlines, format characters (zero-width, bidirectional marks,
# embeddings, overrides and isolates, BOM, soft hyphen, invisible operators), line and paragraph
# separators. The zero-width joiner stays: emoji sequences (👨‍👩‍👧) need it.
HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b\u200c\u200e\u200f"
                    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]")
HIDDEN_MESSAGE = "不能含有不可见字符、控制字符或文字方向控制符"


def check_request_body() -> None:
    """`before_request`: refuse a body too deep, with text that is not Unicode, or hidden characters."""
    if request.is_json:
        data = request.get_data(cache=True)
        if not data.strip():
            return
        try:
            body = json.loads(data)
        except RecursionError:
            raise BadRequest(f"JSON 嵌套层数超过 {MAX_DEPTH} 层") from None
        except ValueError:
            return  # not JSON at all: the parser of the route answers it as it always has
        _check(body)
    elif request.mimetype == "application/x-www-form-urlencoded":  # Open311 filings
        _check(request.form.to_dict())


def _check(body) -> None:
    """Broken Unicode anywhere is a 400 whatever else the body holds; hidden characters a 422."""
    stack, hidden = [(body, 1, "")], None
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"JSON 嵌套层数超过 {MAX_DEPTH} 层")
        if isinstance(value, dict):
            stack.extend((key, depth, path) for key in value)
            stack.extend((item, depth + 1, f"{path}.{key}".lstrip(".")) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, depth + 1, f"{path}.{n}".lstrip(".")) for n, item in enumerate(value))
        elif isinstance(value, str):
            if not _encodable(value):
                raise BadRequest("文本含有无效的 Unicode 字符（单独的代理项）")
            if hidden is None and HIDDEN.search(value):
                hidden = path or "_body"
    if hidden is not None:
        raise InvalidInput(errors={hidden: [HIDDEN_MESSAGE]})


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
