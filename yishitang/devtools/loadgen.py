"""`yishitang seed-load`: a realistic district or city with many issues, for load tests and benchmarks.

Builds on the demo district (and, for a city, more districts shaped like it), then adds residents
and issues in every state with timelines that agree with the state, feedback, face-to-face
meetings, escalations and minuted consultation sessions. Documents are written in bulk, bypassing
the request path (which is what is being measured), but shaped exactly as the services shape them.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from bson import ObjectId
from tqdm import tqdm

from ..consultations.models import Consultation
from ..db import utcnow
from .demo import seed_demo
from ..issues import text
from ..issues.models import Counter, Issue
from ..regions.models import Region
from ..stats.models import RollupState
from ..studios.models import Studio
from ..users.models import User
from .histories import TITLES
from .walk import SYSTEM, Walk, settings_or_default, submitted

DETAILS = ["居民反映已有一段时间，影响日常生活，希望尽快协调解决。", "多位邻居联名反映，存在安全隐患，请相关部门尽快处理。",
           "问题在早晚高峰尤为突出，老人和孩子出行不便。", "此前向物业反映过，但一直没有得到解决。"]
UNITS = ["区交警大队", "街道城建办", "区住建局", "区教育局", "社区物业", "区城管局", "区卫健局", "区人社局"]
# (status, share): about half of a year's issues are closed, as in a working district.
STATUS_MIX = [("submitted", 6), ("accepted", 8), ("scheduled", 3), ("consulted", 3), ("in_progress", 12),
              ("resolved", 8), ("closed", 45), ("rejected", 7), ("withdrawn", 8)]
EXTRA_DISTRICT_BASE = 211105  # extra districts of a city: 211105, 211106, ...


def seed_load(issues: int, districts: int = 1, progress: bool = True, seed: int = 7, batch: int = 500) -> dict:
    """Add `issues` issues across `districts` districts; returns counts of what was written."""
    rng = random.Random(seed)
    now = utcnow()
    seed_demo(progress=False)
    for n in range(1, districts):
        _extra_district(str(EXTRA_DISTRICT_BASE + n - 1), rng, now)
    studios = list(Studio.objects(active=True).only("id", "region_code", "region_path", "name"))
    members = {}
    for user in User.objects(roles="member").only("id", "display_name", "studio_ids"):
        for sid in user.studio_ids:
            members.setdefault(sid, []).append(user)
    residents = _residents(max(200, issues // 20), studios, rng, now)
    numbers = _NumberSource(now)
    written = {"issues": 0, "consultations": 0}
    bar = tqdm(total=issues, desc="议题", unit="条", disable=not progress)
    while written["issues"] < issues:
        size = min(batch, issues - written["issues"])
        docs, sessions = [], []
        for _ in range(size):
            studio = rng.choice(studios)
            docs.append(_issue(rng, now, studio, rng.choice(residents), members.get(studio.id), numbers, sessions))
        Issue._get_collection().insert_many(docs, ordered=False)
        if sessions:
            Consultation._get_collection().insert_many(sessions, ordered=False)
        written["issues"] += size
        written["consultations"] += len(sessions)
        bar.update(size)
    bar.close()
    numbers.save()
    # Written around the services: the next rollup job rebuilds every statistics cell.
    RollupState._get_collection().delete_many({})
    return {**written, "residents": len(residents), "studios": len(studios), "districts": districts}


class _NumberSource:
    """Issue numbers continue each year's sequence, and the counters are moved past them."""

    def __init__(self, now):
        self.tz = ZoneInfo("Asia/Shanghai")
        self.next = {}

    def take(self, created_at) -> str:
        year = created_at.astimezone(self.tz).year
        if year not in self.next:
            counter = Counter.objects(id=f"issue-{year}").first()
            self.next[year] = (counter.seq if counter else 0) + 1
        seq, self.next[year] = self.next[year], self.next[year] + 1
        return f"DW-{year}-{seq:06d}"

    def save(self):
        for year, following in self.next.items():
            Counter._get_collection().update_one({"_id": f"issue-{year}"}, {"$max": {"seq": following - 1}}, upsert=True)


