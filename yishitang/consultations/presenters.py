"""A session shaped for a viewer: residents see no invitee list and no one else's sign-in; times
are shown in the configured zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .. import config
from ..db import as_utc
from ..notifications import service as notifications
from ..users import service as users
from . import access as access_rules
from . import ics, workflow

def local(value: dt.datetime | None) -> dt.datetime | None:
    """A stored (UTC) time as people read it: in the configured zone, e.g. +08:00."""
    return as_utc(value).astimezone(ZoneInfo(config.settings().tz)) if value is not None else None


def local_text(value: dt.datetime) -> str:
    return local(value).strftime("%Y-%m-%d %H:%M")


def notify_about(user_ids, kind, c, title, body, *, dedupe_key=None, template="consultation", now=None) -> int:
    return notifications.notify(
        [u for u in user_ids if u is not None], kind, title=title, body=body,
        page=f"pages/consultation/detail?id={c.id}", template=template,
        data={"thing1": c.topic, "time2": local_text(c.starts_at), "thing3": c.location},
        dedupe_key=dedupe_key, now=now)


def _names(sessions) -> dict:
    ids = {uid for c in sessions for uid in (c.host_member_id, *c.member_ids)}
    return users.display_names(ids)


def views(sessions, viewer) -> list[dict]:
    """A page of sessions, with one lookup for the names of all their hosts and members."""
    sessions = list(sessions)
    names = _names(sessions)
    return [view(c, viewer, names) for c in sessions]


def allowed_actions(c, viewer, access, now=None) -> list[str]:
    """What the viewer may do with the session now: the state table, then the clock's part of it.
    `check_in` also needs the code shown in the room, and is left out once the viewer signed in."""
    if viewer is None:
        return []
    now = now or dt.datetime.now(dt.timezone.utc)
    signed_in = any(ci.user_id == viewer.id for ci in c.checkins)
    return [action for action in workflow.allowed_actions(c.status, workflow.capacities(access, viewer, c))
            if workflow.in_time(action, c, now) and not (action == "check_in" and signed_in)]


def view(c, viewer, names=None, access=None) -> dict:
    """The session shaped for the viewer (`access`: what they may do with it, when already decided)."""
    access = access or access_rules.of(viewer, c)
    staff = access.sees_all
    names = _names([c]) if names is None else names

    def minutes_view(m):
        if m is None:
            return None
        return {"summary": m.summary, "attendees_count": m.attendees_count,
                "outcomes": [{"issue_id": str(o.issue_id), "decision": o.decision, "owner_unit": o.owner_unit,
                              "due_at": local(o.due_at), "resolved": o.resolved} for o in m.outcomes],
                "recorded_by": str(m.recorded_by) if staff else None, "recorded_at": local(m.recorded_at)}

    return {
        "id": str(c.id), "studio_id": str(c.studio_id), "region_code": c.region_code, "topic": c.topic,
        "description": c.description, "starts_at": local(c.starts_at), "ends_at": local(c.ends_at),
        "location": c.location, "format": c.format, "host_member_id": str(c.host_member_id),
        "host": {"id": str(c.host_member_id), "display_name": names.get(c.host_member_id)},
        "member_ids": [str(m) for m in c.member_ids],
        "members": [{"id": str(m), "display_name": names.get(m)} for m in c.member_ids],
        "invitee_ids": [str(i) for i in c.invitee_ids] if staff else None,
        "issue_ids": [str(i) for i in c.issue_ids], "capacity": c.capacity, "status": c.status,
        "checkins": [{"user_id": str(ci.user_id), "at": local(ci.at)} for ci in c.checkins] if staff else None,
        "checkins_count": c.checkins_count,
        "checked_in": viewer is not None and any(ci.user_id == viewer.id for ci in c.checkins),
        "minutes": minutes_view(c.minutes),
        "minutes_history": [minutes_view(m) for m in c.minutes_history] if staff else None,
        "cancelled_at": local(c.cancelled_at), "cancel_reason": c.cancel_reason,
        "created_by": str(c.created_by) if staff else None,
        "created_at": local(c.created_at), "updated_at": local(c.updated_at), "version": c.version,
        "allowed_actions": allowed_actions(c, viewer, access),
    }


def calendar_text(c) -> str:
    return ics.calendar(c, users.display_names([c.host_member_id]).get(c.host_member_id))
