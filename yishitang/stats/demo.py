"""Issues with a history, for the dashboard's demo and for the stats tests' random districts.

`simulate` walks one issue through the workflow of issues/workflow.py with random delays and
choices (answered in time or late, withdrawn, rejected, escalated, visited, resolved, rated,
reopened, closed without a rating, supervised), setting the fields and the timeline as the
issues service does; events after `now` do not happen yet. `seed_issues` inserts such issues at
the studios of a region, back-dated over a period; `plan_issues` only builds them, so the demo
district (yishitang/demo.py) can put its people on them before `insert_issues`. Nothing here runs
in production.
"""

from __future__ import annotations

import datetime as dt
import random

from bson import ObjectId

from ..issues.models import CATEGORIES, Issue
from ..studios.models import Studio
from ..users.models import User

DAY = dt.timedelta(days=1)

TITLES = {
    "community_facilities": ["老旧小区充电车棚", "单元门禁损坏", "社区活动室开放时间", "楼道照明不亮", "健身器材老化"],
    "traffic": ["学校周边车辆管理", "路口缺少红绿灯", "公交站台无遮雨棚", "小区门口乱停车", "人行道被占用"],
    "education": ["幼儿园学位紧张", "放学后托管服务", "社区图书角图书更新"],
    "elderly_care": ["老年食堂就餐难", "居家养老上门服务", "楼内加装电梯"],
    "environment": ["垃圾分类投放点异味", "河道漂浮物清理", "夜间施工噪音扰民", "绿地被毁种菜"],
    "safety": ["消防通道被堵", "井盖缺失", "电动车进楼充电"],
    "health": ["社区卫生站缺少常用药", "家庭医生签约服务", "疫苗接种预约难"],
    "employment": ["灵活就业人员技能培训", "零工市场信息发布"],
    "other": ["职工书屋开放", "便民服务点设置", "小区物业费公示"],
}
CATEGORY_WEIGHTS = [18, 16, 6, 10, 14, 8, 8, 4, 6]


def _hours(rng: random.Random, low: float, high: float) -> dt.timedelta:
    return dt.timedelta(hours=rng.uniform(low, high))


def simulate(rng: random.Random, created: dt.datetime, now: dt.datetime, category: str,
             response_days: int = 3, handling_days: dict | None = None) -> dict:
    """The stored fields of one issue raised at `created`, as they stand at `now`."""
    handling = handling_days or {"grassroots": 15, "township": 20, "district": 30}
    doc = {"status": "submitted", "level": "grassroots", "due_at": created + response_days * DAY,
           "first_response_at": None, "accepted_at": None, "closed_at": None, "withdrawn_at": None,
           "met_at": None, "feedback": None, "resolution": None, "escalated_count": 0, "supervised": False,
           "reopened_count": 0, "visits_count": 0, "timeline": [], "updated_at": created}

    def event(at, action, to_status=None, **extra):
        if at > now:
            raise _Later()
        entry = {"at": at, "action": action, "from_status": doc["status"], "to_status": to_status or doc["status"],
                 "level": doc["level"], "actor": {"role": "system", "display_name": "演示"}}
        entry.update(extra)
        doc["timeline"].append(entry)
        doc["status"] = to_status or doc["status"]
        doc["updated_at"] = at

    doc["timeline"].append({"at": created, "action": "submit", "from_status": None, "to_status": "submitted",
                            "level": "grassroots", "actor": {"role": "resident", "display_name": "居民"}})
    t = created
    try:
        roll = rng.random()
        if roll < 0.06:  # withdrawn before any answer
            t += _hours(rng, 2, 60)
            event(t, "withdraw", "withdrawn")
            doc.update(withdrawn_at=t, due_at=None)
            return doc
        # answered within the deadline mostly, late sometimes
        t += _hours(rng, 1, 60) if rng.random() < 0.8 else _hours(rng, 80, 200)
        if roll < 0.13:
            event(t, "reject", "rejected", note="不属于议事范围")
            doc.update(first_response_at=t, due_at=None)
            return doc
        event(t, "accept", "accepted")
        doc.update(accepted_at=t, first_response_at=t, due_at=t + handling["grassroots"] * DAY)
        if rng.random() < 0.18:  # handed up to the township, sometimes on to the district
            t += _hours(rng, 12, 120)
            doc["level"] = "township"
            event(t, "escalate")
            doc["escalated_count"] += 1
            doc["due_at"] = t + handling["township"] * DAY
            if rng.random() < 0.3:
                t += _hours(rng, 24, 200)
                doc["level"] = "district"
                event(t, "escalate")
                doc["escalated_count"] += 1
                doc["due_at"] = t + handling["district"] * DAY
        if rng.random() < 0.7:  # a member went to see it
            visit = t + _hours(rng, 4, 240)
            event(visit, "comment", note="实地走访", visit=True)
            doc["met_at"], doc["visits_count"], t = visit, 1, visit
        if rng.random() < 0.12:
            t += _hours(rng, 24, 400)
            event(t, "supervise")
            doc["supervised"] = True
        if rng.random() < 0.04:
            t += _hours(rng, 24, 240)
            event(t, "withdraw", "withdrawn")
            doc.update(withdrawn_at=t, due_at=None)
            return doc
        if rng.random() < 0.5:
            t += _hours(rng, 12, 240)
            event(t, "start", "in_progress")
        for attempt in range(2):
            t += _hours(rng, 24, 24 * (25 if attempt == 0 else 12))
            event(t, "resolve", "resolved", note="已协调解决")
            doc.update(due_at=None, feedback=None, resolution={"summary": "已协调解决", "resolved_at": t})
            verdict = rng.random()
            if verdict < 0.12:  # no rating: a coordinator closes it once the window has passed
                t += _hours(rng, 24 * 7.5, 24 * 14)
                event(t, "close", "closed")
                doc["closed_at"] = t
                return doc
            t += _hours(rng, 2, 24 * 6)
            if verdict < 0.82 or attempt == 1:
                rating = "satisfied" if rng.random() < 0.7 else "basically_satisfied"
                if verdict > 0.95 and attempt == 1:
                    rating = "unsatisfied"
                if rating == "unsatisfied":
                    event(t, "feedback", "in_progress")
                    doc.update(feedback={"rating": rating, "at": t}, due_at=t + handling[doc["level"]] * DAY)
                    doc["reopened_count"] += 1
                    return doc
                event(t, "feedback", "closed")
                doc.update(feedback={"rating": rating, "at": t}, closed_at=t)
                return doc
            event(t, "feedback", "in_progress")  # unsatisfied: reopened, handled again
            doc.update(feedback={"rating": "unsatisfied", "at": t}, due_at=t + handling[doc["level"]] * DAY)
            doc["reopened_count"] += 1
    except _Later:
        pass
    return doc


