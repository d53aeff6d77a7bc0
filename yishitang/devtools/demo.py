"""Demo data: a fictional district at the scale of a real one (16 towns/streets, 191 studios, 209 members).

The district, its towns, streets, villages, communities and people are made up; only the scale
and the three-tier shape follow a real district's annual report (see CONTEXT.md). Everything is
generated from a fixed seed, so every run plans the same records; `seed_demo` inserts only those
that are missing (regions by code, studios by region, users by username or openid) and never
edits a record that exists, so a second run creates and changes nothing.

The demo's year of issues is demo_issues.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import lru_cache

from tqdm import tqdm
from werkzeug.security import generate_password_hash

from ..db import utcnow
from ..regions.models import Region
from ..studios.models import Studio
from ..users.models import COMMITTEES, User

DISTRICT_CODE = "211104"
DISTRICT_NAME = "浑南示范区"  # fictional
MEMBER_COUNT = 209
MEMBER_PASSWORD = "demo-member-pass"
COORDINATOR_PASSWORD = "demo-coord-pass"
ADMIN_PASSWORD = "demo-admin-pass"
RESIDENT_COUNT = 5
SEED = 2026

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
    studios_by_township = _plan_places(rng, plan)
    person, phone = people(rng), phones(rng)
    _plan_members(rng, plan, studios_by_township, person, phone)
    _plan_others(plan, person, phone)
    return plan


def _plan_places(rng: random.Random, plan: _Plan) -> dict[str, list[str]]:
    """The townships, their villages or communities and one studio at each; studio codes by township."""
    community_names = _unique_names(rng, [w + "社区" for w in COMMUNITY_WORDS])
    village_names = _unique_names(rng, [w + "村" for w in VILLAGE_NAMES] +
                                  [s + x + "村" for s in VILLAGE_SURNAMES for x in VILLAGE_SUFFIXES])
    studios_by_township: dict[str, list[str]] = {}
    streets = sum(1 for _, kind, _ in TOWNSHIPS if kind == "street")
    for t, (township_name, kind, count) in enumerate(TOWNSHIPS, start=1):
        township = f"{DISTRICT_CODE}{t:03d}"
        plan.regions.append({"code": township, "name": township_name, "kind": kind,
                             "parent_code": DISTRICT_CODE, "ancestors": [DISTRICT_CODE]})
        centre = _township_centre(t, kind, streets)
        child_kind = "community" if kind == "street" else "village"
        studios_by_township[township] = []
        for g in range(1, count + 1):
            code = f"{township}{g:03d}"
            name = next(community_names if child_kind == "community" else village_names)
            plan.regions.append({"code": code, "name": name, "kind": child_kind, "parent_code": township,
                                 "ancestors": [DISTRICT_CODE, township]})
            plan.studios.append(_studio(rng, township_name, code, name, child_kind, centre))
            studios_by_township[township].append(code)
    return studios_by_township


def _studio(rng: random.Random, township_name: str, code: str, name: str, kind: str, centre: tuple) -> dict:
    centre_lng, centre_lat, spread = centre
    if kind == "community":
        address = f"{DISTRICT_NAME}{township_name}{rng.choice(ROADS)}{rng.randint(1, 199)}号（{name}党群服务中心）"
    else:
        address = f"{DISTRICT_NAME}{township_name}{name}村民委员会"
    return {"name": f"{name}委员工作室", "region_code": code, "region_path": _path(code), "address": address,
            "location": [round(centre_lng + rng.uniform(-spread, spread), 6),
                         round(centre_lat + rng.uniform(-spread, spread) * 0.75, 6)],
            "open_hours": rng.choice(OPEN_HOURS)}


def _plan_members(rng: random.Random, plan: _Plan, studios_by_township: dict, person, phone) -> None:
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


def _plan_others(plan: _Plan, person, phone) -> None:
    """Coordinators of each township and of the district, the admin and the demo residents."""
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


def people(rng: random.Random):
    seen: set[str] = set()
    while True:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN_CHARS)
        if name not in seen:
            seen.add(name)
            yield name


def phones(rng: random.Random):
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
        created += insert_new(Region, [r for r in plan.regions if r["code"] not in known], now)
        bar.update(len(plan.regions))

        bar.set_postfix_str("委员工作室")
        codes = [s["region_code"] for s in plan.studios]
        known = set(Studio.objects(region_code__in=codes).scalar("region_code"))
        created += insert_new(Studio, [s for s in plan.studios if s["region_code"] not in known], now)
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
        created += insert_new(User, [user_fields(u, studio_ids, hashes) for u in missing], now)
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


def user_fields(planned: dict, studio_ids: dict, hashes: dict) -> dict:
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


def insert_new(model, rows: list[dict], now) -> int:
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
