"""Open311 GeoReport v2 over the issues: what outside tools may read, and filing with an api key.

Everything read here goes through the public board's view of an issue (`issues.presenters.view`
with no viewer), so an outside reader sees exactly what a neighbour sees and nothing more:
no phone, no reporter's name, no issue held for review, no photo.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bson import ObjectId

from .. import config
from ..db import as_utc, get_or_404, utcnow
from ..errors import Conflict, DomainError, Forbidden, NotFound
from ..issues import presenters, queries, transitions
from ..issues import service as issues
from ..issues.models import CATEGORIES, CATEGORY_NAMES
from ..ratelimit import Rule, client_ip, hit
from ..regions import service as regions
from ..regions.models import Region
from ..studios import service as studios
from ..studios.models import Studio
from ..users.models import User
from . import catalog
from .models import Integration

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
MAX_SPAN = dt.timedelta(days=90)  # the standard's longest start_date..end_date range and its default
KEY_PREFIX = "yst_"
CJK = re.compile("[\u3400-\u9fff]")


class BadRequest(DomainError):
    status, error, message = 400, "bad_request", "请求有误"



def w3(value: dt.datetime | str | None) -> str | None:
    """The standard's date format (ISO 8601 with offset), in the deployment's time zone."""
    if value is None:
        return None
    if isinstance(value, str):  # the issue views give times as ISO 8601 already
        value = dt.datetime.fromisoformat(value)
    return as_utc(value).astimezone(ZoneInfo(config.settings().tz)).isoformat(timespec="seconds")


# --- integrations and their api keys -----------------------------------------------------------------

def _key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_integration(name: str, contact: str, actor) -> tuple[Integration, str]:
    """A new integration with its own reporter account; the key is returned here and never again."""
    account = User(display_name=f"{name}（Open311 接入）", roles=["resident"])
    account.save(force_insert=True)
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    integration = Integration(name=name, contact=contact, key_hash=_key_hash(api_key),
                              key_prefix=api_key[:len(KEY_PREFIX) + 6], account_id=account.id, created_by=actor.id)
    integration.save(force_insert=True)
    return integration, api_key


def integrations():
    return Integration.objects.order_by("-created_at", "-id")


def get_integration(integration_id) -> Integration:
    return get_or_404(Integration, integration_id)


def revoke_integration(integration_id, actor) -> Integration:
    """The key stops working at once, in every process (each request looks it up)."""
    integration = get_integration(integration_id)
    revoked = Integration.objects(id=integration.id, revoked_at=None).update(
        set__revoked_at=utcnow(), set__revoked_by=actor.id)
    if not revoked:
        raise Conflict("该接入的 api_key 已吊销", error="integration_revoked")
    User.objects(id=integration.account_id).update(set__active=False)
    integration.reload()
    return integration


def view_integration(integration: Integration, api_key: str | None = None) -> dict:
    result = {
        "id": str(integration.id), "name": integration.name, "contact": integration.contact,
        "key_prefix": integration.key_prefix, "account_id": str(integration.account_id),
        "active": integration.active, "created_at": integration.created_at,
        "created_by": str(integration.created_by) if integration.created_by else None,
        "revoked_at": integration.revoked_at, "last_used_at": integration.last_used_at,
        "requests_count": integration.requests_count,
    }
    if api_key:
        result["api_key"] = api_key
    return result


def authenticate(api_key: str | None) -> Integration:
    """The integration behind an api key; a missing, unknown or revoked key is 403."""
    if api_key is not None and not isinstance(api_key, str):
        raise BadRequest("api_key 必须是字符串", error="invalid_api_key")
    if not api_key:
        raise Forbidden("缺少 api_key：提交请求需要管理员签发的 api_key", error="missing_api_key")
    integration = Integration.objects(key_hash=_key_hash(api_key), revoked_at=None).first()
    if integration is None:
        raise Forbidden("api_key 无效或已吊销", error="invalid_api_key")
    return integration


def count_filing(integration: Integration) -> None:
    """Requests filed per api key, shared by every process (429 beyond RATE_LIMIT_OPEN311)."""
    spec = config.settings().rate_limits.get("open311")
    if spec:
        hit(Rule.parse("open311", spec, "integration"), str(integration.id))


def count_reading() -> None:
    """Public reads per client address (429 beyond RATE_LIMIT_OPEN311_READ)."""
    spec = config.settings().rate_limits.get("open311_read")
    if spec:
        hit(Rule.parse("open311_read", spec, "ip"), client_ip())


# --- jurisdictions and services ----------------------------------------------------------------------

def jurisdiction(code: str | None = None) -> Region | None:
    """The district a request is about: `jurisdiction_id` is its code, needed only when several are served."""
    districts = list(regions.search(kind="district"))
    if code:
        for district in districts:
            if district.code == code:
                return district
        raise NotFound(f"未找到 jurisdiction_id：{code}（应为区的行政区划代码）", error="jurisdiction_not_found")
    if len(districts) > 1:
        raise BadRequest("本服务覆盖多个区，请提供 jurisdiction_id（区的行政区划代码）", error="jurisdiction_required")
    return districts[0] if districts else None


def _category(service_code: str) -> str:
    if service_code not in CATEGORIES:
        raise NotFound(f"未找到 service_code：{service_code}", error="service_not_found")
    return service_code


def discovery(endpoint_url: str) -> dict:
    settings = config.settings()
    latest = studios.search().order_by("-updated_at").only("updated_at").first()
    changed = max(catalog.CATALOG_CHANGED, as_utc(latest.updated_at)) if latest else catalog.CATALOG_CHANGED
    changeset = changed.astimezone(ZoneInfo(settings.tz)).strftime("%Y-%m-%d %H:%M")
    return {
        "changeset": changeset,
        "contact": settings.open311_contact,
        "key_service": f"提交请求所需的 api_key 由议事堂管理员为每个接入系统签发，请联系：{settings.open311_contact}",
        "endpoints": [{
            "specification": SPECIFICATION, "url": endpoint_url, "changeset": changeset,
            "type": "test" if settings.demo or settings.testing else "production",
            "formats": ["text/xml", "application/json"],
        }],
    }


def services(jurisdiction_id: str | None = None) -> list[dict]:
    jurisdiction(jurisdiction_id)
    return [dict(service) for service in catalog.SERVICES]


def service_definition(service_code: str, jurisdiction_id: str | None = None) -> dict:
    """One attribute: the studio to file at (optional; the nearest one by location otherwise)."""
    region = jurisdiction(jurisdiction_id)
    code = _category(service_code)
    options = studios.search(region=region.code if region else None, active=True)
    return {"service_code": code, "attributes": [{
        "variable": True, "code": "studio", "datatype": "singlevaluelist", "required": False,
        "datatype_description": "委员工作室编号（key）",
        "order": 1,
        "description": "由哪个委员工作室受理。不填时分派到离 lat/long 最近的工作室；只提供 address_string 时必填。",
        "values": [{"key": str(studio.id), "name": studio.name} for studio in options],
    }]}


# --- reading requests ----------------------------------------------------------------------------------

def date_range(start, end, now) -> tuple[dt.datetime, dt.datetime]:
    """At most 90 days; the last 90 days when neither end is given, 90 days from the one given otherwise."""
    if start is None and end is None:
        return now - MAX_SPAN, now
    start = start if start is not None else end - MAX_SPAN
    end = end if end is not None else start + MAX_SPAN
    if start > end:
        raise BadRequest("start_date 不能晚于 end_date", error="invalid_date_range")
    if end - start > MAX_SPAN:
        raise BadRequest("start_date 与 end_date 相隔不能超过 90 天", error="date_range_too_long")
    return start, end


def find_requests(jurisdiction_id=None, service_request_id=None, service_code=None, start_date=None,
                  end_date=None, status=None, page=1, page_size=1000, now=None) -> list[dict]:
    """Public issues, newest first; `service_request_id` overrides the other filters, as the standard says."""
    region = jurisdiction(jurisdiction_id)
    code = region.code if region else None
    if service_request_id:
        found = queries.board_issues(region=code, numbers=service_request_id)
    else:
        categories = [_category(c) for c in service_code or ()]
        start, end = date_range(start_date, end_date, now or utcnow())
        statuses = [s for name in status or () for s in catalog.INTERNAL_STATUSES[name]]
        found = queries.board_issues(region=code, categories=categories, statuses=statuses,
                                    created_from=start, created_to=end)
    return render_requests(list(found.skip((page - 1) * page_size).limit(page_size)))


def get_request(service_request_id: str, jurisdiction_id=None) -> list[dict]:
    """A one-element list; an issue that is not on the public board is as unknown as a wrong number."""
    region = jurisdiction(jurisdiction_id)
    found = list(queries.board_issues(region=region.code if region else None, numbers=[service_request_id]))
    if not found:
        raise NotFound(f"未找到 service_request_id：{service_request_id}", error="request_not_found")
    return render_requests(found)


def render_requests(found: list) -> list[dict]:
    agencies = _agencies(found)
    return [_request(presenters.view(issue, None), agencies[issue.id]) for issue in found]


def _agencies(found) -> dict:
    """Who is responsible now: the studio at the grassroots tier, else the township or the district."""
    studio_ids = {i.studio_id for i in found if i.level == "grassroots"}
    codes = {i.township_code if i.level == "township" else i.district_code for i in found if i.level != "grassroots"}
    studio_names = {s.id: s.name for s in Studio.objects(id__in=list(studio_ids)).only("name")} if studio_ids else {}
    region_names = {r.code: r.name for r in Region.objects(code__in=list(codes)).only("code", "name")} if codes else {}
    return {i.id: (studio_names.get(i.studio_id) if i.level == "grassroots" else
                   region_names.get(i.township_code if i.level == "township" else i.district_code)) for i in found}


def _request(public: dict, agency: str | None) -> dict:
    """One GeoReport request from the public board's view of an issue."""
    timeline = public["timeline"]
    notes = [entry["note"] for entry in timeline if entry["note"] and entry["actor"]["role"] != "resident"]
    status_name = transitions.STATUS_NAMES[public["status"]]
    location = public["location"] or {}
    return {
        "service_request_id": public["number"],
        "status": catalog.GEOREPORT_STATUS[public["status"]],
        "status_notes": f"{status_name}：{notes[-1]}" if notes else status_name,
        "service_name": CATEGORY_NAMES[public["category"]],
        "service_code": public["category"],
        "description": _description(public["title"], public["description"]),
        "agency_responsible": agency,
        "requested_datetime": w3(public["created_at"]),
        "updated_datetime": w3(timeline[-1]["at"] if timeline else public["updated_at"]),
        "expected_datetime": w3(public["due_at"]),
        "address": public["address"] or None,
        "lat": location.get("lat"),
        "long": location.get("lng"),
        "media_url": None,  # photos stay off the public board until WeChat's media check is wired in
    }