def _residents(count, studios, rng, now) -> list[dict]:
    """Residents to report issues: reuse the load residents already there, add the rest."""
    existing = list(User._get_collection().find({"openid": {"$regex": "^load-resident-"}},
                                                {"_id": 1, "display_name": 1, "phone": 1}).limit(count))
    docs = []
    for n in range(len(existing), count):
        studio = rng.choice(studios)
        docs.append({"_id": ObjectId(), "display_name": rng.choice("王李张刘陈杨赵黄周吴") + rng.choice("阿姨 大爷 先生 女士".split()),
                     "roles": ["resident"], "openid": f"load-resident-{n}", "phone": f"139{rng.randrange(10**8):08d}",
                     "home_region_code": studio.region_code, "region_codes": list(studio.region_path), "studio_ids": [],
                     "active": True, "token_version": 0, "created_at": now, "updated_at": now})
    if docs:
        User._get_collection().insert_many(docs, ordered=False)
    return existing + docs


def _actor(user, role) -> dict:
    return {"id": user["_id"] if isinstance(user, dict) else user.id, "role": role,
            "display_name": user["display_name"] if isinstance(user, dict) else user.display_name}


def _issue(rng, now, studio, reporter, staff, numbers, sessions) -> dict:
    """One issue whose timeline and fields come from walking it through the workflow table."""
    category = rng.choice(list(TITLES))
    title = rng.choice(TITLES[category])
    description = f"{studio.name.removesuffix('委员工作室')}{title}。{rng.choice(DETAILS)}"
    created = now - dt.timedelta(days=rng.uniform(0, 365), minutes=rng.randrange(1440))
    status = rng.choices([s for s, _ in STATUS_MIX], [w for _, w in STATUS_MIX])[0]
    member = rng.choice(staff) if staff else None
    number = numbers.take(created)
    settings = settings_or_default()
    doc = {
        "_id": ObjectId(), "number": number, "title": title, "description": description, "category": category,
        "studio_id": studio.id, "region_code": studio.region_code, "township_code": studio.region_path[1],
        "district_code": studio.region_path[0], "region_path": list(studio.region_path),
        "reporter_id": reporter["_id"], "reporter_name": reporter["display_name"], "anonymous": rng.random() < 0.2,
        "contact_phone": reporter.get("phone"), "address": "", "attachments": [],
        **submitted(created, category, _actor(reporter, "resident"), settings), "supervised": rng.random() < 0.05,
        "supporters_count": int(rng.expovariate(0.4)), "moderation": "pass", "created_at": created,
        "search_terms": text.index_terms(title, description, number),
    }
    _Path(rng, now, Walk(doc, category, settings), reporter, member).follow(status, studio, sessions)
    return doc


class _Path:
    """The actions that bring a new issue to its drawn status; the clock never passes `now`."""

    def __init__(self, rng, now, walk, reporter, member):
        self.rng, self.now, self.walk, self.clock = rng, now, walk, walk.doc["created_at"]
        self.resident = _actor(reporter, "resident")
        self.member = _actor(member, "member") if member is not None else SYSTEM
        self.member_user = member

    def step(self, action, days, actor=SYSTEM, **params):
        self.clock = min(self.clock + dt.timedelta(days=days), self.now)
        return self.walk.act(self.clock, action, actor, **params)

    def follow(self, status, studio, sessions):
        rng = self.rng
        if status == "withdrawn" and rng.random() < 0.5:  # withdrawn before any answer
            self.step("withdraw", rng.uniform(0.1, 2), self.resident)
        elif status == "rejected":
            self.step("reject", rng.uniform(0.1, 4), self.member, note="不属于议事范围")
        elif status != "submitted":
            self.step("accept", rng.uniform(0.1, 4), self.member)
            self.handle(status, studio, sessions)

    def handle(self, status, studio, sessions):
        rng, doc = self.rng, self.walk.doc
        if rng.random() < 0.25:  # handed up: mostly to the township, sometimes on to the district
            for _ in range(1 if rng.random() < 0.8 else 2):
                self.step("escalate", rng.uniform(1, 10), self.member, note="需上级协调")
        if rng.random() < 0.3:
            self.step("comment", rng.uniform(0.5, 5), self.member, note="已上门走访", visit=True)
        if status in ("scheduled", "consulted") or (status in ("in_progress", "resolved", "closed") and rng.random() < 0.1):
            session = _session(rng, doc, studio, self.member_user, self.clock, minuted=status != "scheduled")
            sessions.append(session)
            self.step("schedule", 0.5, consultation_id=session["_id"])
            if status != "scheduled":
                doc["met_at"] = doc.get("met_at") or session["starts_at"]
                self.step("consult", 7, consultation_id=session["_id"], note="协商议定办理方案")
        if status in ("in_progress", "resolved", "closed"):
            self.step("start", rng.uniform(1, 10), self.member)
        if status in ("resolved", "closed"):
            self.step("resolve", rng.uniform(2, 40), self.member, note="已办结", owner_unit=rng.choice(UNITS))
        if status == "closed":
            rating = rng.choices(["satisfied", "basically_satisfied", None], [70, 20, 10])[0]
            if rating:
                self.step(f"rate_{rating}", rng.uniform(0.2, 6), self.resident)
            else:
                self.step("close", 7.1, note="评价期内未评价，系统自动关闭")
        if status == "withdrawn":
            self.step("withdraw", rng.uniform(1, 10), self.resident)


