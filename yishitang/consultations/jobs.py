"""Timed work of the consultations feature: remind people a day and an hour before a session."""

from __future__ import annotations

import datetime as dt

from ..db import as_utc
from .access import participants
from .presenters import local_text, notify_about
from .models import Consultation

# (label, from, to): a session starting in (now + from, now + to] gets this reminder. The bands do
# not overlap, so a session booked 30 minutes ahead gets the 1-hour reminder only.
BANDS = (("1h", dt.timedelta(0), dt.timedelta(hours=1)), ("24h", dt.timedelta(hours=1), dt.timedelta(hours=24)))


def send_reminders(now: dt.datetime) -> int:
    """Remind host, members, invitees and reporters of linked issues; returns notifications queued.

    Idempotent: each reminder carries a dedupe key per person, session and start time, so a rerun
    (or a second scheduler) queues nothing twice, while a rescheduled session is reminded anew.
    Needs an app context (the display time zone comes from the settings).
    """
    queued = 0
    for label, after, until in BANDS:
        # One (status, starts_at) range per status: each query names only the index's fields.
        sessions = [c for status in ("planned", "held")
                    for c in Consultation.objects(status=status, starts_at__gt=now + after, starts_at__lte=now + until)]
        for c in sessions:
            when = "1 小时" if label == "1h" else "24 小时"
            queued += notify_about(
                participants(c), "consultation_reminder", c, "民生议事堂即将召开",
                f"「{c.topic}」将在 {when}内召开：{local_text(c.starts_at)}，{c.location}",
                template="reminder", now=now,
                dedupe_key=f"reminder-{label}:{c.id}:{int(as_utc(c.starts_at).timestamp())}")
    return queued
