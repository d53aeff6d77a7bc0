"""`yishitang seed-load`: the generated issues are ones the services themselves could have made."""

from yishitang.issues import workflow


def test_generated_issues_follow_the_state_machine(app, db, client, login):
    from yishitang.devtools.loadgen import seed_load

    with app.app_context():
        counts = seed_load(300, districts=2, progress=False)
    assert counts["issues"] == 300 and counts["districts"] == 2
    assert db.regions.count_documents({"kind": "district"}) == 2
    statuses = set()
    for issue in db.issues.find():
        statuses.add(issue["status"])
        timeline = issue["timeline"]
        assert timeline[0]["action"] == "submit" and timeline[-1]["to_status"] == issue["status"], issue["number"]
        for before, after in zip(timeline, timeline[1:]):
            assert after["from_status"] == before["to_status"], issue["number"]
            action = "rate_satisfied" if after["action"] == "feedback" else after["action"]
            assert workflow.rule(after["from_status"], action) is not None, (issue["number"], after["action"])
        assert ("closed_at" in issue) == (issue["status"] == "closed")
    assert statuses == set(workflow.STATUSES)
    assert db.consultations.count_documents({}) > 0
    # the API serves them like any other issue
    admin = db.users.find_one({"username": "admin"})
    from yishitang.users.models import User

    listed = client.get("/api/v1/issues", query_string={"page_size": 5}, headers=login(User.objects.get(id=admin["_id"])))
    assert listed.status_code == 200 and len(listed.get_json()) == 5
    # numbers continue: a new issue does not collide with a generated one
    year_counters = {c["_id"]: c["seq"] for c in db.counters.find()}
    assert sum(year_counters.values()) == 300
