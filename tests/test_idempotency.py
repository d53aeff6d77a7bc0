"""The edges of the `Idempotency-Key` claim through HTTP: key length, expiry, a claim still running."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import ISSUES, SHED
from tests.test_app import assert_error

UTC = dt.timezone.utc


@pytest.fixture
def submit(client, login, people, district):
    def send(key, **fields):
        body = {**SHED, "studio_id": str(district["xingfu"].id), **fields}
        return client.post(ISSUES, json=body, headers={**login(people["resident"]), "Idempotency-Key": key})

    return send


@pytest.mark.parametrize("key", ["", "k" * 129])
def test_a_key_outside_1_to_128_characters_is_refused_and_nothing_is_written(submit, db, key):
    assert_error(submit(key), 422, "invalid_idempotency_key")
    assert db.issues.count_documents({}) == 0 and db.idempotency_keys.count_documents({}) == 0


@pytest.mark.parametrize("key", ["k", "k" * 128])
def test_keys_of_1_and_128_characters_are_honoured(submit, db, key):
    first = submit(key)
    assert first.status_code == 201
    again = submit(key)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert db.issues.count_documents({}) == 1


def test_a_key_older_than_24_hours_starts_afresh(submit, db):
    assert submit("day-old").status_code == 201
    db.idempotency_keys.update_one({}, {"$set": {"created_at": dt.datetime.now(UTC) - dt.timedelta(hours=25)}})
    fresh = submit("day-old", title="隔天用同一个键提的新议题")  # another request: reused only within 24 h
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    assert db.issues.count_documents({}) == 2 and db.idempotency_keys.count_documents({}) == 1
    replayed = submit("day-old", title="隔天用同一个键提的新议题")
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.get_json() == fresh.get_json()


def test_a_claim_still_running_answers_409_until_its_lease_lapses(submit, client, login, people, district, db):
    """The first request is still running (no answer stored): a retry waits; after a minute the
    claim is taken to belong to a request that died, and the retry runs for real. Taking it over
    frees that one claim, not the neighbour's, still running."""
    neighbour = {**login(people["neighbour"]), "Idempotency-Key": "slow"}
    body = {**SHED, "studio_id": str(district["xingfu"].id)}
    assert submit("slow").status_code == 201 and client.post(ISSUES, json=body, headers=neighbour).status_code == 201
    db.idempotency_keys.update_many({}, {"$set": {"status": None, "created_at": dt.datetime.now(UTC)}})
    waiting = submit("slow")
    assert_error(waiting, 409, "request_in_progress")
    assert waiting.headers["Retry-After"] == "1"
    assert db.issues.count_documents({}) == 2
    resident_claim = {"user_id": people["resident"].id}
    db.idempotency_keys.update_one(resident_claim, {"$set": {"created_at": dt.datetime.now(UTC) - dt.timedelta(seconds=61)}})
    taken_over = submit("slow", title="接手的请求换了内容也照样运行")
    assert taken_over.status_code == 201 and "Idempotent-Replayed" not in taken_over.headers
    assert db.issues.count_documents({}) == 3
    assert db.idempotency_keys.find_one(resident_claim)["status"] == 201
    assert_error(client.post(ISSUES, json=body, headers=neighbour), 409, "request_in_progress")


def test_a_retry_gets_its_own_answer_among_other_keys_and_other_users(client, login, people, district):
    """The claim is found by user and key together: not another user's same key, not this user's other key."""
    body = {**SHED, "studio_id": str(district["xingfu"].id)}

    def send(user, key, **fields):
        return client.post(ISSUES, json={**body, **fields}, headers={**login(people[user]), "Idempotency-Key": key})

    resident_first = send("resident", "key-a").get_json()["id"]
    neighbour_first = send("neighbour", "key-a").get_json()["id"]  # the same body: the same fingerprint
    other_key = send("resident", "key-b", title="同一居民的第二个议题").get_json()["id"]
    assert len({resident_first, neighbour_first, other_key}) == 3
    assert send("neighbour", "key-a").get_json()["id"] == neighbour_first
    assert send("resident", "key-b", title="同一居民的第二个议题").get_json()["id"] == other_key


def test_a_write_without_a_key_runs_every_time(client, login, people, make_issue, db):
    issue = make_issue(people["resident"])
    for _ in range(2):  # a route with a path parameter: the view gets it without a key too
        response = client.post(f"{ISSUES}/{issue['id']}/actions", json={"action": "comment", "note": "收到"},
                               headers=login(people["member"]))
        assert response.status_code == 200
    assert len(db.issues.find_one()["timeline"]) == 3 and db.idempotency_keys.count_documents({}) == 0
