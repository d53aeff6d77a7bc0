"""Issues with a history, for the dashboard's demo and for the stats tests' random districts.

`simulate` walks one issue through the workflow table (issues/workflow.py, via walk.py) with random
delays and choices (answered in time or late, withdrawn, rejected, escalated, visited, resolved, rated,
reopened, closed without a rating, supervised), with the fields, deadlines and timeline the
service would set; events after `now` do not happen yet. `seed_issues` inserts such issues at
the studios of a region, back-dated over a period; `plan_issues` only builds them, so the demo
district (devtools/demo.py) can put its people on them before `insert_issues`. Nothing here runs
in production.
"""

from __future__ import annotations

import datetime as dt
import random

from bson import ObjectId

from ..issues import workflow
from ..issues.models import CATEGORIES, Issue
from ..studios.models import Studio
from ..users.models import User
from .walk import Walk, settings_or_default, submitted

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


DEMO_ACTOR = {"role": "system", "display_name": "演示"}  # the demo district puts its people on them later


def simulate(rng: random.Random, created: dt.datetime, now: dt.datetime, category: str, settings=None) -> dict:
    """The stored fields of one issue raised at `created`, as they stand at `now`."""
    settings = settings_or_default(settings)
    doc = {"first_response_at": None, "accepted_at": None, "closed_at": None, "withdrawn_at": None, "met_at": None,
           "feedback": None, "resolution": None,
           **submitted(created, category, {"role": "resident", "display_name": "居民"}, settings)}
    try:
        _History(rng, Walk(doc, category, settings), created, now).run()
    except _Later:
        pass
    return doc


class _Later(Exception):
    """The next event lies after `now`: the issue stands where it is."""


class _History:
    """The random path of one issue through the workflow; each action waits a random while."""

    def __init__(self, rng: random.Random, walk: Walk, created: dt.datetime, now: dt.datetime):
        self.rng, self.walk, self.t, self.now = rng, walk, created, now

    def wait(self, low: float, high: float) -> None:
        self.t += _hours(self.rng, low, high)

    def act(self, action: str, **params) -> None:
        if self.t > self.now:
            raise _Later()
        self.walk.act(self.t, action, DEMO_ACTOR, **params)

    def step(self, low: float, high: float, action: str, **params) -> None:
        self.wait(low, high)
        self.act(action, **params)

    def run(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.06:  # withdrawn before any answer
            return self.step(2, 60, "withdraw")
        # answered within the deadline mostly, late sometimes
        self.wait(*((1, 60) if rng.random() < 0.8 else (80, 200)))
        if roll < 0.13:
            return self.act("reject", note="不属于议事范围")
        self.act("accept")
        if rng.random() < 0.18:  # handed up to the township, sometimes on to the district
            self.step(12, 120, "escalate")
            if rng.random() < 0.3:
                self.step(24, 200, "escalate")
        if rng.random() < 0.7:  # a member went to see it
            self.step(4, 240, "comment", note="实地走访", visit=True)
        if rng.random() < 0.12:
            self.step(24, 400, "supervise")
        if rng.random() < 0.04:
            return self.step(24, 240, "withdraw")
        if rng.random() < 0.5:
            self.step(12, 240, "start")
        self.resolutions()

    def resolutions(self) -> None:
        """Resolved, then rated, reopened once at most, or closed unrated after the window."""
        rng = self.rng
        for attempt in range(2):
            self.step(24, 24 * (25 if attempt == 0 else 12), "resolve", note="已协调解决")
            verdict = rng.random()
            if verdict < 0.12:  # no rating: a coordinator closes it once the window has passed
                return self.step(24 * 7.5, 24 * 14, "close")
            self.wait(2, 24 * 6)
            if verdict < 0.82 or attempt == 1:
                rating = "satisfied" if rng.random() < 0.7 else "basically_satisfied"
                if verdict > 0.95 and attempt == 1:
                    rating = "unsatisfied"
                return self.act(f"rate_{rating}")
            self.act("rate_unsatisfied")  # reopened, handled again


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
    settings = settings_or_default(settings)
    docs, span = [], (end - start).total_seconds()
    year_counters: dict[int, int] = {}
    for n in range(count + duplicates):
        studio = rng.choices(studios, weights)[0]
        category = rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0]
        created = start + dt.timedelta(seconds=rng.uniform(0, span))
        fields = simulate(rng, created, now, category, settings)
        if n >= count:  # a duplicate of an earlier issue of the same studio, marked soon after
            originals = [d for d in docs if d["studio_id"] == studio.id and d["created_at"] < created]
            if originals:
                at = min(created + _hours(rng, 1, 30), now)
                fields = simulate(rng, created, created, category, settings)
                Walk(fields, category, settings).act(at, "duplicate", DEMO_ACTOR,
                                                     duplicate_of=rng.choice(originals)["_id"])
        year = created.year
        year_counters[year] = year_counters.get(year, 0) + 1
        docs.append(issue_doc(rng, studio, category, created, fields, f"DEMO-{year}-{year_counters[year]:06d}",
                              reporters))
    return docs


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
        doc["on_board"] = workflow.on_board(doc["status"], doc["moderation"], doc["duplicate_of"])
        doc["version"] = len(doc["timeline"])
        Issue._from_son(doc).validate()
    if docs:
        Issue._get_collection().insert_many(docs)
    return [doc["_id"] for doc in docs]
