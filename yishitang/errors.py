"""One JSON error shape everywhere: {code, status, error, message, errors}.

Services raise `DomainError`s; HTTP exceptions from Flask and webargs and database outages are
turned into the same shape here, so a client never sees an HTML page or a bare 500.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

import mongoengine
import pymongo.errors
from flask import jsonify
from werkzeug.exceptions import HTTPException

from . import config

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A request the domain refuses; `error` is stable for programs, `message` Chinese for people."""

    status = 400
    error = "bad_request"
    message = "请求有误"

    def __init__(self, message=None, *, error=None, errors=None, headers=None, status=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.error = error or self.error
        self.errors = errors
        self.headers = headers or {}
        self.status = status or self.status


def _refusal(name: str, status: int, error: str, message: str) -> type[DomainError]:
    """A kind of refusal: a `DomainError` subclass with its own status, code and Chinese message."""
    return type(name, (DomainError,), {"status": status, "error": error, "message": message, "__module__": __name__})


InvalidInput = _refusal("InvalidInput", 422, "validation_failed", "提交的内容有误，请检查后重试")
Unauthorized = _refusal("Unauthorized", 401, "unauthorized", "请先登录")
Forbidden = _refusal("Forbidden", 403, "forbidden", "没有权限执行此操作")
NotFound = _refusal("NotFound", 404, "not_found", "内容不存在或无权查看")
Conflict = _refusal("Conflict", 409, "conflict", "操作与当前状态冲突")
PreconditionFailed = _refusal("PreconditionFailed", 412, "stale_version", "内容已被他人修改，请刷新后重试")
PayloadTooLarge = _refusal("PayloadTooLarge", 413, "payload_too_large", "上传内容过大")
RateLimited = _refusal("RateLimited", 429, "rate_limited", "操作过于频繁，请稍后再试")
UpstreamUnavailable = _refusal("UpstreamUnavailable", 503, "upstream_unavailable", "外部服务暂时不可用，请稍后重试")

# Default (error, Chinese message) for HTTP errors raised by Flask, werkzeug and webargs: the
# refusals' own where the status is theirs, so the two never drift apart.
HTTP_DEFAULTS = {
    400: ("bad_request", "请求格式有误"),
    405: ("method_not_allowed", "不支持该请求方法"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    428: ("precondition_required", "请求缺少必要的前置条件"),
    500: ("internal_error", "服务器内部错误，请稍后重试"),
    503: ("service_unavailable", "服务暂时不可用，请稍后重试"),
} | {kind.status: (kind.error, kind.message) for kind in (
    Unauthorized, Forbidden, NotFound, Conflict, PreconditionFailed, PayloadTooLarge, InvalidInput, RateLimited)}

DATABASE_ERRORS = (
    pymongo.errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ServerSelectionTimeout
    pymongo.errors.WaitQueueTimeoutError,
)


def error_response(status: int, error: str, message: str, errors=None, headers=None):
    body = {"code": status, "status": HTTPStatus(status).phrase, "error": error, "message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = str(value)
    return response


def handle_domain_error(exc: DomainError):
    return error_response(exc.status, exc.error, exc.message, exc.errors, exc.headers)


def handle_http_exception(exc: HTTPException):
    code = exc.code or 500
    error, message = HTTP_DEFAULTS.get(code, ("http_error", exc.description or "请求失败"))
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if code == 400 and errors:
        message = "请求体不是有效的 JSON" if "json" in str(errors).lower() else message
    if code == 422 and errors:
        errors = translate(_flatten_locations(errors))
    headers = dict(data.get("headers") or {})
    if code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(code, data.get("error", error), data.get("message_zh", message), errors, headers)


def handle_database_error(exc: Exception):
    log.warning("database unavailable: %s", exc)
    return error_response(
        503,
        "database_unavailable",
        "数据库暂时不可用，请稍后重试",
        headers={"Retry-After": config.settings().retry_after_s},
    )


def handle_unexpected(exc: Exception):
    log.exception("unhandled error")
    return error_response(500, "internal_error", "服务器内部错误，请稍后重试")


# marshmallow's English field messages, in Chinese for the people who read them.
FIELD_MESSAGES = {re.compile(pattern): chinese for pattern, chinese in {
    r"Missing data for required field\.": "必填",
    r"Unknown field\.": "不允许的字段",
    r"Field may not be null\.": "不能为空",
    r"Not a valid string\.": "应为字符串",
    r"Not a valid integer\.": "应为整数",
    r"Not a valid number\.": "应为数字",
    r"Not a valid boolean\.": "应为 true 或 false",
    r"Not a valid list\.": "应为列表",
    r"Not a valid mapping type\.": "应为对象",
    r"Not a valid (datetime|date)\.": "时间格式应为 ISO 8601",
    r"Invalid input type\.": "类型不正确",
    r"Invalid value\.": "取值无效",
    r"String does not match expected pattern\.": "格式不正确",
    r"Length must be between (\d+) and (\d+)\.": r"长度应在 \1 到 \2 之间",
    r"Shorter than minimum length (\d+)\.": r"长度至少为 \1",
    r"Longer than maximum length (\d+)\.": r"长度最多为 \1",
    r"Length must be (\d+)\.": r"长度应为 \1",
    r"Must be one of: (.*)\.": r"应为以下之一：\1",
    r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.": r"应在 \1 到 \2 之间",
    r"Must be greater than or equal to (\S+)\.": r"应不小于 \1",
    r"Must be less than or equal to (\S+)\.": r"应不大于 \1",
    r"Must be greater than (\S+)\.": r"应大于 \1",
}.items()}


def translate(messages):
    """Field errors, recursively, with marshmallow's English replaced by Chinese where known."""
    if isinstance(messages, dict):
        return {key: translate(value) for key, value in messages.items()}
    if isinstance(messages, list):
        return [translate(value) for value in messages]
    if isinstance(messages, str):
        for pattern, chinese in FIELD_MESSAGES.items():
            if found := pattern.fullmatch(messages):
                return found.expand(chinese)
    return messages


def _flatten_locations(errors: dict) -> dict:
    """webargs nests field errors under the location ("json", "query"); clients want the fields."""
    if isinstance(errors, dict) and set(errors) <= {"json", "query", "form", "files", "headers", "view_args"}:
        flat: dict = {}
        for value in errors.values():
            if isinstance(value, dict):
                flat.update(value)
            else:
                flat.setdefault("_schema", value)
        return flat
    return errors


def register(app) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    for exc in DATABASE_ERRORS:
        app.register_error_handler(exc, handle_database_error)
    app.register_error_handler(mongoengine.DoesNotExist, lambda e: handle_domain_error(NotFound()))
    app.register_error_handler(Exception, handle_unexpected)
