"""Api and Blueprint subclasses: authentication and roles documented in OpenAPI, pagination."""

from __future__ import annotations

import inspect
import json
import re
from functools import wraps

import flask_smorest
import marshmallow as ma
from flask import g, request

from flask_smorest.pagination import PaginationMetadataSchema

from . import auth, errors
from .idempotency import idempotent_route


class ErrorSchema(ma.Schema):
    """The one error payload of the API."""

    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    error = ma.fields.String(metadata={"description": "stable snake_case error code for programs"})
    message = ma.fields.String(metadata={"description": "Chinese message for people"})
    errors = ma.fields.Dict(metadata={"description": "field errors, by field name"})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error):
        return errors.handle_http_exception(error)

    def _register_pagination_header(self):
        """`X-Pagination` is a JSON object: say so (`content`), so validators parse it as JSON
        rather than as a comma-separated "simple" header."""
        self.spec.components.schema("PaginationMetadata", schema=PaginationMetadataSchema, lazy=True)
        self.spec.components.header("PAGINATION", {
            "description": "Pagination metadata (JSON), for `page` lists",
            "content": {"application/json": {"schema": "PaginationMetadata"}},
        }, lazy=True)


class Blueprint(flask_smorest.Blueprint):
    def add_url_rule(self, rule, endpoint=None, view_func=None, provide_automatic_options=None, **options):
        """Also document the errors every route of a kind can give, so clients see them in the spec:
        404 where the path names an object, 400 where a JSON body may not parse."""
        super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)
        methods = [m for m, doc in self._docs[self._endpoints[-1]].items() if m != "parameters" and doc is not None]
        for method, doc in self._docs[self._endpoints[-1]].items():
            if method == "parameters" or doc is None:
                continue
            manual = doc.setdefault("manual_doc", {})
            manual.setdefault("operationId", operation_id(self._endpoints[-1], method, view_func, len(methods)))
            responses = doc.setdefault("response", {}).setdefault("responses", {})
            if "<" in rule:
                responses.setdefault(404, [DEFAULT_ERROR])
            if any(p.get("in") == "json" for p in doc.get("arguments", {}).get("parameters", [])):
                responses.setdefault(400, [DEFAULT_ERROR])

    def _set_pagination_metadata(self, page_params, result, headers):
        """`X-Next-Cursor` when there is a next page; `X-Pagination` only for numbered pages."""
        headers = dict(headers or {})
        if getattr(page_params, "next_cursor", None):
            headers["X-Next-Cursor"] = page_params.next_cursor
        if getattr(page_params, "by_cursor", False):
            return result, headers
        return super()._set_pagination_metadata(page_params, result, headers)

    def cursor_list(self):
        """`?cursor=` on a list read with `pagination.page` (the view takes `cursor=None`, unused:
        the page reads it); document `X-Next-Cursor` with `headers=NEXT_CURSOR` on its response."""
        def decorator(func):
            func = self.arguments(CursorQuerySchema, location="query", as_kwargs=True)(func)
            return self.alt_response(400, response=DEFAULT_ERROR, description="bad_cursor, cursor_expired")(func)
        return decorator

    def login_required(self, roles: tuple[str, ...] | None = None):
        """Require a valid access token (and one of `roles`); documents 401/403 and security."""

        def decorator(func):
            @wraps(func)
            def wrapper(*args, **kwargs):
                auth.authenticate(roles)
                return func(*args, **kwargs)

            wrapper = self.doc(security=[{"bearerAuth": []}])(wrapper)
            wrapper = self.alt_response(401, response=DEFAULT_ERROR, description="未登录或令牌无效")(wrapper)
            wrapper = self.alt_response(403, response=DEFAULT_ERROR, description="角色或辖区不符")(wrapper)
            if roles:
                wrapper._apidoc.setdefault("manual_doc", {})
                details = inspect.cleandoc(func.__doc__ or "").partition("\n")[2].strip()  # after the summary
                wrapper._apidoc["manual_doc"]["description"] = f"{details}\n\nRoles: {', '.join(roles)}.".strip()
            return wrapper

        return decorator


    def errors(self, descriptions: dict[int, str]):
        """Document the error responses a route gives besides those every route has: {status: when}."""

        def decorator(func):
            for status, description in descriptions.items():
                func = self.alt_response(status, response=DEFAULT_ERROR, description=description)(func)
            return func

        return decorator

    def list_route(self, query_schema, item_schema, roles: tuple[str, ...] | None = None, cursor: bool = False):
        """A paginated list for `roles`: query arguments in, a page of `item_schema` items out;
        with `cursor`, also `?cursor=` and `X-Next-Cursor` (the view reads it with `pagination.page`)."""

        def decorator(func):
            if cursor:
                func = self.cursor_list()(func)
            func = self.paginate()(func)
            func = self.response(200, item_schema(many=True), headers=NEXT_CURSOR if cursor else None)(func)
            func = self.arguments(query_schema, location="query")(func)
            return self.login_required(roles=roles)(func)

        return decorator

    def command(self, body_schema, response_schema, roles: tuple[str, ...] | None = None, status: int = 200,
                errors: dict[int, str] | None = None):
        """A write for `roles`: a JSON body of `body_schema` in, safe to retry with an Idempotency-Key,
        `response_schema` out with `status`; `errors` as in `errors`."""

        def decorator(func):
            func = self.errors(errors or {})(func)
            func = self.response(status, response_schema)(func)
            func = self.arguments(body_schema)(func)
            func = idempotent_route(self)(func)
            return self.login_required(roles=roles)(func)

        return decorator


