"""Cursor lists for infinite scroll: no repeats and no gaps while new items arrive, no count, and a
clear 400 for a cursor that is not ours, not for this list, or too old."""

from __future__ import annotations

import datetime as dt

from tests.test_app import assert_error

INBOX = "/api/v1/notifications"
ISSUES = "/api/v1/issues"


def scroll(client, url, headers, page_size, **query):
    """Every page of a list by cursor: (items, how many requests)."""
    items, cursor, requests = [], "", 0
    while cursor is not None:
        response = client.get(url, headers=headers, query_string={**query, "cursor": cursor, "page_size": page_size})
        assert response.status_code == 200, response.get_json()
        assert "X-Pagination" not in response.headers  # nothing was counted
        items += response.get_json()
        cursor = response.headers.get("X-Next-Cursor")
        requests += 1
    return items, requests


def notify_many(user, count, at=None, prefix="消息"):
    from yishitang.notifications.service import notify

    for n in range(count):
        notify([user.id], "test", title=f"{prefix}{n}", now=at)


def test_the_inbox_scrolls_by_cursor_without_repeats_or_gaps_while_items_arrive(client, people, login):
    from yishitang.notifications.service import notify

    resident = people["resident"]
    same_moment = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.timezone.utc)
    notify_many(resident, 7, at=same_moment)  # ties on created_at: the id breaks them
    notify_many(resident, 5, prefix="更早")
    headers = login(resident)
    everything = [n["id"] for n in client.get(INBOX, headers=headers, query_string={"page_size": 100}).get_json()]

    seen, cursor, pages = [], "", 0
    while cursor is not None:
        response = client.get(INBOX, headers=headers, query_string={"cursor": cursor, "page_size": 5})
        seen += [n["id"] for n in response.get_json()]
        cursor, pages = response.headers.get("X-Next-Cursor"), pages + 1
        if pages == 1:
            notify([resident.id], "test", title="新到的消息")  # arrives between pages: newer, so above the cursor
    assert seen == everything and pages == 3
    last = client.get(INBOX, headers=headers, query_string={"cursor": "", "page_size": 13})
    assert len(last.get_json()) == 13 and "X-Next-Cursor" not in last.headers


def test_a_numbered_page_also_says_where_the_cursor_continues(client, people, login):
    notify_many(people["resident"], 4)
    headers = login(people["resident"])
    first = client.get(INBOX, headers=headers, query_string={"page": 1, "page_size": 3})
    assert first.headers["X-Pagination"] and first.headers["X-Next-Cursor"]
    rest = client.get(INBOX, headers=headers, query_string={"cursor": first.headers["X-Next-Cursor"], "page_size": 3})
    assert [n["title"] for n in first.get_json() + rest.get_json()] == ["消息3", "消息2", "消息1", "消息0"]


def test_a_tampered_foreign_or_expired_cursor_is_400(app, client, people, login):
    from yishitang import pagination

    notify_many(people["resident"], 3)
    notify_many(people["neighbour"], 3)
    headers = login(people["resident"])
    cursor = client.get(INBOX, headers=headers, query_string={"cursor": "", "page_size": 1}).headers["X-Next-Cursor"]
    body, _, sig = cursor.partition(".")
    for bad in (body + "." + "0" * 32, body[:-2] + "." + sig, "not-a-cursor", "", "x" * 400):
        if bad:
            assert_error(client.get(INBOX, headers=headers, query_string={"cursor": bad}), 400, "bad_cursor")
    # the neighbour's inbox, or the same inbox with other filters, is another list
    assert_error(client.get(INBOX, headers=login(people["neighbour"]), query_string={"cursor": cursor}), 400, "bad_cursor")
    assert_error(client.get(INBOX, headers=headers, query_string={"cursor": cursor, "unread": 1}), 400, "bad_cursor")
    with app.test_request_context(INBOX, query_string={"cursor": cursor}):
        from flask import g

        g.user = people["resident"]
        stale = pagination.encode([dt.datetime.now(dt.timezone.utc), people["resident"].id],
                                  now=dt.datetime.now().timestamp() - pagination.CURSOR_TTL_S - 1)
    assert_error(client.get(INBOX, headers=headers, query_string={"cursor": stale}), 400, "cursor_expired")
    assert client.get(INBOX, headers=headers, query_string={"cursor": cursor}).status_code == 200


def test_the_members_queue_and_the_board_scroll_by_cursor_while_issues_arrive(client, people, login, make_issue, district):
    resident, member = people["resident"], people["member"]
    for n in range(7):
        make_issue(resident, title=f"楼道问题{n}")
    queue, requests = scroll(client, ISSUES, login(member), 3)
    assert [i["title"] for i in queue] == [f"楼道问题{n}" for n in range(6, -1, -1)] and requests == 3

    headers, seen, cursor = login(people["neighbour"]), [], ""
    board = {"board": 1, "studio": str(district["xingfu"].id)}
    while cursor is not None:
        response = client.get(ISSUES, headers=headers, query_string={**board, "cursor": cursor, "page_size": 2})
        seen += [i["id"] for i in response.get_json()]
        cursor = response.headers.get("X-Next-Cursor")
        if len(seen) == 2:
            make_issue(resident, title="刚提出的新议题")  # newer than the cursor: never in this walk
    assert seen == [i["id"] for i in queue]
    assert_error(client.get(ISSUES, headers=login(member), query_string={"cursor": response.request.args.get("cursor")}),
                 400, "bad_cursor")  # the board's cursor is not the queue's


def test_sessions_scroll_by_cursor_in_either_order(client, people, login, district):
    member = people["member"]
    start = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).replace(microsecond=0, second=0, minute=0)
    for n in range(5):
        at = start + dt.timedelta(days=n + 1)
        assert client.post("/api/v1/consultations", headers=login(member), json={
            "studio_id": str(district["xingfu"].id), "topic": f"议事会{n}", "starts_at": at.isoformat(),
            "ends_at": (at + dt.timedelta(hours=1)).isoformat(), "location": "社区二楼", "capacity": 20}).status_code == 201
    latest, _ = scroll(client, "/api/v1/consultations", login(member), 2)
    soonest, _ = scroll(client, "/api/v1/consultations", login(member), 2, order="asc")
    assert [c["topic"] for c in latest] == [f"议事会{n}" for n in range(4, -1, -1)]
    assert [c["topic"] for c in soonest] == [f"议事会{n}" for n in range(5)]
