"""The labels of every enum, gathered from the features that own them, and the client's limits."""

from __future__ import annotations

from .. import config
from ..consultations.models import FORMAT_NAMES as CONSULTATION_FORMATS
from ..consultations.models import STATUS_NAMES as CONSULTATION_STATUSES
from ..db import utcnow
from ..files import service as files
from ..issues.models import CATEGORY_NAMES
from ..issues.notices import LEVEL_NAMES
from ..issues.workflow import ACTION_NAMES, RATING_NAMES
from ..issues.workflow import STATUS_NAMES as ISSUE_STATUSES
from ..clock import local
from ..users.models import COMMITTEES

ROLE_NAMES = {"resident": "居民", "member": "政协委员", "coordinator": "联络员", "unit_handler": "承办单位",
              "proposal_office": "提案委", "admin": "管理员"}
# What each subscribe template is for: the key of `WECHAT_TEMPLATE_<KEY>` and the events it carries.
TEMPLATE_EVENTS = {
    "issue_status": "议题受理、不予受理、上报、安排协商、协商、重新办理与留言",
    "rate": "议题办结，请评价",
    "consultation": "议事堂安排或变更",
    "reminder": "议事堂开始前提醒",
    "overdue": "议题超期提醒（工作人员）",
}


def labels() -> dict:
    return {
        "issue_status": ISSUE_STATUSES, "issue_action": ACTION_NAMES, "category": CATEGORY_NAMES,
        "level": LEVEL_NAMES, "rating": RATING_NAMES, "role": ROLE_NAMES,
        "committee": {name: name for name in COMMITTEES},
        "consultation_status": CONSULTATION_STATUSES, "consultation_format": CONSULTATION_FORMATS,
    }


def meta() -> dict:
    settings = config.settings()
    templates = settings.wechat_templates
    return {
        "labels": labels(),
        "subscribe_templates": [{"key": key, "template_id": templates.get(key), "used_for": used_for}
                                for key, used_for in TEMPLATE_EVENTS.items()],
        "uploads": {"max_bytes": files.MAX_BYTES, "max_attachments": files.MAX_ATTACHMENTS,
                    "content_types": list(files.CONTENT_TYPES), "thumbnail_px": files.THUMBNAIL_PX,
                    "max_pixels": files.MAX_PIXELS},
        "page_size_max": 100,
        "time_zone": settings.tz,
        "server_time": local(utcnow()),
    }
