"""Finding sessions: the lists each role asks for, each on the index named for it."""

from __future__ import annotations

from .. import db
from ..auth import has_role
from .access import viewer_keys
from .models import Consultation

LATEST = [("starts_at", -1), ("_id", -1)]
SOONEST = [("starts_at", 1), ("_id", 1)]
# The index behind each kind of list (`db.on_index` decides whether to name it to the planner).
INDEX_FOR = {
    "access": [("access_keys", 1), *LATEST],
    "studio": [("studio_id", 1), *LATEST],
    "region": [("region_path", 1), *LATEST],
    "all": LATEST,
    "reminders": [("status", 1), ("starts_at", 1)],
}


def search(user, studio=None, region=None, status=None, start=None, end=None, order="desc"):
    """Sessions the caller may see, latest start first (or soonest first with order=asc)."""
    query: dict = {}
    if has_role(user, "admin"):
        index = "studio" if studio else "region" if region else "all"
    else:
        query["access_keys"] = {"$in": viewer_keys(user)}
        index = "access"
    if studio:
        query["studio_id"] = db.object_id(studio)
    if region:
        query["region_path"] = region
    if status:
        query["status"] = {"$in": list(status)}
    if start or end:
        query["starts_at"] = {**({"$gte": start} if start else {}), **({"$lt": end} if end else {})}
    sort = ("-starts_at", "-id") if order == "desc" else ("starts_at", "id")
    return db.on_index(Consultation.objects(__raw__=query).order_by(*sort), query, INDEX_FOR[index])