def _description(title: str, description: str) -> str:
    """GeoReport has no title: it leads the description unless the description already starts with it."""
    return description if description.startswith(title) else f"{title}\n{description}"


# --- filing a request ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filer:
    """The reporter of record of a filed request: the integration's account, under the name (and
    e-mail) the person gave, which only staff see; the public board shows 匿名居民."""

    id: ObjectId
    display_name: str
    phone: str | None = None  # the person's phone goes to the issue's contact phone instead
    openid: str | None = None  # none: WeChat's text check cannot tie the text to a mini-program user


def file_request(integration: Integration, service_code: str, description: str, jurisdiction_id=None,
                 lat=None, long=None, address_string=None, attribute=None, first_name=None, last_name=None,
                 phone=None, email=None, **_ignored) -> list[dict]:
    """File an issue at the studio named, or the nearest active one; the same content check as the mini-program.

    `media_url`, `device_id`, `account_id` and `address_id` are accepted and not kept.
    """
    region = jurisdiction(jurisdiction_id)
    category = _category(service_code)
    location = {"lng": long, "lat": lat} if lat is not None else None
    studio = _studio_for(region, (attribute or {}).get("studio"), location)
    filer = Filer(integration.account_id, _contact_name(integration, first_name, last_name, email))
    issue = issues.create(filer, title=_title(description), description=description, category=category,
                          studio_id=str(studio.id), location=location, address=address_string or "",
                          anonymous=True, contact_phone=phone)
    Integration.objects(id=integration.id).update(inc__requests_count=1, set__last_used_at=utcnow())
    return [{"service_request_id": issue.number, "service_notice": _notice(issue, studio), "account_id": None}]


