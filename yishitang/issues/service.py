"""Issues: the commands. Raise one, act on it through the state machine, rate it, support it.

Who may do what is in `access`, how an issue is shown in `presenters`, the state machine's
effects in `transitions`, the lists in `queries`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .. import config, db
from ..db import utcnow
from ..errors import Conflict, Forbidden, InvalidInput
from ..files import service as files
from ..studios import service as studios
from ..users.service import FORGOTTEN
from . import access, notices, presenters, text, workflow
from .models import Counter, Issue, Support, TimelineEntry
from .transitions import check_text, timeline_entry, transition
from .workflow import FINAL

def next_number(now: dt.datetime) -> str:
    settings = config.settings()
    year = now.astimezone(ZoneInfo(settings.tz)).year
    seq = db.next_in_sequence(Counter._get_collection(), f"issue-{year}")
    return f"{settings.issue_number_prefix}-{year}-{seq:06d}"


def create(reporter, title, description, category, studio_id, location=None, address="",
           anonymous=False, contact_phone=None, attachments=()) -> Issue:
    studio = studios.get_many([studio_id], field="studio_id")[0]
    if not studio.active:
        raise InvalidInput(errors={"studio_id": ["该工作室已停用"]})
    moderation = check_text(f"{title}\n{description}\n{address or ''}", reporter)
    now = utcnow()
    number = next_number(now)
    issue = Issue(
        number=number, title=title, description=description, category=category, studio_id=studio.id,
        region_code=studio.region_code, township_code=studio.township_code, district_code=studio.district_code,
        region_path=studio.region_path, reporter_id=reporter.id, reporter_name=reporter.display_name,
        anonymous=anonymous, contact_phone=contact_phone or reporter.phone,
        location=[location["lng"], location["lat"]] if location else None, address=address or "",
        due_at=workflow.due(config.settings(), now, "response", category), moderation=moderation,
        on_board=workflow.on_board("submitted", moderation, None),
        search_terms=text.index_terms(title, description, number), created_at=now, updated_at=now,
        timeline=[TimelineEntry._from_son(timeline_entry(now, reporter, "resident", "submit", None, "submitted", "grassroots", None))],
    )
    issue.validate()
    doc = issue.to_mongo().to_dict()

    def write(session):
        Issue._get_collection().insert_one(doc, session=session)
        if attachments:
            issue.attachments = files.attach(list(attachments), reporter.id, doc["_id"], session=session)
            Issue._get_collection().update_one({"_id": doc["_id"]}, {"$set": {"attachments": issue.attachments}},
                                               session=session)

    db.run_in_transaction(write)
    issue.id = doc["_id"]
    notices.issue_raised(issue)
    return issue


def act(issue_id, user, action, *, expected_version=None, **params) -> Issue:
    issue, seen = access.get_visible(issue_id, user)
    issue = transition(issue, action, user, expected_version=expected_version, access=seen, **params)
    if issue.resolution and issue.resolution.evidence and action == "resolve":
        # Evidence photos belong to the issue from now on: whoever sees the issue sees them.
        files.UploadedFile.objects(id__in=issue.resolution.evidence, issue_id=None).update(set__issue_id=issue.id)
    return issue


def give_feedback(issue_id, user, rating, comment=None, expected_version=None) -> Issue:
    issue, seen = access.get_visible(issue_id, user)
    if not seen.reporter:
        raise Forbidden("只有提出人可以评价", error="action_forbidden")
    return transition(issue, f"rate_{rating}", user, note=comment, expected_version=expected_version, access=seen)


# --- supports (附议) -----------------------------------------------------------------------------

def support(issue_id, user) -> dict:
    issue, _ = access.get_visible(issue_id, user)
    if user.id == issue.reporter_id:
        raise Conflict("不能附议自己提出的议题", error="own_issue")
    if issue.status in FINAL or not issue.on_board:
        raise Conflict("该议题已结束，不能附议", error="issue_closed")

    def write(session):
        # An upsert, not an insert: a duplicate-key error would abort the whole transaction.
        added = Support._get_collection().update_one(
            {"issue_id": issue.id, "user_id": user.id}, {"$setOnInsert": {"created_at": utcnow()}},
            upsert=True, session=session)
        if added.upserted_id is not None:  # one per user: count only a new support
            Issue._get_collection().update_one({"_id": issue.id}, {"$inc": {"supporters_count": 1}}, session=session)

    db.run_in_transaction(write)
    return _support_state(issue.id, user)


def withdraw_support(issue_id, user) -> dict:
    issue, _ = access.get_visible(issue_id, user)

    def write(session):
        removed = Support._get_collection().delete_one({"issue_id": issue.id, "user_id": user.id}, session=session)
        if removed.deleted_count:
            Issue._get_collection().update_one({"_id": issue.id}, {"$inc": {"supporters_count": -1}}, session=session)

    db.run_in_transaction(write)
    return _support_state(issue.id, user)


def _support_state(issue_id, user) -> dict:
    count = Issue._get_collection().find_one({"_id": issue_id}, {"supporters_count": 1})["supporters_count"]
    supported = Support.objects(issue_id=issue_id, user_id=user.id).count() == 1
    return {"issue_id": str(issue_id), "supported": supported, "supporters_count": count}


# --- personal data (PIPL) ------------------------------------------------------------------------

def personal_data(user) -> dict:
    """What the issues feature holds about a person: what they raised, supported and rated."""
    raised = Issue.objects(reporter_id=user.id).order_by("-created_at", "-id")
    supported = Support.objects(user_id=user.id)
    return {
        "issues_raised": [presenters.view(issue, user) for issue in raised],
        "supports": [{"issue_id": str(s.issue_id), "at": s.created_at} for s in supported],
    }


def forget(user, session=None) -> int:
    """The issues stay on the public record; the person behind them does not."""
    collection = Issue._get_collection()
    result = collection.update_many(
        {"reporter_id": user.id},
        {"$set": {"reporter_name": FORGOTTEN, "anonymous": True, "contact_phone": None,
                  # Residents act only on their own issues, so their timeline entries are all here.
                  "timeline.$[mine].actor.display_name": FORGOTTEN}},
        array_filters=[{"mine.actor.id": user.id}], session=session)
    return result.modified_count
