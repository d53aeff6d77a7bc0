"""Routes: GeoReport v2 under /open311/v2 (plain Flask, its own error shape, outside the OpenAPI
contract; README documents it) and the admin routes for integrations under /api/v1 (OpenAPI)."""

from __future__ import annotations

import logging

import marshmallow as ma
from flask import Blueprint as FlaskBlueprint
from flask import current_app, request
from flask.views import MethodView
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .. import config, errors
from ..api import Blueprint, paginate
from ..auth import current_user
from . import render, service
from .schemas import (
    IntegrationCreatedSchema,
    IntegrationCreateSchema,
    IntegrationSchema,
    JurisdictionSchema,
    RequestQuerySchema,
    ServiceRequestSchema,
)

log = logging.getLogger(__name__)
FORMAT = "<any(json, xml):fmt>"

blp = FlaskBlueprint("open311", __name__, url_prefix="/open311/v2")


# --- GeoReport v2 ---------------------------------------------------------------------------------------

def _fields(source) -> dict:
    """A multidict as plain fields; a repeated field is joined like the standard's comma lists."""
    return {key: ",".join(values) if len(values) > 1 else values[0] for key, values in source.lists()}


def _posted() -> dict:
    """POST fields: form-encoded as the standard says (JSON accepted too), over the query string."""
    fields = _fields(request.args)
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise service.BadRequest("请求体不是有效的 JSON 对象", error="invalid_json")
        fields.update(body)
    else:
        fields.update(_fields(request.form))
    return fields


def _load(schema: ma.Schema, fields: dict) -> dict:
    try:
        return schema.load(fields)
    except ma.ValidationError as exc:
        raise errors.InvalidInput(errors=errors.translate(exc.normalized_messages())) from None


@blp.before_request
def count_reads():
    if request.method in ("GET", "HEAD"):
        service.count_reading()


