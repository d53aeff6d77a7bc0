"""Every JSON body is checked once before any view reads it: nesting depth and lone surrogates.

A string holding half of a UTF-16 pair (`"\\ud800"`) parses in Python but cannot be stored or
answered in UTF-8, and a body nested thousands deep exhausts the parser's recursion: both were
500s. Checked here, they are one 400 in the error shape of the route's API.
"""

from __future__ import annotations

import json

from flask import request

from .errors import DomainError as BadRequest  # status 400, error "bad_request"

MAX_DEPTH = 32  # the deepest body of the API nests 4 levels


def check_request_body() -> None:
    """`before_request`: refuse a JSON body too deep or with text that is not valid Unicode."""
    if not request.is_json:
        return
    data = request.get_data(cache=True)
    if not data.strip():
        return
    try:
        body = json.loads(data)
    except RecursionError:
        raise BadRequest(f"JSON 嵌套层数超过 {MAX_DEPTH} 层") from None
    except ValueError:
        return  # not JSON at all: the parser of the route answers it as it always has
    problem = _problem(body)
    if problem:
        raise BadRequest(problem)


def _problem(body) -> str | None:
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"JSON 嵌套层数超过 {MAX_DEPTH} 层"
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not _encodable(value):
            return "文本含有无效的 Unicode 字符（单独的代理项）"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
