"""The integrations admin API (OpenAPI) and the GeoReport parameters (plain form and query fields)."""

from __future__ import annotations

import datetime as dt
import re

from zoneinfo import ZoneInfo

import marshmallow as ma
from marshmallow import validate

from .. import config

MAX_PAGE_SIZE = 1000


# --- /api/v1/integrations ------------------------------------------------------------------------

class IntegrationCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(1, 60),
                            metadata={"description": "e.g. 12345 市民服务热线"})
    contact = ma.fields.String(required=True, validate=validate.Length(1, 200),
                               metadata={"description": "who answers for the integration: person, phone, e-mail"})


class IntegrationSchema(ma.Schema):
    id = ma.fields.String()
    name = ma.fields.String()
    contact = ma.fields.String()
    key_prefix = ma.fields.String(metadata={"description": "the key's first characters, to tell keys apart"})
    account_id = ma.fields.String(metadata={"description": "the account recorded as reporter of what it files"})
    active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    created_by = ma.fields.String(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)
    last_used_at = ma.fields.DateTime(allow_none=True)
    requests_count = ma.fields.Integer(metadata={"description": "requests filed with this key"})


class IntegrationCreatedSchema(IntegrationSchema):
    api_key = ma.fields.String(metadata={"description": "shown once, here; only its SHA-256 is stored"})


# --- GeoReport parameters ----------------------------------------------------------------------------

class CommaList(ma.fields.Field):
    """`a,b,c` (the standard's comma lists); blanks dropped, order kept, repeats once."""

    def __init__(self, item: ma.fields.Field, max_items: int = MAX_PAGE_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.item, self.max_items = item, max_items

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ma.ValidationError("应为逗号分隔的列表")
        parts = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        if len(parts) > self.max_items:
            raise ma.ValidationError(f"最多 {self.max_items} 项")
        return [self.item.deserialize(part) for part in parts]


class W3DateTime(ma.fields.Field):
    """ISO 8601 as the w3 note has it (`2026-05-01T00:00:00Z`, `...+08:00`, or a date);
    without an offset the time is read in YISHITANG_TZ."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parsed = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ma.ValidationError("时间格式应为 W3C 日期时间，例如 2026-05-01T00:00:00+08:00") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(config.settings().tz))
        return parsed.astimezone(dt.timezone.utc)


class GeoReportSchema(ma.Schema):
    """Unknown parameters are ignored and empty ones count as absent, as the standard says."""

    class Meta:
        unknown = ma.EXCLUDE

    @ma.pre_load
    def _prepare(self, data, **kwargs):
        return self.prepare({key: value for key, value in data.items() if value not in ("", None)})

    def prepare(self, data: dict) -> dict:
        return data


class JurisdictionSchema(GeoReportSchema):
    jurisdiction_id = ma.fields.String(validate=validate.Length(1, 40))


class RequestQuerySchema(JurisdictionSchema):
    service_request_id = CommaList(ma.fields.String(validate=validate.Length(1, 40)))
    service_code = CommaList(ma.fields.String(validate=validate.Length(1, 40)), max_items=50)
    start_date = W3DateTime()
    end_date = W3DateTime()
    status = CommaList(ma.fields.String(validate=validate.OneOf(("open", "closed"), error="应为 open 或 closed")),
                       max_items=2)
    # Bounded: a page number past 64 bits once reached the database as a skip and failed (500).
    page = ma.fields.Integer(load_default=1, validate=validate.Range(1, 100_000, error="应在 1 到 100000 之间"),
                             error_messages={"invalid": "应为整数"})
    page_size = ma.fields.Integer(load_default=MAX_PAGE_SIZE,
                                  validate=validate.Range(1, MAX_PAGE_SIZE, error=f"应在 1 到 {MAX_PAGE_SIZE} 之间"),
                                  error_messages={"invalid": "应为整数"})


ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](?:\[\])?$")  # attribute[code], attribute[code][]
PHONE = re.compile(r"^\+?[0-9][0-9\- ()]{4,19}$")
COORDINATE_ERROR = {"invalid": "坐标应为数字", "special": "坐标应为有限的数字"}


class ServiceRequestSchema(JurisdictionSchema):
    """POST requests: form fields as the standard has them (`attribute[studio]=<id>`), or JSON."""

    service_code = ma.fields.String(required=True, validate=validate.Length(1, 40), error_messages={"required": "必填"})
    lat = ma.fields.Float(validate=validate.Range(-90, 90, error="纬度应在 -90 到 90 之间"), error_messages=COORDINATE_ERROR)
    long = ma.fields.Float(validate=validate.Range(-180, 180, error="经度应在 -180 到 180 之间"),
                           error_messages=COORDINATE_ERROR)
    address_string = ma.fields.String(validate=validate.Length(max=200, error="最多 200 个字"))
    address_id = ma.fields.String()
    attribute = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), load_default=dict)
    description = ma.fields.String(required=True, error_messages={"required": "必填"},
                                   validate=validate.Length(5, 2000, error="长度应在 5 到 2000 个字之间"))
    media_url = ma.fields.Url(schemes={"http", "https"}, validate=validate.Length(max=1000),
                              error_messages={"invalid": "应为 http(s) 网址"})
    first_name = ma.fields.String(validate=validate.Length(max=40, error="最多 40 个字"))
    last_name = ma.fields.String(validate=validate.Length(max=40, error="最多 40 个字"))
    phone = ma.fields.String(validate=validate.Regexp(PHONE, error="电话号码格式不正确"))
    email = ma.fields.Email(validate=validate.Length(max=100), error_messages={"invalid": "电子邮箱格式不正确"})
    device_id = ma.fields.String(validate=validate.Length(max=100))
    account_id = ma.fields.String(validate=validate.Length(max=100))

    def prepare(self, data: dict) -> dict:
        """`attribute[studio]=x` (form) and `{"attribute": {"studio": x}}` (JSON) alike."""
        attributes = data.pop("attribute", {})
        if not isinstance(attributes, dict):
            raise ma.ValidationError({"attribute": ["应为 attribute[代码]=值"]})
        for key in [k for k in data if ATTRIBUTE.match(k)]:
            attributes[ATTRIBUTE.match(key).group(1)] = data.pop(key)
        data["attribute"] = {str(key): str(value).strip() for key, value in attributes.items()
                             if value not in ("", None)}
        if isinstance(data.get("description"), str):
            data["description"] = data["description"].strip()
        return data

    @ma.validates_schema
    def located(self, data, **kwargs):
        if ("lat" in data) != ("long" in data):
            raise ma.ValidationError("lat 和 long 须同时提供", "location")
        if "lat" not in data and not data.get("address_string"):
            raise ma.ValidationError("须提供位置：lat 和 long，或 address_string（不支持 address_id）", "location")

    @ma.post_load
    def tidy(self, data, **kwargs):
        if "phone" in data:
            data["phone"] = re.sub(r"[\s\-()]", "", data["phone"])
        return data