def _studio_for(region, studio_id, location) -> Studio:
    if studio_id:
        try:
            studio = studios.get(studio_id)
        except NotFound:
            studio = None
        if studio is None or not studio.active or (region is not None and region.code not in studio.region_path):
            raise BadRequest(f"attribute[studio] 不是本辖区有效的委员工作室：{studio_id}", error="unknown_studio")
        return studio
    if location is None:
        raise BadRequest("只提供 address_string 时，请用 attribute[studio] 指定委员工作室（取值见 services/<service_code>）",
                         error="studio_required")
    limit_km = config.settings().open311_nearest_studio_km
    nearest = studios.search(region=region.code if region else None, near=(location["lng"], location["lat"]),
                             active=True)
    if not nearest or nearest[0].distance_m > limit_km * 1000:
        raise BadRequest(f"lat/long 附近 {limit_km:g} 公里内没有委员工作室，请核对坐标（WGS84，纬度 lat、经度 long）",
                         error="out_of_area")
    return nearest[0]


def _title(description: str) -> str:
    """The first line of the description, at most 40 characters (GeoReport has no title)."""
    first_line = next(line.strip() for line in description.splitlines() if line.strip())
    return first_line[:40]


def _contact_name(integration, first_name, last_name, email) -> str:
    first, last = (first_name or "").strip(), (last_name or "").strip()
    name = last + first if CJK.search(first + last) else " ".join(part for part in (first, last) if part)
    details = [f"经「{integration.name}」提交"] + ([f"邮箱 {email}"] if email else [])
    return f"{name or '市民'}（{'，'.join(details)}）"


def _notice(issue, studio) -> str:
    due = as_utc(issue.due_at).astimezone(ZoneInfo(config.settings().tz)).strftime("%Y-%m-%d")
    notice = f"已转交{studio.name}，委员将在 {due} 前受理或答复。"
    if issue.moderation == "review":
        notice = "内容需经人工审核后公开，审核前查询不到该请求。" + notice
    return notice