def _session(rng, issue, studio, member, after, minuted: bool) -> dict:
    starts = after + dt.timedelta(days=rng.uniform(2, 14))
    host = member.id if member else ObjectId()
    path = list(studio.region_path)
    session = {
        "_id": ObjectId(), "studio_id": studio.id, "region_code": studio.region_code, "region_path": path,
        "topic": f"民生议事堂：{issue['title']}", "description": "", "starts_at": starts,
        "ends_at": starts + dt.timedelta(hours=2), "location": f"{studio.name}议事室", "format": "in_person",
        "host_member_id": host, "member_ids": [host], "invitee_ids": [], "issue_ids": [issue["_id"]],
        "reporter_ids": [issue["reporter_id"]], "capacity": 40, "status": "minuted" if minuted else "planned",
        "checkins": [], "checkins_count": 0, "minutes_history": [], "created_by": host, "version": 1,
        "access_keys": [*(f"region:{code}" for code in path), f"studio:{studio.id}", f"user:{host}",
                        f"user:{issue['reporter_id']}"],
        "created_at": after, "updated_at": after,
    }
    if minuted:
        session["minutes"] = {"summary": "各方充分协商，形成办理意见", "attendees_count": rng.randrange(8, 30),
                              "outcomes": [{"issue_id": issue["_id"], "decision": "协商议定办理方案",
                                            "owner_unit": rng.choice(UNITS), "resolved": False}],
                              "recorded_by": host, "recorded_at": starts + dt.timedelta(hours=3)}
        session["minuted_at"] = starts + dt.timedelta(hours=3)
    return session


def _extra_district(code: str, rng, now) -> None:
    """Another district of a city, 16 townships of 12 communities, one studio and member each."""
    if Region.objects(code=code).first():
        return
    regions, studios, members = [], [], []
    regions.append({"code": code, "name": f"第{code[-2:]}区", "kind": "district", "parent_code": None, "ancestors": [],
                    "created_at": now, "updated_at": now})
    for t in range(1, 17):
        town = f"{code}{t:03d}"
        regions.append({"code": town, "name": f"第{t}街道", "kind": "street", "parent_code": code, "ancestors": [code],
                        "created_at": now, "updated_at": now})
        for g in range(1, 13):
            community = f"{town}{g:03d}"
            path = [code, town, community]
            regions.append({"code": community, "name": f"第{t}街道第{g}社区", "kind": "community", "parent_code": town,
                            "ancestors": [code, town], "created_at": now, "updated_at": now})
            studio_id = ObjectId()
            studios.append({"_id": studio_id, "name": f"第{t}街道第{g}社区委员工作室", "region_code": community,
                            "region_path": path, "address": "", "open_hours": "周二、周四 9:00-11:30", "active": True,
                            "location": {"type": "Point", "coordinates": [123.4 + rng.uniform(-0.3, 0.3), 41.8 + rng.uniform(-0.3, 0.3)]},
                            "created_at": now, "updated_at": now})
            members.append({"display_name": f"委员{community[-6:]}", "roles": ["member"], "username": f"m{community}",
                            "studio_ids": [studio_id], "region_codes": path, "committee": "提案委员会", "active": True,
                            "token_version": 0, "created_at": now, "updated_at": now})
    Region._get_collection().insert_many(regions)
    Studio._get_collection().insert_many(studios)
    User._get_collection().insert_many(members)