@blp.after_request
def public_reads(response):
    # Public data for outside dashboards in the browser; no credentials are involved.
    if request.method in ("GET", "HEAD"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@blp.get("/")
@blp.get(f"/discovery.{FORMAT}")
def discovery(fmt="xml"):
    """Service discovery: the endpoint, its formats, whom to ask for an api key."""
    url = request.url_root.rstrip("/") + blp.url_prefix
    return render.document(fmt, "discovery", service.discovery(url))


@blp.get(f"/services.{FORMAT}")
def services(fmt):
    """One service per issue category."""
    args = _load(JurisdictionSchema(), _fields(request.args))
    return render.document(fmt, "services", service.services(**args))


@blp.get(f"/services/<service_code>.{FORMAT}")
def service_definition(service_code, fmt):
    """The studio attribute of a service, with the active studios as its values."""
    args = _load(JurisdictionSchema(), _fields(request.args))
    return render.document(fmt, "service_definition", service.service_definition(service_code, **args))


@blp.get(f"/requests.{FORMAT}")
def requests_list(fmt):
    """Public issues, newest first, at most 90 days and 1000 per page."""
    args = _load(RequestQuerySchema(), _fields(request.args))
    return render.document(fmt, "service_requests", service.find_requests(**args))


@blp.post(f"/requests.{FORMAT}")
def requests_create(fmt):
    """File a request with an api key; it goes to the studio named or the nearest one."""
    fields = _posted()
    integration = service.authenticate(fields.pop("api_key", None))
    service.count_filing(integration)
    args = _load(ServiceRequestSchema(), fields)
    return render.document(fmt, "service_requests", service.file_request(integration, **args), status=201)


@blp.get(f"/requests/<service_request_id>.{FORMAT}")
def request_one(service_request_id, fmt):
    """One request, as a one-element list."""
    args = _load(JurisdictionSchema(), _fields(request.args))
    return render.document(fmt, "service_requests", service.get_request(service_request_id, **args))


@blp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def elsewhere(rest):
    """Unknown paths, formats and methods under /open311/v2 answer in the GeoReport error shape too."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != f"{blp.name}.elsewhere":
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise errors.NotFound("没有这个 Open311 地址（格式请用 .xml 或 .json）", error="unknown_route")


def _format() -> str:
    fmt = (request.view_args or {}).get("fmt")
    return fmt if fmt in render.MIMETYPES else ("json" if request.path.endswith(".json") else "xml")


@blp.errorhandler(Exception)
def georeport_error(exc):
    """Every error under /open311 as `<errors><error><code/><description/></error></errors>` (or JSON)."""
    headers = {}
    if isinstance(exc, errors.DomainError):
        status = 400 if exc.status == 422 else exc.status  # the standard: 400 for any request it cannot fulfil
        descriptions = ([f"{field}：{'；'.join(_flat(messages))}" for field, messages in exc.errors.items()]
                        if exc.errors else [exc.message])
        headers = exc.headers
    elif isinstance(exc, HTTPException):
        status = exc.code or 500
        descriptions = [errors.HTTP_DEFAULTS.get(status, ("", "请求失败"))[1]]
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers = {"Allow": ", ".join(exc.valid_methods)}
    elif isinstance(exc, errors.DATABASE_ERRORS):
        log.warning("database unavailable: %s", exc)
        status, descriptions = 503, ["数据库暂时不可用，请稍后重试"]
        headers = {"Retry-After": config.settings().retry_after_s}
    else:
        log.exception("unhandled error")
        status, descriptions = 500, ["服务器内部错误，请稍后重试"]
    body = [{"code": status, "description": description} for description in descriptions]
    return render.document(_format(), "errors", body, status=status, headers=headers)


def _flat(messages) -> list[str]:
    """Field messages, nested ones (`attribute.studio`) named by their key."""
    if isinstance(messages, dict):
        return [f"{key}：{'；'.join(_flat(value))}" for key, value in messages.items()]
    if isinstance(messages, list):
        return [item for message in messages for item in _flat(message)]
    return [str(messages)]


# --- integrations (admins) --------------------------------------------------------------------------------

integrations_blp = Blueprint(
    "integrations", __name__, url_prefix="/api/v1/integrations",
    description="Open311 接入：外部系统（如 12345 热线）的 api_key。GeoReport v2 接口本身在 /open311/v2，"
                "使用该标准的 XML/JSON 与错误格式，不在本 OpenAPI 文档中，见 README。")


@integrations_blp.route("")
class Integrations(MethodView):
    @integrations_blp.login_required(roles=("admin",))
    @integrations_blp.response(200, IntegrationSchema(many=True))
    @integrations_blp.paginate()
    def get(self, pagination_parameters):
        """Integrations, newest first (their keys are never shown again)."""
        return [service.view_integration(i) for i in paginate(service.integrations(), pagination_parameters)]

    @integrations_blp.login_required(roles=("admin",))
    @integrations_blp.arguments(IntegrationCreateSchema)
    @integrations_blp.response(201, IntegrationCreatedSchema)
    def post(self, args):
        """Issue an api key to a named integration; the key is in this answer only.

        Only its SHA-256 is stored. What the integration files is recorded under an account of its
        own, with the person's name and contact visible to staff only.
        """
        integration, api_key = service.create_integration(args["name"], args["contact"], current_user())
        return service.view_integration(integration, api_key)


@integrations_blp.route("/<integration_id>")
@integrations_blp.login_required(roles=("admin",))
@integrations_blp.response(200, IntegrationSchema)
def get_integration(integration_id):
    """One integration (without its key)."""
    return service.view_integration(service.get_integration(integration_id))


@integrations_blp.route("/<integration_id>/revoke", methods=["POST"])
@integrations_blp.doc(operationId="revoke_integration")
@integrations_blp.login_required(roles=("admin",))
@integrations_blp.response(200, IntegrationSchema)
@integrations_blp.alt_response(409, response="DEFAULT_ERROR", description="integration_revoked")
def revoke(integration_id):
    """Revoke an integration's api key at once; what it filed stays."""
    return service.view_integration(service.revoke_integration(integration_id, current_user()))
