"""Every hot query runs on an index: `explain` each one against the real database server.

SecantusDB's planner is stricter than MongoDB's (it takes an index only when the index covers
every field of the query), so a plan that passes here passes on MongoDB too.
"""

import datetime as dt

from bson import ObjectId


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
    # An action's conditional update adds version and status to the _id: SecantusDB's explain
    # reports that as a scan, yet runs it on _id (1.5 ms at 10k issues, as fast as _id alone).
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
