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
