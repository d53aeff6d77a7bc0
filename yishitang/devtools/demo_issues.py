"""The demo district's year of issues, raised by neighbours at every studio.

`seed_demo_issues` adds issues with histories through the workflow table (histories.py), and for
the accounts the README names a story of their own; it runs only on a database without issues,
so it happens once. Run after `seed_demo` (demo.py).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import current_app

from ..db import utcnow
from ..issues import text
from ..issues.jobs import SYSTEM_NOTE_CLOSE
from ..issues.models import CATEGORIES, Counter, Issue
from ..stats.models import RollupState
from ..studios.models import Studio
from ..users.models import User
from . import histories
from .demo import DISTRICT_CODE, RESIDENT_COUNT, SEED, insert_new, people, phones, user_fields

# `yishitang serve` in demo mode adds this many issues over the last year (about 5 per studio, three
# a day across the district), plus one in 60 more marked as duplicates and the stories below; more
# would slow the first start (the embedded database writes about 300 issues a second).
DEMO_ISSUES = 1000
NEIGHBOURS_PER_STUDIO = 3  # the residents who raised them, living at each village or community

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
    person, phone = people(random.Random(SEED + 2)), phones(rng)
    planned = [{"openid": f"demo-neighbour-{studio.region_code}-{n}", "roles": ["resident"],
                "display_name": next(person), "phone": next(phone), "home_region_code": studio.region_code}
               for studio in sorted(studios, key=lambda s: s.region_code) for n in range(1, NEIGHBOURS_PER_STUDIO + 1)]
    known = set(User.objects(openid__in=[u["openid"] for u in planned]).scalar("openid"))
    added = insert_new(User, [user_fields(u, {}, {}) for u in planned if u["openid"] not in known], now)
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
    for _ in range(5000):
        created = now - dt.timedelta(days=rng.uniform(*created_days_ago))
        category = rng.choices(CATEGORIES, histories.CATEGORY_WEIGHTS)[0]
        fields = histories.simulate(rng, created, now, category, settings)
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
