"""The session state machine as data: action -> (who may, state -> next state).

planned -> held (someone signed in) -> minuted; planned -> cancelled. Minutes may also follow
straight from planned: signing in is a convenience, not proof that a session took place. Who may:
- "manager": the studio's members, coordinators whose scope covers it, admins;
- "runner": the host and the session's members;
- "coverer": coordinators whose scope covers it, admins;
- "viewer": anyone who may see the session (check-in also needs the code shown in the room);
- "recorder": whoever recorded the minutes (corrections, within 7 days).
"""

from __future__ import annotations

import datetime as dt

from ..db import as_utc
from ..errors import Conflict, Forbidden
from .models import STATUS_NAMES

MANAGER, RUNNER, COVERER, VIEWER, RECORDER = "manager", "runner", "coverer", "viewer", "recorder"

# action: (who may, {from state: to state})
TRANSITIONS: dict[str, tuple[frozenset, dict[str, str]]] = {
    "edit": (frozenset({MANAGER}), {"planned": "planned"}),
    "cancel": (frozenset({MANAGER}), {"planned": "cancelled"}),
    "check_in": (frozenset({VIEWER}), {"planned": "held", "held": "held", "minuted": "minuted"}),
    "minute": (frozenset({RUNNER, COVERER}), {"planned": "minuted", "held": "minuted"}),
    "correct": (frozenset({RECORDER}), {"minuted": "minuted"}),
}

# What a refused action says, by action: (message with the state's name, error code).
REFUSALS = {
    "edit": ("议事会{state}，不能修改", "consultation_not_editable"),
    "cancel": ("议事会{state}，不能取消", "consultation_not_cancellable"),
    "check_in": ("议事会已取消", "consultation_cancelled"),
    "minute": ("议事会已取消", "consultation_cancelled"),
    "correct": ("议事会已取消", "consultation_cancelled"),
}
# What a caller the table does not allow is told, by action.
FORBIDDEN = {
    "edit": ("只有本工作室的委员或辖区联络员可以修改议事会", "scope_forbidden"),
    "cancel": ("只有本工作室的委员或辖区联络员可以修改议事会", "scope_forbidden"),
    "minute": ("只有主持人、参会委员或辖区联络员可以记录纪要", "minutes_forbidden"),
    "correct": ("只有纪要的记录人可以更正纪要", "minutes_forbidden"),
}


def require_who(action: str, capacities: frozenset) -> None:
    """403 unless the table lets one of these capacities take the action."""
    if not TRANSITIONS[action][0] & capacities:
        message, error = FORBIDDEN[action]
        raise Forbidden(message, error=error)


def next_status(status: str, action: str) -> str:
    """The state the action leads to from this one; 409 with the action's own code where it does not apply."""
    found = TRANSITIONS[action][1].get(status)
    if found is None:
        message, error = REFUSALS[action]
        raise Conflict(message.format(state=STATUS_NAMES[status]), error=error)
    return found


def capacities(access, user, c) -> frozenset:
    """What the user is to the session, in the table's words."""
    found = {name for name, held in ((VIEWER, access.visible), (MANAGER, access.manages), (RUNNER, access.runs),
                                     (COVERER, access.covers)) if held}
    if c.minutes is not None and user is not None and user.id == c.minutes.recorded_by:
        found.add(RECORDER)
    return frozenset(found)


def allowed_actions(status: str, capacities: frozenset) -> list[str]:
    """The actions the table lets these capacities take from this state (what a client may offer)."""
    return [action for action, (who, moves) in TRANSITIONS.items() if status in moves and who & capacities]


CHECKIN_OPENS_BEFORE = dt.timedelta(minutes=30)  # sign-in opens this long before the start
CORRECTION_WINDOW = dt.timedelta(days=7)  # the author may correct the minutes this long


def in_time(action: str, c, now) -> bool:
    """The clock's part of the table: sign-in from half an hour before the start to the end, minutes
    once the session has started, corrections within 7 days of the minutes."""
    if action == "check_in":
        return as_utc(c.starts_at) - CHECKIN_OPENS_BEFORE <= now < as_utc(c.ends_at)
    if action == "minute":
        return now >= as_utc(c.starts_at)
    if action == "correct":
        return c.minuted_at is not None and now <= as_utc(c.minuted_at) + CORRECTION_WINDOW
    return True
