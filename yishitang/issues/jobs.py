"""Timed work on issues: deadlines (warn, then escalate) and closing unrated resolved issues.

Each job takes `now`, so tests run it with a fixed clock, and stamps what it did on the issue
(the deadline warned about; the state change itself), so a rerun does nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging

from .. import config, db
from ..errors import DomainError
from . import notices, transitions
from .models import Issue
from .workflow import OPEN

log = logging.getLogger(__name__)
ESCALATE_FROM = ("accepted", "consulted", "in_progress")  # a scheduled issue waits for its session
SYSTEM_NOTE_ESCALATE = "超过办理期限，系统自动上报上一级"
SYSTEM_NOTE_CLOSE = "评价期内未评价，系统自动关闭"


def check_deadlines(now: dt.datetime) -> dict:
    """Unanswered past the response deadline: warn the staff once. Unresolved past the handling
    deadline: escalate one tier (at the district, warn once)."""
    done = {"warned": 0, "escalated": 0}
    # One (status, due_at) index range per open state: the sweep reads only overdue issues.
    late = {issue.id: issue for status in OPEN for issue in Issue.objects(status=status, due_at__lt=now)}
    for issue in late.values():
        if issue.status in ESCALATE_FROM and issue.level != "district":
            try:
                # Only the version read here: an issue that moved meanwhile is decided on the next run.
                transitions.transition(issue, "escalate", None, system=True, note=SYSTEM_NOTE_ESCALATE, now=now,
                                   expected_version=issue.version)
                done["escalated"] += 1
            except DomainError as exc:  # it moved meanwhile; the next run sees its new state
                log.info("deadline escalation of %s skipped: %s", issue.number, exc.message)
            continue
        # Stamp first, conditionally: of two runs only one wins the stamp and warns.
        stamped = db.update_by_id(Issue._get_collection(), {"_id": issue.id, "due_at": issue.due_at,
                                                             "overdue_warned_for": {"$ne": issue.due_at}},
                                  {"$set": {"overdue_warned_for": issue.due_at}})
        if stamped.modified_count:
            stage = "response" if issue.status == "submitted" else "handling"
            notices.overdue_warning(issue, stage, dedupe_key=f"overdue:{issue.id}:{issue.due_at.timestamp():.0f}")
            done["warned"] += 1
    return done


def auto_close(now: dt.datetime) -> int:
    """Resolved issues the reporter did not rate within the feedback window are closed (no rating)."""
    window = dt.timedelta(days=config.settings().feedback_window_days)
    closed = 0
    due = Issue.objects(status="resolved", resolution__resolved_at__lte=now - window)  # one index range
    for issue in due:
        if issue.feedback is not None:  # rated meanwhile: the transition below would refuse anyway
            continue
        try:
            transitions.transition(issue, "close", None, system=True, note=SYSTEM_NOTE_CLOSE, now=now)
            closed += 1
        except DomainError as exc:
            log.info("auto-close of %s skipped: %s", issue.number, exc.message)
    return closed
