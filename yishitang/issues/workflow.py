"""The issue state machine as data: (state, action) -> (next state, who may).

`SAME` keeps the state (escalate, supervise, comment, approve). Who may:
- "staff": those responsible at the issue's tier: the studio's members while it is at the
  grassroots tier, coordinators whose scope covers it at their own tier or below, admins;
- "supervisor": the coordinators and admins among those;
- "reporter": the resident who raised it;
- "system": other features acting through the service (consultation sessions and minutes,
  scheduled jobs), never a client.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from ..errors import Conflict

SAME = None
STAFF, SUPERVISOR, REPORTER, SYSTEM = "staff", "supervisor", "reporter", "system"

OPEN = ("submitted", "accepted", "scheduled", "consulted", "in_progress")
ACTIVE = (*OPEN, "resolved")  # not yet final
FINAL = ("rejected", "closed", "withdrawn")
STATUSES = (*ACTIVE, *FINAL)

LEVELS = ("grassroots", "township", "district")  # lowest first: escalation moves right


class Rule(NamedTuple):
    to_status: str | None
    who: frozenset


def _rule(to_status, *who):
    return Rule(to_status, frozenset(who))


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("submitted", "accept"): _rule("accepted", STAFF),
    ("submitted", "reject"): _rule("rejected", STAFF),
    ("accepted", "schedule"): _rule("scheduled", SYSTEM),
    ("scheduled", "unschedule"): _rule("accepted", SYSTEM),
    ("scheduled", "consult"): _rule("consulted", SYSTEM),
    ("scheduled", "resolve"): _rule("resolved", SYSTEM),
    ("accepted", "start"): _rule("in_progress", STAFF),
    ("consulted", "start"): _rule("in_progress", STAFF),
    ("accepted", "resolve"): _rule("resolved", STAFF),
    ("consulted", "resolve"): _rule("resolved", STAFF),
    ("in_progress", "resolve"): _rule("resolved", STAFF),
    ("resolved", "rate_satisfied"): _rule("closed", REPORTER),
    ("resolved", "rate_basically_satisfied"): _rule("closed", REPORTER),
    ("resolved", "rate_unsatisfied"): _rule("in_progress", REPORTER),
    ("resolved", "close"): _rule("closed", SUPERVISOR, SYSTEM),
    ("submitted", "duplicate"): _rule("closed", STAFF),
    ("accepted", "duplicate"): _rule("closed", STAFF),
    **{(state, "withdraw"): _rule("withdrawn", REPORTER) for state in ACTIVE},
    **{(state, "escalate"): _rule(SAME, STAFF, SYSTEM) for state in OPEN},
    **{(state, "supervise"): _rule(SAME, SUPERVISOR) for state in ACTIVE},
    **{(state, "comment"): _rule(SAME, STAFF, REPORTER) for state in ACTIVE},
    **{(state, "approve"): _rule(SAME, STAFF) for state in ACTIVE},
}

# Actions a client may send to POST /issues/<id>/actions (ratings go through /feedback).
CLIENT_ACTIONS = ("accept", "reject", "escalate", "start", "resolve", "withdraw", "supervise",
                  "comment", "close", "approve", "duplicate")
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")

# Chinese names of the states, as people read them (`GET /meta`).
STATUS_NAMES = {
    "submitted": "待受理", "accepted": "已受理", "scheduled": "待协商", "consulted": "已协商",
    "in_progress": "办理中", "resolved": "已办结待评价", "closed": "已关闭", "rejected": "不予受理",
    "withdrawn": "已撤回",
}
# Chinese names of the actions, as timeline entries and buttons show them (`GET /meta`).
ACTION_NAMES = {
    "submit": "提出", "accept": "受理", "reject": "不予受理", "escalate": "上报", "start": "开始办理",
    "resolve": "办结", "withdraw": "撤回", "supervise": "督办", "comment": "留言", "close": "关闭",
    "approve": "审核通过", "duplicate": "合并为重复议题", "feedback": "评价", "schedule": "安排协商",
    "unschedule": "取消协商安排", "consult": "协商",
}
RATING_NAMES = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}


def rule(status: str, action: str) -> Rule | None:
    return TRANSITIONS.get((status, action))


def next_level(level: str) -> str | None:
    index = LEVELS.index(level)
    return LEVELS[index + 1] if index + 1 < len(LEVELS) else None


def on_board(status: str, moderation: str = "pass", duplicate_of=None) -> bool:
    """The public-board rule: passed moderation, neither rejected nor withdrawn, not a duplicate."""
    return moderation == "pass" and status not in ("rejected", "withdrawn") and duplicate_of is None


def due(settings, now, stage: str, category: str | None = None):
    """The deadline of a stage ("response" or a level) starting at `now`, from the settings."""
    return now + dt.timedelta(days=settings.deadline_days(stage, category))


# Conditions on the issue beyond its state, by action: (holds(issue, now, settings), refusal, error).
# `transition` refuses with them (409) and `allowed_actions` leaves out what they refuse.
def _below_top_tier(issue, now, settings) -> bool:
    return next_level(issue.level) is not None


def _rating_window_over(issue, now, settings) -> bool:
    resolved_at = issue.resolution.resolved_at if issue.resolution else None
    if issue.feedback is not None or resolved_at is None:
        return False
    if resolved_at.tzinfo is None:
        resolved_at = resolved_at.replace(tzinfo=dt.timezone.utc)
    return now - resolved_at >= dt.timedelta(days=settings.feedback_window_days)


CONDITIONS = {
    "escalate": (_below_top_tier, "议题已在区级办理，不能再上报", "already_top_tier"),
    "supervise": (lambda issue, now, settings: not issue.supervised, "该议题已在督办中", "already_supervised"),
    "approve": (lambda issue, now, settings: issue.moderation == "review", "该议题无需审核", "not_held_for_review"),
    "close": (_rating_window_over, "居民评价期（{days} 天）未满，暂不能关闭", "feedback_window_open"),
}


def check_condition(action: str, issue, now, settings) -> None:
    """409 with the action's own code when the issue does not meet the action's condition."""
    condition = CONDITIONS.get(action)
    if condition is not None and not condition[0](issue, now, settings):
        _holds, message, error = condition
        raise Conflict(message.format(days=settings.feedback_window_days), error=error)


def allowed_actions(issue, capacities, now, settings) -> list[str]:
    """What these capacities may do to the issue now (what a client may offer): the client actions
    the table and the conditions allow, and `feedback` (POST /feedback) for the reporter."""
    found = [action for action in CLIENT_ACTIONS
             if (found_rule := rule(issue.status, action)) is not None and found_rule.who & capacities
             and (action not in CONDITIONS or CONDITIONS[action][0](issue, now, settings))]
    if REPORTER in capacities and rule(issue.status, "rate_satisfied") is not None:
        found.append("feedback")
    return found
