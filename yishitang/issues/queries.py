"""Finding issues: the lists each role asks for, search, similar titles, the public board.

Each kind of list names the index that serves it; `db.on_index` decides whether to tell the planner.
"""

from __future__ import annotations

from .. import db
from ..auth import has_role
from ..db import object_id, utcnow
from ..errors import InvalidInput
from ..studios import service as studios
from . import text
from .models import Issue, Support
from .workflow import OPEN

NEWEST = [("created_at", -1), ("_id", -1)]
# The index behind each kind of list (see `search` for when it is named to the planner).
INDEX_FOR = {
    "text": [("search_terms", 1)],
    "board": [("studio_id", 1), ("on_board", 1), *NEWEST],
    "reporter": [("reporter_id", 1), *NEWEST],
    "studio": [("studio_id", 1), *NEWEST],
    "region": [("region_path", 1), *NEWEST],
    "all": NEWEST,
}


def search(user, board=False, mine=False, studio=None, region=None, status=None, level=None,
           category=None, overdue=None, supervised=None, q=None):
    """Issues the caller may list, newest first, each kind of list on its own index."""
    query: dict = {}
    if board:
        if not studio:
            raise InvalidInput(errors={"studio": ["查看公开议题需指定工作室"]})
        query.update(studio_id=object_id(studio), on_board=True)
        index = "board"
    elif mine or not has_role(user, "admin", "coordinator", "member"):
        query["reporter_id"] = user.id
        index = "reporter"
    elif has_role(user, "admin"):
        index = "studio" if studio else "region" if region else "all"
    elif has_role(user, "coordinator"):
        query["region_path"] = user.scope_region_code
        index = "region"
    else:
        query["studio_id"] = {"$in": list(user.studio_ids)}
        index = "studio"
    conditions = []
    if studio and not board:
        conditions.append({"studio_id": object_id(studio)})
    if region:
        conditions.append({"region_path": region})
    if status:
        conditions.append({"status": {"$in": list(status)}})
    if level:
        conditions.append({"level": level})
    if category:
        conditions.append({"category": category})
    if supervised is not None:
        conditions.append({"supervised": supervised})
    if overdue is not None:
        now = utcnow()
        conditions.append({"status": {"$in": list(OPEN)}, "due_at": {"$lt": now}} if overdue
                          else {"$or": [{"status": {"$nin": list(OPEN)}}, {"due_at": None}, {"due_at": {"$gte": now}}]})
    if q:
        terms = text.query_terms(q)
        if not terms:
            raise InvalidInput(errors={"q": ["请输入要搜索的文字"]})
        conditions.append({"search_terms": {"$all": terms}})
        index = "text"
    if conditions:
        query["$and"] = conditions
    # Lists show no timeline: leaving it (and the search terms) in the database keeps pages light.
    found = Issue.objects(__raw__=query).exclude("timeline", "search_terms").order_by("-created_at", "-id")
    return db.on_index(found, query, INDEX_FOR[index]).as_pymongo()


def similar(user, studio_id, title, limit=5) -> list[tuple[Issue, float]]:
    """Open issues on the studio's board that look like the same problem, most alike first."""
    studio = studios.get(studio_id)
    terms = text.ngrams(title)
    if not terms:
        return []
    candidates = Issue.objects(studio_id=studio.id, on_board=True, status__in=list(OPEN) + ["resolved"],
                               search_terms__in=terms).order_by("-created_at").limit(200)
    scored = [(issue, text.similarity(terms, text.ngrams(issue.title))) for issue in candidates]
    scored = [(issue, round(score, 2)) for issue, score in scored if score >= 0.3]
    return sorted(scored, key=lambda pair: -pair[1])[:limit]


def board_issues(region=None, numbers=None, categories=None, statuses=None, created_from=None, created_to=None):
    """Public-board issues across a region subtree, newest first (for outside readers: Open311)."""
    query: dict = {"on_board": True}
    index = INDEX_FOR["all"]
    if region:
        query["region_path"] = region
        index = INDEX_FOR["region"]
    if numbers is not None:
        query["number"] = {"$in": list(numbers)}
        index = [("number", 1)]
    if categories:
        query["category"] = {"$in": list(categories)}
    if statuses:
        query["status"] = {"$in": list(statuses)}
    if created_from or created_to:
        query["created_at"] = {key: value for key, value in (("$gte", created_from), ("$lte", created_to)) if value}
    return db.on_index(Issue.objects(__raw__=query).exclude("search_terms").order_by("-created_at", "-id"), query, index)


def supported_by(user, issue_ids) -> set:
    """Which of these issues the user supports (附议), with one query on the (issue_id, user_id) index."""
    if user is None or not issue_ids:
        return set()
    found = Support._get_collection().find({"issue_id": {"$in": list(issue_ids)}, "user_id": user.id}, {"issue_id": 1})
    return {doc["issue_id"] for doc in found}
