"""Demo data: a fictional district at the scale of a real one (16 towns/streets, 191 studios, 209 members).

The district, its towns, streets, villages, communities and people are made up; only the scale
and the three-tier shape follow a real district's annual report (see CONTEXT.md). Everything is
generated from a fixed seed, so every run plans the same records; `seed_demo` inserts only those
that are missing (regions by code, studios by region, users by username or openid) and never
edits a record that exists, so a second run creates and changes nothing.

`seed_demo_issues` then adds a year of issues raised by neighbours at every studio, with
histories through the workflow (stats/demo.py), and for the accounts the README names a story
of their own; it runs only on a database without issues, so it happens once.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from tqdm import tqdm
from werkzeug.security import generate_password_hash

from .db import utcnow
from .issues import text
from .issues.jobs import SYSTEM_NOTE_CLOSE
from .issues.models import CATEGORIES, Counter, Issue
from .regions.models import Region
from .stats import demo as histories
from .stats.models import RollupState
from .studios.models import Studio
from .users.models import COMMITTEES, User

DISTRICT_CODE = "211104"
DISTRICT_NAME = "浑南示范区"  # fictional
MEMBER_COUNT = 209
MEMBER_PASSWORD = "demo-member-pass"
COORDINATOR_PASSWORD = "demo-coord-pass"
ADMIN_PASSWORD = "demo-admin-pass"
RESIDENT_COUNT = 5
SEED = 2026
# `yishitang serve` in demo mode adds this many issues over the last year (about 5 per studio, three
# a day across the district), plus one in 60 more marked as duplicates and the stories below; more
# would slow the first start (the embedded database writes about 300 issues a second).
DEMO_ISSUES = 1000
NEIGHBOURS_PER_STUDIO = 3  # the residents who raised them, living at each village or community

# The logins printed by `yishitang serve` in demo mode: `how` is the line shown to a person.
DEMO_LOGINS = [
    {"role": "admin", "login": "password", "username": "admin", "password": ADMIN_PASSWORD,
     "how": f"POST /api/v1/auth/password-login  admin / {ADMIN_PASSWORD}  （区政协办管理员）"},
    {"role": "coordinator", "login": "password", "username": "coord-district", "password": COORDINATOR_PASSWORD,
     "how": f"POST /api/v1/auth/password-login  coord-district / {COORDINATOR_PASSWORD}  （区级联络员，全区）"},
    {"role": "coordinator", "login": "password", "username": "coord01", "password": COORDINATOR_PASSWORD,
     "how": f"POST /api/v1/auth/password-login  coord01..coord16 / {COORDINATOR_PASSWORD}  "
            f"（镇街联络员，coord01 管辖 {DISTRICT_CODE}001）"},
    {"role": "member", "login": "password", "username": "member001", "password": MEMBER_PASSWORD,
     "how": f"POST /api/v1/auth/password-login  member001..member{MEMBER_COUNT:03d} / {MEMBER_PASSWORD}  （政协委员）"},
    *[
        {"role": "resident", "login": "wechat", "openid": f"demo-resident-{n}", "code": f"demo:demo-resident-{n}:1",
         "how": f"POST /api/v1/auth/wechat-login  code=demo:demo-resident-{n}:<任意字符，每次不同>  （居民）"}
        for n in range(1, RESIDENT_COUNT + 1)
    ],
]

# (name, kind, number of villages or communities): streets are urban (communities), towns rural
# (villages); 102 communities + 89 villages = 191 studios.
TOWNSHIPS = [
    ("东湖街道", "street", 12), ("南湖街道", "street", 14), ("金桥街道", "street", 11),
    ("翠园街道", "street", 13), ("新城街道", "street", 10), ("科创街道", "street", 12),
    ("滨河街道", "street", 9), ("文华街道", "street", 11), ("长青街道", "street", 10),
    ("柳河镇", "town", 13), ("榆林镇", "town", 12), ("双山镇", "town", 14), ("清水镇", "town", 11),
    ("青龙镇", "town", 13), ("松岗镇", "town", 12), ("石佛镇", "town", 14),
]

COMMUNITY_WORDS = (
    "幸福 和平 阳光 翠湖 金桥 丽水 锦绣 新城 文化 长青 朝阳 康宁 安居 春华 秋实 明珠 绿洲 滨河 "
    "南湖 东湖 青年 建设 民主 团结 友谊 振兴 繁荣 兴华 宏伟 光明 育英 书香 美景 嘉园 枫林 松涛 "
    "桃源 梅园 兰亭 竹韵 荷塘 柳岸 银杏 白桦 紫薇 丁香 海棠 玉兰 芳华 雅居 怡景 凤凰 祥和 瑞丰 "
    "富民 惠民 利民 新兴 新华 新源 奥体 会展 科技 创新 智慧 高新 航天 世纪 时代 星河 天河 云峰 "
    "金山 望湖 观澜 听涛 水岸 湖畔 江南 上林 名都 锦城 春城 秀水 碧水 清风 明月 朝霞 晨曦 东方 "
    "正阳 泰和 福安 永康 益民 德润 文汇 学府 杏坛 乐园 百合 红枫 翡翠 铁西 河畔 锦苑 盛华 富锦"
).split()
VILLAGE_NAMES = (
    "柳树 前进 红旗 东升 新民 长胜 胜利 永安 腰岭 双树 榆树 三家子 五间房 高坎 白塔 大堡 小堡 "
    "东岗 西岗 南台 北台 前屯 后屯 马场 石桥 河湾 沙坨 苇塘 杏树 梨树 桃山 望花 兴隆 太平 "
    "福胜 丰收 农丰 永丰 五一 八一 光辉 团山 孤家子 烟台 古城 上坎 下坎 营盘 官屯 岔路 草市"
).split()
VILLAGE_SURNAMES = "王李张刘赵杨孙于陈徐马高郭周吴朱胡林何郑韩宋曹冯董田姜崔孟白金石付谷关佟"
VILLAGE_SUFFIXES = ("家堡", "家屯", "家窝棚", "家台", "家沟", "家岗", "家房")
ROADS = ("文化路", "创新路", "富民街", "朝阳街", "学府路", "和平大街", "建设路", "长青街", "智慧街",
         "滨河路", "光明路", "新华街", "育才路", "丁香街", "泰山路", "远航路")
OPEN_HOURS = ("周二、周四 9:00-11:30", "周一、周三 14:00-17:00", "周三、周五 9:00-11:30",
              "每周六 9:00-12:00", "周一至周五 8:30-11:30", "周二、周五 14:00-16:30")

# North-east China: 王 李 张 刘 lead, and 于 孙 姜 关 佟 are common; repeats weight the draw.
SURNAMES = ("王王王王李李李李张张张张刘刘刘刘赵赵赵杨杨孙孙孙于于陈陈徐徐马马高高郭周吴朱胡林何郑"
            "韩宋曹冯董田姜姜崔孟白金石付谷关佟汪邢潘许邓鲁范常曲单")
GIVEN_CHARS = ("建国 志强 海涛 立新 振华 庆丰 永刚 德明 宏伟 晓东 子轩 浩然 明哲 俊杰 文博 "
               "淑珍 桂芳 秀兰 丽华 玉梅 晓燕 春艳 红霞 雪梅 丹丹 思雨 欣怡 雨萱 佳琪 婧 "
               "磊 勇 军 伟 强 鹏 超 斌 凯 波 静 敏 丽 艳 娟 颖 萍 霞 琳 莹 "
               "国庆 玉兰 凤琴 铁军 长海 春生 秋菊 冬梅 艳秋 宝山 金凤 玉林 继红 卫东").split()
PHONE_PREFIXES = ("130", "131", "132", "135", "136", "137", "139", "150", "151", "152", "155",
                  "158", "159", "180", "186", "187", "188", "189")


@dataclass(frozen=True)
class _Plan:
    regions: list = field(default_factory=list)  # dicts: Region fields
    studios: list = field(default_factory=list)  # dicts: Studio fields (no ids)
    users: list = field(default_factory=list)  # dicts: User fields, studios by region code


def _path(code: str) -> list[str]:
    """District, township, grassroots codes of a region: its code is its path (3 + 3 + 3 digits)."""
    return [code[:n] for n in (6, 9, 12) if len(code) >= n]


@lru_cache(maxsize=1)
def _plan() -> _Plan:
    """Every demo record, drawn from one seeded generator in a fixed order."""
    rng = random.Random(SEED)
    plan = _Plan()
    plan.regions.append({"code": DISTRICT_CODE, "name": DISTRICT_NAME, "kind": "district",
                         "parent_code": None, "ancestors": []})
    community_names = _unique_names(rng, [w + "社区" for w in COMMUNITY_WORDS])
    village_names = _unique_names(rng, [w + "村" for w in VILLAGE_NAMES] +
                                  [s + x + "村" for s in VILLAGE_SURNAMES for x in VILLAGE_SUFFIXES])
    studios_by_township: dict[str, list[str]] = {}
    streets = sum(1 for _, kind, _ in TOWNSHIPS if kind == "street")
    for t, (township_name, kind, count) in enumerate(TOWNSHIPS, start=1):
        township = f"{DISTRICT_CODE}{t:03d}"
        plan.regions.append({"code": township, "name": township_name, "kind": kind,
                             "parent_code": DISTRICT_CODE, "ancestors": [DISTRICT_CODE]})
        centre_lng, centre_lat, spread = _township_centre(t, kind, streets)
        child_kind = "community" if kind == "street" else "village"
        studios_by_township[township] = []
        for g in range(1, count + 1):
            code = f"{township}{g:03d}"
            name = next(community_names if child_kind == "community" else village_names)
            plan.regions.append({"code": code, "name": name, "kind": child_kind, "parent_code": township,
                                 "ancestors": [DISTRICT_CODE, township]})
            if child_kind == "community":
                address = (f"{DISTRICT_NAME}{township_name}{rng.choice(ROADS)}{rng.randint(1, 199)}号"
                           f"（{name}党群服务中心）")
            else:
                address = f"{DISTRICT_NAME}{township_name}{name}村民委员会"
            plan.studios.append({
                "name": f"{name}委员工作室", "region_code": code, "region_path": _path(code),
                "address": address,
                "location": [round(centre_lng + rng.uniform(-spread, spread), 6),
                             round(centre_lat + rng.uniform(-spread, spread) * 0.75, 6)],
                "open_hours": rng.choice(OPEN_HOURS),
            })
            studios_by_township[township].append(code)

    person = _people(rng)
    phone = _phones(rng)
    all_studios = [s["region_code"] for s in plan.studios]
    # Every studio gets one member first; the rest join a random studio. "就地就近": a member's
    # home is their first studio's village or community, and a second studio is in the same township.
    first_studios = all_studios + [rng.choice(all_studios) for _ in range(MEMBER_COUNT - len(all_studios))]
    rng.shuffle(first_studios)
    committees = [COMMITTEES[n % len(COMMITTEES)] for n in range(MEMBER_COUNT)]
    rng.shuffle(committees)
    for n, first in enumerate(first_studios, start=1):
        studio_codes = [first]
        neighbours = [c for c in studios_by_township[first[:9]] if c != first]
        if neighbours and rng.random() < 0.2:
            studio_codes.append(rng.choice(neighbours))
        plan.users.append({
            "username": f"member{n:03d}", "password": MEMBER_PASSWORD, "roles": ["member"],
            "display_name": next(person), "phone": next(phone), "committee": committees[n - 1],
            "home_region_code": first, "studio_regions": studio_codes,
        })
    for t in range(1, len(TOWNSHIPS) + 1):
        plan.users.append({
            "username": f"coord{t:02d}", "password": COORDINATOR_PASSWORD, "roles": ["coordinator"],
            "display_name": next(person), "phone": next(phone),
            "scope_region_code": f"{DISTRICT_CODE}{t:03d}",
        })
    plan.users.append({"username": "coord-district", "password": COORDINATOR_PASSWORD, "roles": ["coordinator"],
                       "display_name": next(person), "phone": next(phone), "scope_region_code": DISTRICT_CODE})
    plan.users.append({"username": "admin", "password": ADMIN_PASSWORD, "roles": ["admin"],
                       "display_name": next(person), "phone": next(phone)})
    communities = [r["code"] for r in plan.regions if r["kind"] == "community"]
    for n in range(1, RESIDENT_COUNT + 1):
        plan.users.append({
            "openid": f"demo-resident-{n}", "roles": ["resident"], "display_name": next(person),
            "phone": f"138001380{n:02d}", "home_region_code": communities[(n - 1) * 11 % len(communities)],
        })
    return plan


def _unique_names(rng: random.Random, pool: list[str]):
    pool = list(dict.fromkeys(pool))
    rng.shuffle(pool)
    yield from pool


def _township_centre(t: int, kind: str, streets: int) -> tuple[float, float, float]:
    """Streets ring the centre (123.4, 41.8) closely, towns lie further out: (lng, lat, spread)."""
    if kind == "street":
        angle, radius, spread = 2 * math.pi * (t - 1) / streets, 0.05, 0.012
    else:
        towns = len(TOWNSHIPS) - streets
        angle, radius, spread = 2 * math.pi * (t - streets - 0.5) / towns, 0.16, 0.03
    return 123.4 + radius * math.cos(angle), 41.8 + radius * 0.75 * math.sin(angle), spread


def _people(rng: random.Random):
    seen: set[str] = set()
    while True:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN_CHARS)
        if name not in seen:
            seen.add(name)
            yield name


def _phones(rng: random.Random):
    seen: set[str] = set()
    while True:
        phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10 ** 8):08d}"
        if phone not in seen and not phone.startswith("13800138"):
            seen.add(phone)
            yield phone


def seed_demo(progress: bool = True) -> dict:
    """Insert the missing demo records; returns what exists afterwards and how many were created."""
    plan = _plan()
    now = utcnow()
    created = 0
    with tqdm(total=len(plan.regions) + len(plan.studios) + len(plan.users), desc="演示数据",
              unit="条", disable=not progress) as bar:
        bar.set_postfix_str("地区")
        known = set(Region.objects(code__in=[r["code"] for r in plan.regions]).scalar("code"))
        created += _insert(Region, [r for r in plan.regions if r["code"] not in known], now)
        bar.update(len(plan.regions))

        bar.set_postfix_str("委员工作室")
        codes = [s["region_code"] for s in plan.studios]
        known = set(Studio.objects(region_code__in=codes).scalar("region_code"))
        created += _insert(Studio, [s for s in plan.studios if s["region_code"] not in known], now)
        bar.update(len(plan.studios))
        studio_ids: dict[str, object] = {}
        for studio in Studio.objects(region_code__in=codes).order_by("created_at", "id").only("id", "region_code"):
            studio_ids.setdefault(studio.region_code, studio.id)

        bar.set_postfix_str("用户")
        usernames = set(User.objects(username__in=[u["username"] for u in plan.users if "username" in u])
                        .scalar("username"))
        openids = set(User.objects(openid__in=[u["openid"] for u in plan.users if "openid" in u]).scalar("openid"))
        missing = [u for u in plan.users
                   if u.get("username", "") not in usernames and u.get("openid", "") not in openids]
        hashes: dict[str, str] = {}  # scrypt is slow: one hash per distinct password, shared
        for user in missing:
            if "password" in user and user["password"] not in hashes:
                hashes[user["password"]] = generate_password_hash(user["password"])
        created += _insert(User, [_user_fields(u, studio_ids, hashes) for u in missing], now)
        bar.update(len(plan.users))
    return {**counts(), "created": created}


def foreign_data() -> str | None:
    """What the database holds that the demo did not plan (a region, a staff account), or None:
    demo accounts with published passwords must never land in a database with real data."""
    plan = _plan()
    region = Region._get_collection().find_one({"code": {"$nin": [r["code"] for r in plan.regions]}}, {"code": 1})
    if region:
        return f"region {region['code']}"
    usernames = [u["username"] for u in plan.users if "username" in u]
    staff = User._get_collection().find_one({"username": {"$type": "string", "$nin": usernames}}, {"username": 1})
    return f"account {staff['username']}" if staff else None


def _user_fields(planned: dict, studio_ids: dict, hashes: dict) -> dict:
    fields = {k: v for k, v in planned.items() if k not in ("password", "studio_regions")}
    studio_regions = planned.get("studio_regions", [])
    fields["studio_ids"] = [studio_ids[code] for code in studio_regions]
    if "password" in planned:
        fields["password_hash"] = hashes[planned["password"]]
    codes: list[str] = []
    for code in (planned.get("home_region_code"), planned.get("scope_region_code"), *studio_regions):
        if code:
            codes += _path(code)
    fields["region_codes"] = list(dict.fromkeys(codes))
    fields.update(active=True, token_version=0)
    return fields


def _insert(model, rows: list[dict], now) -> int:
    """One bulk insert of new documents, each checked against the model first."""
    if not rows:
        return 0
    docs = [model(**row, created_at=now, updated_at=now) for row in rows]
    for doc in docs:
        doc.validate()
    model.objects.insert(docs, load_bulk=False)
    return len(docs)


def counts() -> dict:
    """What the demo district holds now (staff and residents counted over the whole database)."""
    return {
        "districts": Region.objects(code=DISTRICT_CODE).count(),
        "townships": Region.objects(parent_code=DISTRICT_CODE, kind__in=("town", "street")).count(),
        "grassroots": Region.objects(ancestors=DISTRICT_CODE, kind__in=("village", "community")).count(),
        "studios": Studio.objects(region_path=DISTRICT_CODE).count(),
        "members": User.objects(roles="member").count(),
        "coordinators": User.objects(roles="coordinator").count(),
        "admins": User.objects(roles="admin").count(),
        "residents": User.objects(roles="resident").count(),
    }


# --- a year of issues ---------------------------------------------------------------------------

ISSUE_DETAILS = ("居民反映已有一段时间，影响日常生活，希望尽快协调解决。", "多位邻居联名反映，存在安全隐患，请尽快处理。",
                 "早晚高峰尤为突出，老人和孩子出行不便。", "此前向物业反映过，一直没有得到解决。",
                 "雨雪天气问题更加严重，希望委员帮助协调。", "涉及几十户居民，大家都很关心。")
# What each account the README names finds when signing in: (how long ago it was raised, in days;
# what it must look like at `now`). A demo resident has one waiting for an answer, one being
# handled, one resolved and waiting for their rating, and one closed with a rating; member001's
# studio has new issues to accept, one being handled and one resolved.
_WAITING = ((0.05, 1.5), lambda doc, now: doc["status"] == "submitted")
_HANDLED = ((4, 12), lambda doc, now: doc["status"] in ("accepted", "in_progress") and doc["due_at"] > now)
_RESOLVED = ((8, 40), lambda doc, now: doc["status"] == "resolved"
             and doc["resolution"]["resolved_at"] > now - dt.timedelta(days=4))
_RATED = ((60, 300), lambda doc, now: doc["status"] == "closed" and (doc["feedback"] or {}).get("rating")
          in ("satisfied", "basically_satisfied"))
RESIDENT_STORY = (_WAITING, _HANDLED, _RESOLVED, _RATED)
MEMBER_STORY = (_WAITING, _WAITING, _HANDLED, _RESOLVED)
STORY_MEMBER = "member001"


def seed_demo_issues(count: int = DEMO_ISSUES, now: dt.datetime | None = None) -> dict:
    """A year of issues across the demo district, once: on a database that holds any issue it adds
    nothing. Run after `seed_demo`. Returns how many issues and neighbours it created."""
    if Issue._get_collection().find_one({}, {"_id": 1}) is not None:
        return {"issues": 0, "neighbours": 0}
    settings = current_app.config["SETTINGS"]
    now = now or utcnow()
    rng = random.Random(SEED + 1)  # apart from the district's own plan
    studios = {s.id: s for s in Studio.objects(region_path=DISTRICT_CODE, active=True)}
    if not studios:
        raise ValueError("the demo district is not there: run seed_demo first")
    neighbours, added = _neighbours(rng, studios.values(), now)
    cast = _Cast.load(studios)
    docs = histories.plan_issues(count, region_code=DISTRICT_CODE, start=now - dt.timedelta(days=365), end=now,
                                 now=now, seed=SEED, settings=settings, duplicates=count // 60)
    for doc in docs:
        _dress(rng, doc, studios[doc["studio_id"]], rng.choice(neighbours[doc["region_code"]]), cast)
    for studio_id, reporter, story in cast.stories():
        studio = studios[studio_id]
        for created_days_ago, wanted in story:
            doc = _story_issue(rng, studio, created_days_ago, wanted, now, settings)
            _dress(rng, doc, studio, reporter or rng.choice(neighbours[studio.region_code]), cast)
            docs.append(doc)
    last_numbers = _number(docs, settings)
    ids = histories.insert_issues(docs)
    for year, last in last_numbers.items():  # issues raised from now on continue each year's sequence
        Counter._get_collection().update_one({"_id": f"issue-{year}"}, {"$max": {"seq": last}}, upsert=True)
    # Written around the services, back-dated: the next rollup job rebuilds every statistics cell
    # (until then the stats service counts live).
    RollupState._get_collection().delete_many({})
    return {"issues": len(ids), "neighbours": added}


def _neighbours(rng: random.Random, studios, now) -> tuple[dict[str, list[dict]], int]:
    """Residents of every village and community (openid demo-neighbour-<region>-<n>), by region code."""
    person, phone = _people(random.Random(SEED + 2)), _phones(rng)
    planned = [{"openid": f"demo-neighbour-{studio.region_code}-{n}", "roles": ["resident"],
                "display_name": next(person), "phone": next(phone), "home_region_code": studio.region_code}
               for studio in sorted(studios, key=lambda s: s.region_code) for n in range(1, NEIGHBOURS_PER_STUDIO + 1)]
    known = set(User.objects(openid__in=[u["openid"] for u in planned]).scalar("openid"))
    added = _insert(User, [_user_fields(u, {}, {}) for u in planned if u["openid"] not in known], now)
    by_region: dict[str, list[dict]] = {}
    for user in User.objects(openid__in=[u["openid"] for u in planned]).only("id", "display_name", "phone",
                                                                            "home_region_code"):
        by_region.setdefault(user.home_region_code, []).append(
            {"id": user.id, "display_name": user.display_name, "phone": user.phone})
    return by_region, added


@dataclass
class _Cast:
    """Who acts on the issues: members by studio, coordinators by scope, and the story accounts."""

    members: dict
    coordinators: dict
    residents: list  # (home studio id, reporter) of the demo residents
    story_studio: object  # member001's first studio

    @classmethod
    def load(cls, studios: dict) -> _Cast:
        members: dict = {}
        for user in User.objects(roles="member", active=True).only("id", "display_name", "studio_ids"):
            for studio_id in user.studio_ids:
                members.setdefault(studio_id, []).append(_person(user, "member"))
        coordinators = {user.scope_region_code: _person(user, "coordinator")
                        for user in User.objects(roles="coordinator", active=True).only("id", "display_name",
                                                                                        "scope_region_code")}
        by_region = {studio.region_code: studio_id for studio_id, studio in studios.items()}
        openids = [f"demo-resident-{n}" for n in range(1, RESIDENT_COUNT + 1)]
        residents = [(by_region[user.home_region_code], {**_person(user, "resident"), "phone": user.phone})
                     for user in sorted(User.objects(openid__in=openids), key=lambda u: u.openid)
                     if user.home_region_code in by_region]
        member = User.objects(username=STORY_MEMBER).only("studio_ids").first()
        story_studio = member.studio_ids[0] if member and member.studio_ids else None
        return cls(members, coordinators, residents, story_studio)

    def stories(self):
        """(studio id, reporter or None for a neighbour, story) of every account the README names."""
        yield from ((studio_id, reporter, RESIDENT_STORY) for studio_id, reporter in self.residents)
        if self.story_studio is not None and self.story_studio not in {studio_id for studio_id, _ in self.residents}:
            yield self.story_studio, None, MEMBER_STORY

    def staff(self, rng: random.Random, studio: Studio, level: str) -> dict:
        """Whoever answers for the issue at that tier: a member of the studio, else a coordinator."""
        if level == "grassroots" and self.members.get(studio.id):
            return rng.choice(self.members[studio.id])
        return self.coordinators.get(studio.township_code if level != "district" else DISTRICT_CODE) or _SYSTEM


def _person(user, role: str) -> dict:
    return {"id": user.id, "role": role, "display_name": user.display_name}


_SYSTEM = {"role": "system", "display_name": "系统"}


def _story_issue(rng: random.Random, studio: Studio, created_days_ago: tuple, wanted, now, settings) -> dict:
    """An issue raised that long ago that stands as `wanted` says at `now` (drawn until one does)."""
    response_days, handling = histories.deadlines(settings)
    for _ in range(5000):
        created = now - dt.timedelta(days=rng.uniform(*created_days_ago))
        category = rng.choices(CATEGORIES, histories.CATEGORY_WEIGHTS)[0]
        fields = histories.simulate(rng, created, now, category, response_days, handling)
        if wanted(fields, now):
            return histories.issue_doc(rng, studio, category, created, fields, "", [None])
    # The rarest story (resolved in the last 4 days) fits about one draw in 13: never reached.
    raise RuntimeError(f"no demo issue fits the story at {studio.name}")


def _dress(rng: random.Random, doc: dict, studio: Studio, reporter: dict, cast: _Cast) -> None:
    """Put people on a simulated issue: its reporter, the studio's members and the coordinators."""
    doc.update(reporter_id=reporter["id"], reporter_name=reporter["display_name"], contact_phone=reporter.get("phone"),
               anonymous=rng.random() < 0.15,
               description=f"{studio.name.removesuffix('委员工作室')}{doc['title']}。{rng.choice(ISSUE_DETAILS)}")
    resident = {k: reporter[k] for k in ("id", "display_name")} | {"role": "resident"}
    member = cast.staff(rng, studio, "grassroots")  # one member follows the issue through
    level = "grassroots"
    for entry in doc["timeline"]:
        action = entry["action"]
        if action in ("submit", "withdraw", "feedback"):
            entry["actor"] = resident
        elif action == "close":  # unrated after the feedback window, as the auto-close job does
            entry.update(actor=_SYSTEM, note=SYSTEM_NOTE_CLOSE)
        elif action == "supervise":  # 督办: the township's coordinator, the district's once it is there
            entry["actor"] = cast.staff(rng, studio, "district" if entry["level"] == "district" else "township")
        else:  # answered, escalated, visited, resolved by whoever handled it at the tier it was at
            entry["actor"] = member if level == "grassroots" else cast.staff(rng, studio, level)
        level = entry["level"]


def _number(docs: list[dict], settings) -> dict[int, int]:
    """Numbers in order of creation per local year, as the service draws them; returns the last per year."""
    tz, following = ZoneInfo(settings.tz), {}
    docs.sort(key=lambda doc: doc["created_at"])
    for doc in docs:
        year = doc["created_at"].astimezone(tz).year
        following[year] = following.get(year, 0) + 1
        doc["number"] = f"{settings.issue_number_prefix}-{year}-{following[year]:06d}"
        doc["search_terms"] = text.index_terms(doc["title"], doc["description"], doc["number"])
    return following
