"""A resident's home: the nearest studios, their newest public issues, their coming sessions."""

from __future__ import annotations

from ..consultations import presenters as consultation_presenters
from ..consultations import queries as consultation_queries
from ..db import Row, utcnow
from ..issues import presenters as issue_presenters
from ..issues import queries as issue_queries
from ..studios import routes as studio_pages
from ..studios import service as studios

ISSUES_SHOWN, SESSIONS_SHOWN = 20, 10


def feed(user, viewer, near, studios_wanted=3, now=None) -> dict:
    """`viewer`: the caller's snapshot for the issue pages (see `auth.snapshot`)."""
    now = now or utcnow()
    nearest = studios.search(near=near, active=True)[:studios_wanted]
    issues = []
    for studio in nearest:  # each studio's board on its own index, then the newest of them all
        issues += list(issue_queries.search(user, board=True, studio=str(studio.id)).limit(ISSUES_SHOWN))
    issues = sorted(issues, key=lambda raw: (raw["created_at"], raw["_id"]), reverse=True)[:ISSUES_SHOWN]
    sessions = []
    for studio in nearest:
        sessions += list(consultation_queries.search(user, studio=str(studio.id), status=["planned"], start=now,
                                                     order="asc").limit(SESSIONS_SHOWN))
    sessions = sorted(sessions, key=lambda c: (c.starts_at, c.id))[:SESSIONS_SHOWN]
    return {"studios": studio_pages.views(nearest), "issues": issue_presenters.page([Row(raw) for raw in issues], viewer),
            "consultations": consultation_presenters.views(sessions, user)}
