"""Who may see an issue and what they are to it, decided once per request and passed on.

`Access` answers every question the service and the presenter ask about one viewer and one
issue (may see it, sees it whole, sees the phone, may act as staff, supervisor or reporter), so
the decision for one request is made in one place, from one reading of the issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auth import has_role
from ..db import Row, object_id
from ..errors import NotFound
from ..files import service as files
from .models import Issue
from .workflow import REPORTER, STAFF, SUPERVISOR

TIER_RANK = {"grassroots": 0, "township": 1, "district": 2}
VISIBILITY_FIELDS = {"reporter_id": 1, "studio_id": 1, "region_path": 1, "district_code": 1, "level": 1, "on_board": 1}


@dataclass(frozen=True)
class Access:
    capacities: frozenset  # what the viewer is to the issue: staff (responsible now), supervisor, reporter
    staff_viewer: bool  # its studio, a covering coordinator at any tier, an admin: sees it whole
    reporter: bool
    on_board: bool

    @property
    def visible(self) -> bool:
        return self.reporter or self.on_board or self.staff_viewer

    @property
    def sees_all(self) -> bool:
        """The full issue: names, photos, held entries; the public board sees less."""
        return self.reporter or self.staff_viewer

    @property
    def sees_phone(self) -> bool:
        return self.reporter or STAFF in self.capacities


NOBODY = Access(frozenset(), False, False, False)


def of(user, issue) -> Access:
    """What `user` (None: an anonymous reader of the public board) is to `issue`."""
    if user is None:
        return NOBODY
    return Access(capacities(user, issue), is_staff_viewer(user, issue), user.id == issue.reporter_id,
                  bool(issue.on_board))


def coordinator_covers(user, issue, *, any_level=False) -> bool:
    """A coordinator whose scope covers the issue, at their own tier or below (or at any tier)."""
    if not has_role(user, "coordinator") or user.scope_region_code not in issue.region_path:
        return False
    scope_tier = "district" if user.scope_region_code == issue.district_code else "township"
    return any_level or TIER_RANK[scope_tier] >= TIER_RANK[issue.level]


def member_of_studio(user, issue) -> bool:
    return has_role(user, "member") and issue.studio_id in (user.studio_ids or [])


def capacities(user, issue) -> frozenset:
    """What the user is to this issue: staff (responsible now), supervisor, reporter."""
    found = set()
    if user is None:
        return frozenset()
    if user.id == issue.reporter_id:
        found.add(REPORTER)
    if has_role(user, "admin") or coordinator_covers(user, issue):
        found |= {STAFF, SUPERVISOR}
    if issue.level == "grassroots" and member_of_studio(user, issue):
        found.add(STAFF)
    return frozenset(found)


def is_staff_viewer(user, issue) -> bool:
    """Staff who may see the whole issue (if not act on it): its studio, any covering coordinator."""
    return (has_role(user, "admin") or member_of_studio(user, issue)
            or coordinator_covers(user, issue, any_level=True))


def can_view_issue_id(user, issue_id) -> bool:
    """Whether the user may see an issue's photos: its reporter and staff (not the public board,
    since WeChat's asynchronous media check is not wired in yet). Registered with files."""
    issue = Issue._get_collection().find_one({"_id": issue_id}, VISIBILITY_FIELDS)
    return issue is not None and user is not None and of(user, Row(issue)).sees_all


def load(issue_id) -> Row:
    """One issue as a raw document (see `db.Row`), or the 404 of an unknown id."""
    raw = Issue._get_collection().find_one({"_id": object_id(issue_id)})
    if raw is None:
        raise NotFound()
    return Row(raw)


def get_visible(issue_id, user) -> tuple[Row, Access]:
    """The issue and what the user is to it; the same 404 as for an unknown id if they may not see it."""
    issue = load(issue_id)
    access = of(user, issue)
    if not access.visible:
        raise NotFound()
    return issue, access


def init_app() -> None:
    """Tell the files feature who may see an issue's photos (files sits below issues)."""
    files.set_issue_visibility(can_view_issue_id)