DEFAULT_ERROR = "DEFAULT_ERROR"
STALE = "If-Match names an older version"  # the 412 of a write that sends If-Match


def etag(version: int) -> str:
    """A resource's version as its ETag: what `expected_version` reads back from If-Match."""
    return f'"{version}"'


def with_etag(body: dict, version: int, status: int = 200):
    """A response whose ETag carries the resource's version."""
    return body, status, {"ETag": etag(version)}


class CursorQuerySchema(ma.Schema):
    cursor = ma.fields.String(validate=ma.validate.Length(max=500), metadata={
        "description": "Infinite scroll: empty to start (no count is made), then the previous answer's "
                       "`X-Next-Cursor`. Without it, `page` numbers the pages (`X-Pagination`)."})


NEXT_CURSOR = {"X-Next-Cursor": {"description": "continues the list after this page (`?cursor=`); absent on the last page",
                                 "schema": {"type": "string"}}}


def binary(description: str, *content_types: str, status: int = 200) -> dict:
    """A response of raw bytes, for `@blp.doc(responses=...)`: OpenAPI 3.1 describes one by its media
    types alone (no schema), so validators take the bytes as they are and clients do not parse them."""
    return {str(status): {"description": description, "content": {kind: {} for kind in content_types}}}


def operation_id(endpoint: str, method: str, view, methods: int) -> str:
    """A generated client's function name: `get_issue`, `post_supports`, `get_studio_by_id`.
    Views name themselves with `@blp.doc(operationId=...)` where the default reads badly."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", endpoint).lower()
    if isinstance(view, type) or methods > 1:
        return f"{method}_{name}"
    return name


def default_in_words(_converter, field, ret, **_):
    """A request field the server fills in is optional: its default goes in the description
    (openapi-typescript and others read a `default` as "always present")."""
    if "default" not in ret or field.load_default is ma.missing:
        return {}
    shown = json.dumps(ret.pop("default"), ensure_ascii=False)
    description = ret.get("description")
    return {"description": f"{description} (default: {shown})" if description else f"default: {shown}"}


def shown_by(present):
    """A feature's `shown(document, status, seen)`: the document shaped for the caller by
    `present(document, user, access=seen)` (`seen`: what they may do, when already decided), with its ETag."""

    def shown(document, status: int = 200, seen=None):
        return with_etag(present(document, auth.current_user(), access=seen), document.version, status)

    return shown


def expected_version():
    """`If-Match: "7"` -> 7 (the resource's version, as its ETag says); a value that names no
    version of ours is simply stale (412)."""
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    try:
        return int(value.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise errors.PreconditionFailed() from None


def paginate(query, pagination_parameters):
    """Page a mongoengine queryset the flask-smorest way (X-Pagination header)."""
    first, size = pagination_parameters.first_item, pagination_parameters.page_size
    if isinstance(query, list):  # already materialised, e.g. an aggregation sorted by distance
        pagination_parameters.item_count = len(query)
        return query[first:first + size]
    pagination_parameters.item_count = query.count()
    if first >= pagination_parameters.item_count:
        return []  # past the last page, however far (a skip beyond 64 bits would not even encode)
    return query.skip(first).limit(size)


def private_answers(response):
    """`after_request`: what a signed-in caller gets is theirs, kept by no cache even without nginx."""
    if response.mimetype == "application/json":
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.headers.get("Authorization") or g.get("user") is not None:
            response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app) -> Api:
    app.after_request(private_answers)
    api = Api(app, spec_kwargs={
        "info": {"description": API_DESCRIPTION},
        "servers": [{"url": "/"}],
    })
    converter = api.ma_plugin.converter
    converter.add_attribute_function(default_in_words)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    return api


API_DESCRIPTION = """议事堂 (Yishitang) API: grassroots consultation on livelihood problems.

All JSON routes live under `/api/v1`. Errors share one shape:
`{"code", "status", "error", "message", "errors"}` where `error` is a stable snake_case code and
`message` is Chinese text for people. Lists take `page` and `page_size` (max 100); the pagination
metadata is in the `X-Pagination` header. Times are ISO 8601 with offset, stored in UTC.

Decisions where the contract is silent:
- Regions and studios are readable by every signed-in user (the mini-program signs in silently
  at start); writes are for admins, member assignment also for coordinators whose scope covers
  the studio.
- A studio's `member_ids` is derived from the members' `studio_ids` (one source of truth).
- `POST /auth/logout` revokes the refresh-token family of the calling session; the short-lived
  access token simply expires.
- Phone numbers are masked (`138****5678`) except for the user themself and admins.
"""
