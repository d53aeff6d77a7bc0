"""Every hot query runs on an index: `explain` each one against the real database server.

SecantusDB's planner is stricter than MongoDB's (it takes an index only when the index covers
every field of the query), so a plan that passes here passes on MongoDB too.
"""

import datetime as dt

from bson import ObjectId
from pymongo import monitoring

from tests.factories import SHED


NOW = dt.datetime.now(dt.timezone.utc)


def stages(plan) -> list[str]:
    found = []
    if isinstance(plan, dict):
        if "stage" in plan:
            found.append(plan["stage"])
        for value in plan.values():
            found += stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found += stages(value)
    return found


def assert_indexed(collection, query, sort=None, hint=None):
    cursor = collection.find(query)
    if sort:
        cursor = cursor.sort(sort)
    if hint:
        cursor = cursor.hint(hint)
    plan = cursor.explain()["queryPlanner"]["winningPlan"]
    assert "COLLSCAN" not in stages(plan), (collection.name, query, plan)
    assert "IXSCAN" in stages(plan) or "IDHACK" in stages(plan) or "EXPRESS_IXSCAN" in str(plan), (query, plan)


def test_hot_queries_use_indexes(app, db, people, district, client, login):
    from yishitang.devtools.loadgen import seed_load
    from yishitang.issues import queries as issues

    with app.app_context():
        seed_load(60, progress=False)
    member, coordinator = people["member"], people["coordinator"]
    studio = district["xingfu"].id
    issue = db.issues.find_one()
    newest = [("created_at", -1), ("_id", -1)]

    # the routes of the benchmarks: queue page, detail, create, action, stats
    for user in (member, coordinator, people["admin"], people["resident"]):
        plan = issues.search(user).explain()["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in stages(plan), (user.roles, plan)
    assert_indexed(db.issues, {"_id": issue["_id"]})
    # An action's conditional update (_id, version, status) is explained as sent, with its hint,
    # in test_the_queries_requests_and_jobs_send_use_indexes below.
    assert_indexed(db.users, {"_id": member.id})  # every request loads its caller
    assert_indexed(db.users, {"studio_ids": studio, "roles": "member", "active": True})  # who hears of a new issue
    assert_indexed(db.users, {"scope_region_code": "211104001", "roles": "coordinator", "active": True})
    assert_indexed(db.counters, {"_id": "issue-2026"})
    assert_indexed(db.idempotency_keys, {"user_id": member.id, "key": "k"})
    assert_indexed(db.rate_limits, {"_id": "issues:x:0"})
    assert_indexed(db.supports, {"issue_id": issue["_id"], "user_id": member.id})
    assert_indexed(db.issues, {"studio_id": studio, "on_board": True}, newest)  # the public board
    assert_indexed(db.issues, {"search_terms": "充电"})

    # stats: region and studio cells over a period, writes since the watermark, a region cell's
    # studio cells, a studio's issues (the rebuild)
    assert_indexed(db.stats_region_cells, {"parent_code": "211104", "grain": "month", "period": {"$gte": "2026-01", "$lte": "2026-12"}})
    assert_indexed(db.stats_region_totals, {"parent_code": "211104", "grain": "year", "period": {"$gte": "2026", "$lte": "2026"}})
    assert_indexed(db.stats_region_cells, {"region_code": "211104", "grain": "day", "period": {"$gte": "2026-01-01", "$lte": "2026-01-31"}})
    assert_indexed(db.stats_cells, {"region_path": "211104", "day": {"$gte": "2026-01-01", "$lte": "2026-01-31"}})
    assert_indexed(db.stats_month_cells, {"region_path": "211104", "month": {"$gte": "2026-01", "$lte": "2026-12"}})
    assert_indexed(db.stats_month_cells, {"region_path": "211104", "month": "2026-01"})
    assert_indexed(db.issues, {"updated_at": {"$gt": NOW}})
    assert_indexed(db.issues, {"studio_id": studio})
    assert_indexed(db.issues, {"status": "accepted", "due_at": {"$lt": NOW}})  # deadline warnings, escalation

    # the scheduler's sweeps and the sender
    assert_indexed(db.issues, {"status": "resolved", "resolution.resolved_at": {"$lte": NOW}})
    assert_indexed(db.notifications, {"delivery.state": "pending", "delivery.next_attempt_at": {"$lte": NOW}})
    assert_indexed(db.notifications, {"delivery.state": "sending", "delivery.lease_until": {"$lt": NOW}})
    assert_indexed(db.notifications, {"user_id": member.id, "read_at": None}, newest)
    assert_indexed(db.consultations, {"status": "planned", "starts_at": {"$gte": NOW, "$lt": NOW + dt.timedelta(days=1)}})
    # consultation lists, as each role asks for them
    from yishitang.consultations import queries as consultations

    for user, filters in ((member, {}), (coordinator, {}), (people["resident"], {}), (people["admin"], {}),
                          (people["admin"], {"studio": str(studio)}), (people["admin"], {"region": "211104001"}),
                          (member, {"status": ["planned"]})):
        plan = consultations.search(user, **filters).explain()["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in stages(plan), (user.roles, filters, plan)
    assert_indexed(db.job_runs, {"_id": "send_outbox:1"})

    # the three-tier map
    assert_indexed(db.regions, {"ancestors": "211104"})
    assert_indexed(db.studios, {"region_path": "211104001"})
    assert_indexed(db.users, {"region_codes": "211104001", "roles": "coordinator"})
    assert_indexed(db.refresh_tokens, {"family": "f"})
    assert ObjectId.is_valid(str(issue["_id"]))


# --- the queries the app actually sends ---------------------------------------------------------------
#
# A command listener records every query the app sends while real requests are served and the
# scheduler's jobs run; each is explained as the `find` it amounts to (an update's or delete's filter
# with its hint, a count's or aggregation's leading $match), since that is the plan MongoDB uses for
# it. None may scan its collection.

QUERIES = {"find", "update", "delete", "findAndModify", "count", "aggregate", "distinct"}


class Sent(monitoring.CommandListener):
    def __init__(self):
        self.database, self.commands = None, []

    def started(self, event):
        if self.database == event.database_name and event.command_name in QUERIES:
            self.commands.append((event.command_name, dict(event.command)))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


SENT = Sent()
monitoring.register(SENT)  # at import, before the app's client is created


def as_finds(name, command):
    """The finds an app command amounts to: (collection, filter, sort, hint)."""
    collection = command[name]
    if name in ("update", "delete"):
        for statement in command[f"{name}s"]:
            yield collection, statement["q"], None, statement.get("hint")
    elif name == "aggregate":
        first = command["pipeline"][0] if command["pipeline"] else {}
        yield collection, first.get("$match", {}), None, command.get("hint")
    else:
        query = command.get("filter", command.get("query", {}))
        yield collection, query, command.get("sort"), command.get("hint")


def plan_of(db, collection, query, sort, hint):
    find = {"find": collection, "filter": query, **({"sort": sort} if sort else {}), **({"hint": hint} if hint else {})}
    return db.command({"explain": find, "verbosity": "queryPlanner"})["queryPlanner"]["winningPlan"]


def test_the_queries_requests_and_jobs_send_use_indexes(app, db, people, district, client, login, settings):
    from yishitang.issues import service as issues
    from yishitang.devtools.loadgen import seed_load
    from yishitang.scheduler import jobs, run_once

    with app.app_context():
        seed_load(60, progress=False)
    member, resident, admin = login(people["member"]), login(people["resident"]), login(people["admin"])
    studio = str(district["xingfu"].id)
    with app.test_request_context():
        mine = issues.create(people["resident"], **{**SHED, "studio_id": studio})
    year = NOW.year
    calls = [
        (member, "GET", "/api/v1/issues?page_size=20", None), (member, "GET", f"/api/v1/issues/{mine.id}", None),
        (member, "POST", f"/api/v1/issues/{mine.id}/actions", {"action": "accept", "note": "受理"}),
        (member, "POST", f"/api/v1/issues/{mine.id}/actions", {"action": "comment", "note": "已联系物业"}),
        (resident, "POST", "/api/v1/issues", {**SHED, "studio_id": studio}),
        (resident, "GET", "/api/v1/issues?mine=1", None), (resident, "GET", "/api/v1/notifications?unread=1", None),
        (login(people["coordinator"]), "GET", "/api/v1/issues?overdue=1", None),
        (login(people["neighbour"]), "GET", f"/api/v1/issues?board=1&studio={studio}", None),
        (member, "GET", "/api/v1/consultations", None),
        (admin, "GET", f"/api/v1/stats/overview?region=211104&from={year}-01-01&to={year}-12-31", None),
    ]
    SENT.database, SENT.commands = settings.mongodb_db, []
    try:
        for headers, method, url, body in calls:
            response = client.open(url, method=method, headers=headers, json=body)
            assert response.status_code in (200, 201), (url, response.get_json())
        for job in jobs():
            assert run_once(app, job, NOW)
    finally:
        SENT.database = None
    scans, explained = [], 0
    for name, command in SENT.commands:
        for collection, query, sort, hint in as_finds(name, command):
            if not query and not sort:
                continue  # reading a whole (small) collection on purpose has no index to use
            explained += 1
            plan = plan_of(db, collection, query, sort, hint)
            if "COLLSCAN" in stages(plan):
                scans.append((name, collection, query, sort, hint))
    assert explained > 50
    conditional = [s["q"] for name, c in SENT.commands if name == "update" and c["update"] == "issues"
                   for s in c["updates"] if {"version", "status"} <= set(s["q"])]
    assert len(conditional) >= 2  # the actions' conditional updates were among them
    assert not scans, "\n".join(map(str, scans))
