"""Who may see a session and what they may do with it, decided once per request and passed on."""

from __future__ import annotations

from dataclasses import dataclass

from ..auth import covers, has_role
from ..db import get_or_404
from ..errors import NotFound
from .models import Consultation


@dataclass(frozen=True)
class Access:
    visible: bool
    manages: bool  # schedule, edit, cancel: the studio's members, coordinators in scope, admins
    runs: bool  # the host or one of the session's members
    covers: bool  # a coordinator in scope or an admin

    @property
    def sees_all(self) -> bool:
        """The whole session: invitees, who signed in, earlier minutes."""
        return self.manages or self.runs

    @property
    def may_show_code(self) -> bool:
        return self.manages or self.runs


NOBODY = Access(False, False, False, False)


def of(user, c) -> Access:
    if user is None:
        return NOBODY
    return Access(visible=has_role(user, "admin") or bool(set(viewer_keys(user)) & set(c.access_keys)),
                  manages=can_manage(user, c.studio_id, c.region_path),
                  runs=has_role(user, "member") and (user.id == c.host_member_id or user.id in c.member_ids),
                  covers=covers(user, c.region_path))


def viewer_keys(user) -> list[str]:
    """The keys a user matches against a session's `access_keys` (see the model)."""
    keys = [f"user:{user.id}"]
    if has_role(user, "member"):
        keys += [f"studio:{s}" for s in user.studio_ids or []]
    if has_role(user, "coordinator") and user.scope_region_code:
        keys.append(f"region:{user.scope_region_code}")
    if user.home_region_code:  # a grassroots region: the sessions of the studio there
        keys.append(f"region:{user.home_region_code}")
    return keys


def access_keys(studio_id, region_path, participants) -> list[str]:
    return list(dict.fromkeys([*(f"region:{code}" for code in region_path), f"studio:{studio_id}",
                               *(f"user:{uid}" for uid in participants)]))


def participants(c) -> list:
    """Everyone the session concerns: host, members, invitees and reporters of linked issues."""
    return list(dict.fromkeys([c.host_member_id, *c.member_ids, *c.invitee_ids, *c.reporter_ids]))


def can_manage(user, studio_id, region_path) -> bool:
    """Schedule, edit, cancel: the studio's members, coordinators whose scope covers it, admins."""
    return covers(user, region_path) or (has_role(user, "member") and studio_id in (user.studio_ids or []))


def get_visible(consultation_id, user) -> tuple[Consultation, Access]:
    """The session and what the user may do with it; the same 404 as for an unknown id if they may not see it."""
    c = get_or_404(Consultation, consultation_id)
    access = of(user, c)
    if not access.visible:
        raise NotFound()
    return c, access