class _Later(Exception):
    """The next event lies after `now`: the issue stands where it is."""


def seed_issues(count: int, *, region_code: str, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                seed: int = 7, settings=None, duplicates: int = 0) -> list[ObjectId]:
    """Insert `count` issues raised between `start` and `end` at the region's studios, each as it
    stands at `now`; a few more as duplicates of others. Once per database (numbers DEMO-<year>-n).
    Returns their ids."""
    return insert_issues(plan_issues(count, region_code=region_code, start=start, end=end, now=now, seed=seed,
                                     settings=settings, duplicates=duplicates))


def plan_issues(count: int, *, region_code: str, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                seed: int = 7, settings=None, duplicates: int = 0) -> list[dict]:
    """The documents `seed_issues` inserts, without writing anything (the demo district dresses them first)."""
    rng = random.Random(seed)
    studios = list(Studio.objects(region_path=region_code, active=True).order_by("region_code", "name"))
    if not studios:
        raise ValueError(f"no studios under {region_code}")
    weights = [rng.uniform(0.3, 3) for _ in studios]  # some studios are busier than others
    reporters = [u.id for u in User.objects(roles="resident").only("id")] or [ObjectId()]
    response_days, handling = deadlines(settings)
    docs, span = [], (end - start).total_seconds()
    year_counters: dict[int, int] = {}
    for n in range(count + duplicates):
        studio = rng.choices(studios, weights)[0]
        category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        created = start + dt.timedelta(seconds=rng.uniform(0, span))
        fields = simulate(rng, created, now, category, response_days, handling)
        if n >= count:  # a duplicate of an earlier issue of the same studio, marked soon after
            originals = [d for d in docs if d["studio_id"] == studio.id and d["created_at"] < created]
            if originals:
                at = min(created + _hours(rng, 1, 30), now)
                fields = simulate(rng, created, created, category, response_days, handling)
                fields["timeline"].append({"at": at, "action": "duplicate", "from_status": "submitted",
                                           "to_status": "closed", "level": "grassroots",
                                           "actor": {"role": "system", "display_name": "演示"}})
                fields.update(duplicate_of=rng.choice(originals)["_id"], status="closed", closed_at=at,
                              due_at=None, updated_at=at)
        year = created.year
        year_counters[year] = year_counters.get(year, 0) + 1
        docs.append(issue_doc(rng, studio, category, created, fields, f"DEMO-{year}-{year_counters[year]:06d}",
                              reporters))
    return docs


def deadlines(settings) -> tuple[int, dict | None]:
    """The response days and the handling days per tier that `simulate` takes, from the settings."""
    if settings is None:
        return 3, None
    return settings.response_deadline_days, {"grassroots": settings.handling_days_grassroots,
                                             "township": settings.handling_days_township,
                                             "district": settings.handling_days_district}


def issue_doc(rng: random.Random, studio: Studio, category: str, created: dt.datetime, fields: dict, number: str,
              reporters: list[ObjectId]) -> dict:
    """An issue document around the fields `simulate` returned, at the studio, by one of `reporters`."""
    return {
        "_id": ObjectId(), "number": number,
        "title": rng.choice(TITLES[category]), "description": "演示数据：居民反映的问题，用于展示统计看板。",
        "category": category, "studio_id": studio.id, "region_code": studio.region_code,
        "township_code": studio.township_code, "district_code": studio.district_code,
        "region_path": list(studio.region_path), "reporter_id": rng.choice(reporters),
        "reporter_name": "演示居民", "anonymous": False, "address": studio.address, "attachments": [],
        "supporters_count": rng.randint(0, 12), "moderation": "pass", "on_board": True, "search_terms": [],
        "version": len(fields["timeline"]), "created_at": created, "duplicate_of": None, **fields,
    }


def insert_issues(docs: list[dict]) -> list[ObjectId]:
    """Derive `on_board` and `version` as the service does, check each against the model, insert all."""
    for doc in docs:
        doc["on_board"] = doc["status"] not in ("rejected", "withdrawn") and doc["duplicate_of"] is None
        doc["version"] = len(doc["timeline"])
        Issue._from_son(doc).validate()
    if docs:
        Issue._get_collection().insert_many(docs)
    return [doc["_id"] for doc in docs]
