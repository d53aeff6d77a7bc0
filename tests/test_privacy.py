"""Personal data (PIPL): a copy of everything about a person, and erasing their account."""

from tests.test_app import assert_error
from tests.test_issues import upload


def test_export_holds_everything_about_the_caller_and_nothing_about_others(client, login, people, make_issue, fake_wechat):
    resident = people["resident"]
    photo = upload(client, login(resident))
    raised = make_issue(resident, attachments=[photo])
    other = make_issue(people["neighbour"], title="邻居的问题")
    client.post(f"/api/v1/issues/{other['id']}/supports", headers=login(resident))
    client.post(f"/api/v1/issues/{raised['id']}/actions", json={"action": "accept"}, headers=login(people["member"]))

    response = client.get("/api/v1/me/export", headers=login(resident))
    assert response.status_code == 200
    data = response.get_json()
    assert data["profile"]["phone"] == "13812345678" and data["profile"]["openid"] == resident.openid
    assert [i["id"] for i in data["issues_raised"]] == [raised["id"]]
    assert data["issues_raised"][0]["contact_phone"] == "13812345678"
    assert [s["issue_id"] for s in data["supports"]] == [other["id"]]
    assert [u["id"] for u in data["uploads"]] == [photo]
    assert [n["kind"] for n in data["notifications"]] == ["issue_accepted"]
    assert "13900001111" not in response.get_data(as_text=True)  # the neighbour's phone
    assert_error(client.get("/api/v1/me/export"), 401, "missing_token")


def test_deleting_an_account_anonymises_the_record_and_erases_the_person(client, login, people, make_issue, db):
    resident = people["resident"]
    headers = login(resident)
    issue = make_issue(resident)
    client.post(f"/api/v1/issues/{issue['id']}/actions", json={"action": "comment", "note": "请尽快处理"}, headers=headers)
    spare = upload(client, headers)

    assert client.delete("/api/v1/me", headers=headers).status_code == 204
    assert_error(client.get("/api/v1/me", headers=headers), 401, "account_disabled")

    stored_user = db.users.find_one({"_id": resident.id})
    for field in ("phone", "openid", "unionid", "home_region_code"):
        assert field not in stored_user, field
    assert stored_user["display_name"] == "已注销用户" and stored_user["active"] is False

    # the issue stays, for the public record, with nobody's name or phone on it
    seen = client.get(f"/api/v1/issues/{issue['id']}", headers=login(people["member"])).get_json()
    assert seen["status"] == "submitted" and seen["contact_phone"] is None
    assert seen["reporter"]["display_name"] == "已注销用户" and seen["reporter"]["anonymous"] is True
    actors = [(e["action"], e["actor"]["role"], e["actor"]["display_name"]) for e in seen["timeline"]]
    assert actors == [("submit", "resident", "已注销用户"), ("comment", "resident", "已注销用户")]
    assert resident.display_name not in str(db.issues.find_one())
    assert "13812345678" not in str(db.issues.find_one())
    assert db.notifications.count_documents({"user_id": resident.id}) == 0
    assert db.uploads.count_documents({"_id": __import__("bson").ObjectId(spare)}) == 0
    # the same WeChat account signing in again starts afresh
    assert db.refresh_tokens.count_documents({"user_id": resident.id, "revoked_at": None}) == 0


def test_staff_accounts_are_closed_by_admins_not_by_themselves(client, login, people):
    for role in ("member", "coordinator", "admin"):
        assert_error(client.delete("/api/v1/me", headers=login(people[role])), 403, "role_forbidden")
    assert_error(client.delete("/api/v1/me"), 401, "missing_token")
