"""Coordinators' figures: a small district with known outcomes checked by hand, the rollups checked
against a from-scratch count on random districts, the exports, the command line, who may look."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import statistics
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest

from tests.test_app import assert_error
from tests.test_cli import run_cli

OVERVIEW = "/api/v1/stats/overview"
SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = {"from": "2026-03-01", "to": "2026-04-30"}


def local(text: str) -> dt.datetime:
    """'2026-03-02 09:00' in Shanghai, as UTC."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(dt.timezone.utc)


DAYS = dt.timedelta(days=1)


@pytest.fixture
def story(app, people, district):
    """`story(studio, created, steps, category=...)`: an issue raised at `created` (back-dated), then
    taken through the service's transitions, each `days` after its creation."""
    from yishitang.issues import service
    from yishitang.issues.models import Issue

    actors = {"admin": people["admin"], "reporter": people["resident"], "coordinator": people["coordinator"]}

    def make(studio, created, steps=(), category="community_facilities", title="老旧小区充电车棚"):
        with app.test_request_context():
            issue = service.create(people["resident"], title=title, category=category,
                                   description="幸福小区 3 号楼前电动车无处充电，希望建一个充电车棚。",
                                   studio_id=str(district[studio].id))
            Issue._get_collection().update_one({"_id": issue.id}, {"$set": {
                "created_at": created, "updated_at": created, "timeline.0.at": created, "due_at": created + 3 * DAYS}})
            issue = Issue.objects.get(id=issue.id)
            for days, who, action, *params in steps:
                issue = service.transition(issue, action, actors[who], now=created + days * DAYS, note="办理说明",
                                           **(params[0] if params else {}))
        return issue

    return make


@pytest.fixture
def known(story):
    """Eleven issues in March and April 2026 (and one just before) with outcomes worked out by hand."""
    t0 = local("2026-03-02 09:00")
    issues = {
        # 幸福社区 (东湖街道)
        "A": story("xingfu", t0, [(1, "admin", "accept"), (2, "admin", "comment", {"visit": True}),
                                  (5, "admin", "resolve"), (6, "reporter", "rate_satisfied")]),
        "B": story("xingfu", t0, [(4, "admin", "accept"), (10, "admin", "resolve"), (11, "reporter", "rate_unsatisfied"),
                                  (14, "admin", "resolve"), (15, "reporter", "rate_basically_satisfied")]),
        "C": story("xingfu", t0, [(1, "reporter", "withdraw")]),
        # created 00:10 on 1 March in Shanghai: still 28 February in UTC
        "D": story("xingfu", local("2026-03-01 00:10"), [(2, "admin", "reject")]),
        "E": story("xingfu", t0, [(0.5, "admin", "accept"), (1, "admin", "escalate"), (2, "admin", "escalate"),
                                  (3, "admin", "supervise")]),
        # 和平社区 (东湖街道)
        "F": story("heping", t0),
        "G": story("heping", t0, [(1, "admin", "accept"), (3, "admin", "resolve"), (11, "coordinator", "close")]),
        "H": story("heping", t0, [(2, "admin", "accept"), (2, "admin", "comment", {"visit": True}), (4, "admin", "resolve"),
                                  (5, "reporter", "rate_unsatisfied"), (8, "admin", "resolve")],
                   category="environment", title="垃圾分类投放点异味"),
        # 柳树村 (西山镇)
        "I": story("liushu", t0, [(1, "admin", "accept"), (1, "admin", "comment", {"visit": True}), (2, "admin", "start")],
                   category="traffic", title="学校周边车辆管理"),
        "K": story("liushu", local("2026-04-15 09:00"), [(3, "admin", "accept"), (4, "admin", "resolve"),
                                                         (4.5, "reporter", "rate_satisfied")], category="traffic"),
        # 23:50 on 28 February in Shanghai: outside the period
        "L": story("liushu", local("2026-02-28 23:50"), [(1, "admin", "accept")], category="traffic"),
    }
    issues["J"] = story("liushu", t0, [(1, "admin", "duplicate", {"duplicate_of": str(issues["I"].id)})],
                        category="traffic", title="学校门口车辆乱停")
    return issues


def overview(client, login, user, expect=200, **params):
    response = client.get(OVERVIEW, query_string=params, headers=login(user))
    assert response.status_code == expect, response.get_json()
    return response.get_json()


def rows_by_group(body):
    return {row["group"]: row for row in body["rows"]}


def check(row, **expected):
    assert {key: row[key] for key in expected} == expected


# --- the small district, by hand ------------------------------------------------------------------

def test_district_totals_by_hand(client, login, people, known):
    body = overview(client, login, people["admin"], region="211104", **PERIOD)
    assert body["region"] == {"code": "211104", "name": "示范区", "kind": "district"}
    assert (body["from"], body["to"], body["group_by"], body["time_zone"]) == ("2026-03-01", "2026-04-30", "township", "Asia/Shanghai")
    # received: A B C D E F G H I J K (L is from February).
    # response: in time A D E G H I K (K after exactly 3 days); late B; F never answered (due long ago);
    #   C withdrawn and J merged as a duplicate before any answer are left out -> 7 / 9.
    # accepted (no duplicates): A B E G H I K; met: A H I (visits); closed: A B G K.
    # latest ratings: A satisfied, B basically (after a reopen), H unsatisfied (resolved again, not re-rated),
    #   K satisfied; G closed by a coordinator with no rating -> 3 / 4.
    # days to close: K 4.5, A 6, G 11, B 15 -> median 8.5.
    # overdue open now: E (accepted at the district), F (never answered), I (in progress).
    # escalated: E, once although escalated twice; supervised: E.
    check(body["totals"], received=11, responded_in_time=7, response_base=9, response_pending=0,
          withdrawn_before_response=1, duplicate_before_response=1, response_rate=0.7778,
          accepted=7, met=3, meeting_rate=0.4286, closed=4, closure_rate=0.5714,
          rated=4, satisfied=2, basically_satisfied=1, unsatisfied=1, satisfaction_rate=0.75,
          median_days_to_close=8.5, overdue_open=3, escalated=1, supervised=1)


def test_by_township_each_issue_counts_in_its_own_region(client, login, people, known):
    rows = rows_by_group(overview(client, login, people["district_coordinator"], group_by="township", **PERIOD))
    assert list(rows) == ["211104001", "211104002"]
    # 东湖街道: A–H. E went up to the district and still counts here, once.
    check(rows["211104001"], name="东湖街道", received=8, responded_in_time=5, response_base=7, response_rate=0.7143,
          accepted=5, met=2, meeting_rate=0.4, closed=3, closure_rate=0.6, rated=3, satisfaction_rate=0.6667,
          median_days_to_close=11.0, overdue_open=2, escalated=1, supervised=1)
    # 西山镇: I, J (duplicate of I), K.
    check(rows["211104002"], name="西山镇", received=3, responded_in_time=2, response_base=2, response_rate=1.0,
          accepted=2, met=1, meeting_rate=0.5, closed=1, closure_rate=0.5, rated=1, satisfaction_rate=1.0,
          median_days_to_close=4.5, overdue_open=1, escalated=0, supervised=0)


def test_by_studio_month_and_category(client, login, people, known, district):
    by_studio = rows_by_group(overview(client, login, people["admin"], group_by="studio", **PERIOD))
    xingfu, heping, liushu = (str(district[name].id) for name in ("xingfu", "heping", "liushu"))
    assert list(by_studio) == [xingfu, heping, liushu]
    check(by_studio[xingfu], name="幸福社区委员工作室", received=5, response_rate=0.75, meeting_rate=0.3333,
          closure_rate=0.6667, satisfaction_rate=1.0, median_days_to_close=10.5, overdue_open=1, escalated=1)
    # 和平社区: F unanswered; H's "unsatisfied" stands while it waits for a new rating.
    check(by_studio[heping], received=3, response_rate=0.6667, meeting_rate=0.5, closure_rate=0.5,
          rated=1, unsatisfied=1, satisfaction_rate=0.0, median_days_to_close=11.0, overdue_open=1)

    by_month = rows_by_group(overview(client, login, people["admin"], group_by="month", **PERIOD))
    assert [(g, r["name"]) for g, r in by_month.items()] == [("2026-03", "2026年3月"), ("2026-04", "2026年4月")]
    check(by_month["2026-03"], received=10, response_rate=0.75, meeting_rate=0.5, closure_rate=0.5,
          satisfaction_rate=0.6667, median_days_to_close=11.0, overdue_open=3)
    check(by_month["2026-04"], received=1, response_rate=1.0, meeting_rate=0.0, closure_rate=1.0,
          satisfaction_rate=1.0, median_days_to_close=4.5, overdue_open=0)

    by_category = rows_by_group(overview(client, login, people["admin"], group_by="category", **PERIOD))
    assert len(by_category) == 9 and by_category["elderly_care"]["name"] == "养老服务"
    check(by_category["community_facilities"], received=7, closed=3)
    check(by_category["environment"], received=1, satisfaction_rate=0.0)
    check(by_category["traffic"], received=3, closure_rate=0.5)
    check(by_category["education"], received=0, response_rate=None, meeting_rate=None, closure_rate=None,
          satisfaction_rate=None, median_days_to_close=None)


def test_a_coordinator_sees_their_scope_by_default(client, login, people, known, district):
    body = overview(client, login, people["coordinator"], **PERIOD)
    assert body["region"]["code"] == "211104001" and body["group_by"] == "studio"
    assert [r["group"] for r in body["rows"]] == [str(district["xingfu"].id), str(district["heping"].id)]
    check(body["totals"], received=8, response_rate=0.7143, closure_rate=0.6)
    one_village = overview(client, login, people["coordinator"], region="211104001001", group_by="township", **PERIOD)
    assert [r["name"] for r in one_village["rows"]] == ["东湖街道"] and one_village["totals"]["received"] == 5


def test_ranking_leaves_out_small_groups_and_says_so(client, login, people, known, app, monkeypatch, district):
    body = overview(client, login, people["admin"], group_by="studio", rank="closure_rate", **PERIOD)
    assert body["min_issues"] == 5 and body["rank"] == "closure_rate"
    assert [(r["name"], r["rank"]) for r in body["rows"]] == [("幸福社区委员工作室", 1)]
    assert body["excluded"] == [{"group": str(district["heping"].id), "name": "和平社区委员工作室", "received": 3},
                                {"group": str(district["liushu"].id), "name": "柳树村委员工作室", "received": 3}]
    assert body["totals"]["received"] == 11  # the totals keep everyone

    monkeypatch.setitem(app.config, "SETTINGS", app.config["SETTINGS"].replace(stats_min_issues_for_rank=3))
    body = overview(client, login, people["admin"], group_by="studio", rank="closure_rate", **PERIOD)
    # 2/3 first; 1/2 and 1/2 share second place, in their natural order
    assert [(r["name"], r["closure_rate"], r["rank"]) for r in body["rows"]] == [
        ("幸福社区委员工作室", 0.6667, 1), ("和平社区委员工作室", 0.5, 2), ("柳树村委员工作室", 0.5, 2)]
    assert body["excluded"] == []


def test_an_issue_still_inside_its_response_deadline_is_pending(client, login, people, story, district):
    from yishitang.db import utcnow

    story("xingfu", utcnow() - dt.timedelta(hours=2))  # not answered yet, but not late either
    story("xingfu", utcnow() - 4 * DAYS)  # not answered and late
    body = overview(client, login, people["admin"])  # default period: this year to today
    check(body["totals"], received=2, response_pending=1, response_base=1, responded_in_time=0, response_rate=0.0)


def test_a_deadline_that_passes_between_job_runs_is_compacted_and_still_counted(
        app, client, login, people, story, district, monkeypatch):
    """The job lists a deadline still ahead; once it has passed, the next run counts it as passed
    and clears the list, and the figures read the same before and after."""
    from yishitang.db import utcnow
    from yishitang.stats import jobs, rollups, service

    now = utcnow()
    story("xingfu", now - dt.timedelta(hours=2))  # unanswered: response due in 70 hours, open: due too
    with app.app_context():
        jobs.refresh_rollups(now)
    [stored] = list(rollups.days_collection().find({}))
    assert stored["next_due"] is not None
    assert [len(c["unanswered_due"]) for c in stored["by_category"].values()] == [1]

    later = now + 4 * DAYS
    with app.test_request_context():
        before = service.overview(people["admin"], now=later)["totals"]
    monkeypatch.setattr(rollups, "utcnow", lambda: later)
    with app.app_context():
        assert jobs.refresh_rollups(later)["cells_written"] >= 1
    [stored] = list(rollups.days_collection().find({}))
    counters = next(iter(stored["by_category"].values()))
    assert stored["next_due"] is None and counters["unanswered_due"] == counters["open_due"] == []
    assert counters["unanswered_passed"] == counters["open_passed"] == 1
    with app.test_request_context():
        after = service.overview(people["admin"], now=later)
    assert after["totals"] == before
    assert after["rollup"]["recomputed_cells"] == 0
    assert (after["totals"]["response_pending"], after["totals"]["response_base"], after["totals"]["overdue_open"]) == (0, 1, 1)


def test_rates_are_null_without_a_denominator(client, login, people, district):
    body = overview(client, login, people["admin"], **PERIOD)
    check(body["totals"], received=0, response_rate=None, meeting_rate=None, closure_rate=None,
          satisfaction_rate=None, median_days_to_close=None, overdue_open=0)
    assert [r["received"] for r in body["rows"]] == [0, 0]


# --- who may look, and bad input ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ["resident", "member"])
def test_residents_and_members_may_not_look(client, login, people, role):
    assert_error(client.get(OVERVIEW, headers=login(people[role])), 403, "role_forbidden")
    assert_error(client.get(OVERVIEW + ".csv", headers=login(people[role])), 403, "role_forbidden")


def test_a_coordinator_outside_the_region_is_refused(client, login, people):
    other = people["other_coordinator"]  # 西山镇
    assert_error(client.get(OVERVIEW, query_string={"region": "211104001"}, headers=login(other)), 403, "scope_forbidden")
    assert_error(client.get(OVERVIEW, query_string={"region": "211104"}, headers=login(other)), 403, "scope_forbidden")
    assert_error(client.get(OVERVIEW + ".xlsx", query_string={"region": "211104001001"}, headers=login(other)),
                 403, "scope_forbidden")
    assert overview(client, login, other, region="211104002001")["region"]["name"] == "柳树村"


def test_no_token_is_401(client):
    for path in (OVERVIEW, OVERVIEW + ".csv", OVERVIEW + ".xlsx"):
        assert_error(client.get(path), 401, "missing_token")


@pytest.mark.parametrize("params, field", [
    ({"group_by": "week"}, "group_by"), ({"rank": "received"}, "rank"), ({"from": "2026-13-01"}, "from"),
    ({"to": "yesterday"}, "to"), ({"region": "21-11"}, "region"), ({"from": "2026-05-01", "to": "2026-04-30"}, "from"),
    ({"from": "2000-01-01", "to": "2026-01-01"}, "to"),
])
def test_bad_parameters_are_422(client, login, people, params, field):
    body = assert_error(client.get(OVERVIEW, query_string=params, headers=login(people["admin"])), 422, "validation_failed")
    assert field in body["errors"], body


def test_unknown_region_is_404(client, login, people):
    assert_error(client.get(OVERVIEW, query_string={"region": "999999"}, headers=login(people["admin"])),
                 404, "region_not_found")


# --- exports and the terminal ----------------------------------------------------------------------

def test_csv_has_the_json_numbers_under_chinese_headers(client, login, people, known, app, monkeypatch):
    monkeypatch.setitem(app.config, "SETTINGS", app.config["SETTINGS"].replace(stats_min_issues_for_rank=3))
    body = overview(client, login, people["admin"], rank="response_rate", **PERIOD)
    response = client.get(OVERVIEW + ".csv", query_string={**PERIOD, "rank": "response_rate"}, headers=login(people["admin"]))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="yishitang-stats-211104-2026-03-01_2026-04-30.csv"')
    assert "filename*=UTF-8''%E7%A4%BA%E8%8C%83%E5%8C%BA" in disposition  # 示范区...
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][:13] == ["镇街", "代码", "名次", "收到议题", "答复率(%)", "见面率(%)", "办结率(%)", "满意率(%)",
                             "办结天数中位数", "超期未办结", "上报", "督办", "按期答复"]
    assert [line[0] for line in table[1:]] == ["西山镇", "东湖街道", "合计"]  # ranked: 100% before 71.4%
    total = dict(zip(table[0], table[-1]))
    assert total == {**total, "收到议题": "11", "答复率(%)": "77.8", "见面率(%)": "42.9", "办结率(%)": "57.1",
                     "满意率(%)": "75.0", "办结天数中位数": "8.5", "超期未办结": "3", "上报": "1", "督办": "1",
                     "按期答复": "7", "应答复": "9", "名次": ""}
    dongHu = dict(zip(table[0], table[2]))
    row = rows_by_group(body)["211104001"]
    assert dongHu["名次"] == "2" and dongHu["答复率(%)"] == "71.4" and int(dongHu["已受理"]) == row["accepted"]


def test_xlsx_has_the_json_numbers(client, login, people, known):
    from openpyxl import load_workbook

    body = overview(client, login, people["admin"], group_by="studio", **PERIOD)
    response = client.get(OVERVIEW + ".xlsx", query_string={**PERIOD, "group_by": "studio"}, headers=login(people["admin"]))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert ".xlsx" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames == ["统计", "说明"]
    sheet = book["统计"]
    header = [c.value for c in sheet[1]]
    assert header[:8] == ["委员工作室", "代码", "收到议题", "答复率", "见面率", "办结率", "满意率", "办结天数中位数"]
    for line, row in zip(sheet.iter_rows(min_row=2, values_only=True), [*body["rows"], body["totals"]]):
        values = dict(zip(header, line))
        assert values["委员工作室"] == row["name"] and values["收到议题"] == row["received"]
        assert values["答复率"] == row["response_rate"] and values["满意率"] == row["satisfaction_rate"]
        assert values["办结天数中位数"] == row["median_days_to_close"]
    assert sheet["D2"].number_format == "0.0%"
    notes = {r[0]: r[1] for r in book["说明"].iter_rows(values_only=True) if r and r[0]}
    assert "2026-03-01 至 2026-04-30" in notes["期间（按议题提交日期）"] and "满意率" in notes


def test_exports_never_turn_a_name_into_a_formula(client, login, people, district, app):
    from openpyxl import load_workbook

    from yishitang.studios import service as studios

    with app.app_context():
        studios.update(district["xingfu"], name='=HYPERLINK("http://evil.example","点我")')
    query = {**PERIOD, "group_by": "studio"}
    table = list(csv.reader(io.StringIO(client.get(OVERVIEW + ".csv", query_string=query, headers=login(
        people["admin"])).get_data().decode("utf-8-sig"))))
    assert table[1][0] == '\'=HYPERLINK("http://evil.example","点我")'
    book = load_workbook(io.BytesIO(client.get(OVERVIEW + ".xlsx", query_string=query,
                                               headers=login(people["admin"])).get_data()))
    cell = book["统计"]["A2"]
    assert cell.data_type == "s" and cell.value.startswith("'=")


def test_command_line_prints_the_table(known, mongo_uri, db_name):
    env = {"MONGODB_URI": mongo_uri, "MONGODB_DB": db_name, "YISHITANG_TESTING": "1"}
    result = run_cli("stats", "--region", "211104", "--from", "2026-03-01", "--to", "2026-04-30", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("示范区（211104）  2026-03-01 至 2026-04-30  按镇街")
    assert lines[2].split() == ["镇街", "收到议题", "答复率", "见面率", "办结率", "满意率", "办结天数中位数", "超期未办结", "上报", "督办"]
    total = lines[-1]
    assert total.split()[:3] == ["合计", "11", "77.8%"] and "(7/9)" in total and "57.1% (4/7)" in total
    # the columns line up (CJK characters are two columns wide)
    import unicodedata

    def width(text):
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    assert len({width(line) for line in lines[2:] if not line.startswith("-")}) == 1

    bad_date = run_cli("stats", "--region", "211104", "--from", "2026-13-01", env=env)
    assert bad_date.returncode == 2 and "--from" in bad_date.stderr
    backwards = run_cli("stats", "--region", "211104", "--from", "2026-05-01", "--to", "2026-04-01", env=env)
    assert backwards.returncode == 2 and "开始日期不能晚于结束日期" in backwards.stderr
    unknown = run_cli("stats", "--region", "999999", env=env)
    assert unknown.returncode == 2 and "地区不存在" in unknown.stderr
    assert run_cli("stats", env=env).returncode == 2  # --region is required


# --- rollups: bounded and exact ------------------------------------------------------------------------

def reference(issues: list[dict], region: str, day_from: dt.date, day_to: dt.date, group_by: str,
              now: dt.datetime, deadline: dt.timedelta) -> dict:
    """The figures counted from scratch over every issue document, written apart from the service."""
    def utc(value):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    groups = defaultdict(list)
    for issue in issues:
        created = utc(issue["created_at"])
        if region not in issue["region_path"] or not day_from <= created.astimezone(SHANGHAI).date() <= day_to:
            continue
        key = {"township": issue["township_code"], "studio": str(issue["studio_id"]), "category": issue["category"],
               "month": created.astimezone(SHANGHAI).strftime("%Y-%m")}[group_by]
        groups[key].append(issue)
        groups["__total__"].append(issue)

    def figures(members):
        def is_dup(i):
            return i.get("duplicate_of") is not None

        unanswered = [i for i in members if i.get("first_response_at") is None]
        left_out = [i for i in unanswered if i.get("withdrawn_at") or is_dup(i)]
        pending = [i for i in unanswered if i not in left_out and now <= utc(i["created_at"]) + deadline]
        base = [i for i in members if i not in left_out and i not in pending]
        in_time = [i for i in base if i.get("first_response_at") is not None
                   and utc(i["first_response_at"]) - utc(i["created_at"]) <= deadline]
        accepted = [i for i in members if i.get("accepted_at") is not None and not is_dup(i)]
        met = [i for i in accepted if i.get("met_at") is not None]
        closed = [i for i in accepted if i["status"] == "closed"]
        ratings = []
        for i in members:
            given = [e for e in i.get("timeline", []) if e["action"] == "feedback"]
            if given:
                ratings.append(i["feedback"]["rating"] if given[-1]["to_status"] == "closed" else "unsatisfied")
        good = sum(1 for r in ratings if r in ("satisfied", "basically_satisfied"))
        # Durations in the documented steps: tenths of a day below 10 days, halves below 60, whole
        # days beyond, each counted as its step's start (in tenths of a day).
        tenths = [(utc(i["closed_at"]) - utc(i["created_at"])) * 10 // DAYS for i in closed]
        steps = [t if t < 100 else t - t % 5 if t < 600 else t - t % 10 for t in tenths]
        from decimal import ROUND_HALF_UP, Decimal

        median = (float((Decimal(str(statistics.median(steps))) / 10).quantize(Decimal("0.1"), ROUND_HALF_UP))
                  if steps else None)
        overdue = [i for i in members if i["status"] in ("submitted", "accepted", "scheduled", "consulted", "in_progress")
                   and i.get("due_at") is not None and utc(i["due_at"]) < now]

        def ratio(a, b):
            return None if b == 0 else round(a / b, 4)

        return {"received": len(members), "response_rate": ratio(len(in_time), len(base)),
                "meeting_rate": ratio(len(met), len(accepted)), "closure_rate": ratio(len(closed), len(accepted)),
                "satisfaction_rate": ratio(good, len(ratings)), "median_days_to_close": median,
                "overdue_open": len(overdue), "escalated": sum(1 for i in members if i.get("escalated_count", 0) > 0),
                "supervised": sum(1 for i in members if i.get("supervised")),
                "response_pending": len(pending), "rated": len(ratings)}

    return {key: figures(members) for key, members in groups.items()}


def served(body: dict) -> dict:
    """The service's answer in the reference's shape (groups with issues only)."""
    fields = ("received", "response_rate", "meeting_rate", "closure_rate", "satisfaction_rate", "median_days_to_close",
              "overdue_open", "escalated", "supervised", "response_pending", "rated")
    shaped = {row["group"]: {f: row[f] for f in fields} for row in body["rows"] if row["received"]}
    if body["totals"]["received"]:
        shaped["__total__"] = {f: body["totals"][f] for f in fields}
    return shaped


@pytest.fixture
def random_district(app, make_region, people):
    """Three townships, seven studios, 260 issues over the last 200 days in every state, 12 of them
    duplicates; all written more than an hour ago."""
    from yishitang.db import utcnow
    from yishitang.devtools import histories as demo
    from yishitang.studios import service as studios

    make_region("211199", "随机区", "district")
    for t in (1, 2, 3):
        make_region(f"211199{t:03d}", f"街道{t}", "street", "211199")
        for g in range(1, (4 if t == 1 else 3)):
            code = f"211199{t:03d}{g:03d}"
            make_region(code, f"社区{t}-{g}", "community", f"211199{t:03d}")
            with app.app_context():
                studios.create(f"社区{t}-{g}委员工作室", code)
    now = utcnow() - dt.timedelta(hours=1)
    with app.app_context():
        demo.seed_issues(248, region_code="211199", start=now - 200 * DAYS, end=now, now=now, seed=11, duplicates=12)
    return now


def test_rollups_equal_a_count_from_scratch_before_and_after_the_job_and_late_events(
        app, random_district, people, make_user):
    from yishitang.db import utcnow
    from yishitang.issues import service as issues
    from yishitang.issues import workflow
    from yishitang.issues.models import Issue
    from yishitang.stats import jobs, service
    from yishitang.users.models import User

    admin = make_user("admin")
    deadline = 3 * DAYS
    rng = random.Random(5)
    today = utcnow().astimezone(SHANGHAI).date()
    last_month_end = today.replace(day=1) - DAYS
    whole_months = ((last_month_end - 120 * DAYS).replace(day=1), last_month_end)
    cases = [("211199", today - 200 * DAYS, today, "township"), ("211199", today - 90 * DAYS, today - 10 * DAYS, "studio"),
             ("211199", *whole_months, "month"), ("211199001", whole_months[0], whole_months[0] + 27 * DAYS, "studio"),
             ("211199002", today - 120 * DAYS, today, "month"), ("211199001", today - 200 * DAYS, today, "category"),
             ("211199003001", today - 60 * DAYS, today - 30 * DAYS, "studio"), ("211199", today - 1 * DAYS, today, "category"),
             # whole years (read as year cells), alone and after months
             ("211199", dt.date(today.year, 1, 1), today, "township"), ("211199002", dt.date(today.year - 1, 1, 1), today, "category"),
             ("211199", dt.date(today.year - 1, 6, 1), today, "month")]

    def compare(expect_source):
        now = utcnow()
        docs = list(Issue._get_collection().find({}))
        for region, day_from, day_to, group_by in cases:
            with app.test_request_context():
                body = service.overview(admin, region=region, date_from=day_from, date_to=day_to, group_by=group_by, now=now)
            assert served(body) == reference(docs, region, day_from, day_to, group_by, now, deadline), (region, group_by)
            expect_source(body["rollup"])
        return body

    # no job has run yet: computed from the issues
    compare(lambda source: source["as_of"] is None)
    with app.app_context():
        first = jobs.refresh_rollups(utcnow())
    assert first["mode"] == "rebuild" and first["cells_written"] > 100
    # straight after the job: only stored cells, nothing recomputed
    compare(lambda source: source["as_of"] is not None and source["recomputed_cells"] == 0)

    # late events, now: reopen, resolve, close, escalate, supervise, withdraw, visits, new issues
    ids = [doc["_id"] for doc in Issue._get_collection().find({"status": {"$in": list(workflow.ACTIVE)}}, {"_id": 1})]
    applied = []
    with app.test_request_context():
        for _round in range(3):  # several events on the same issue too: resolve, then reopen, ...
            for issue_id in ids:
                issue = Issue.objects.get(id=issue_id)
                reporter = User.objects.get(id=issue.reporter_id)
                options = [a for a in ("accept", "resolve", "escalate", "supervise", "withdraw", "rate_unsatisfied",
                                       "rate_satisfied", "start", "comment") if workflow.rule(issue.status, a)]
                options = [a for a in options if not (a == "supervise" and issue.supervised)
                           and not (a == "escalate" and issue.level == "district")]
                if not options:
                    continue
                action = rng.choice(options)
                actor = reporter if action.startswith("rate_") or action == "withdraw" else admin
                params = {"visit": True} if action == "comment" else {}
                issues.transition(issue, action, actor, note="后续办理", **params)
                applied.append(action)
        for studio_code in ("211199001001", "211199003002"):
            from yishitang.studios.models import Studio

            studio = Studio.objects.get(region_code=studio_code)
            issues.create(people["resident"], title="新的议题", description="刚刚提交的新问题，还没有人答复。",
                          category="safety", studio_id=str(studio.id))
    assert len(applied) >= 40 and {"resolve", "rate_unsatisfied", "escalate"} <= set(applied), applied
    body = compare(lambda source: source["as_of"] is not None)
    assert body["rollup"]["recomputed_cells"] > 0

    # the job catches up; a second run changes nothing
    with app.app_context():
        second = jobs.refresh_rollups(utcnow())
        cells = snapshot()
        again = jobs.refresh_rollups(utcnow())
    assert second["mode"] == again["mode"] == "incremental"
    assert snapshot() == cells
    compare(lambda source: source["recomputed_cells"] <= again["cells_written"])


def snapshot() -> dict:
    from yishitang.stats.models import MonthCell, RegionCell, RegionTotal, RollupCell

    return {(cls.__name__, doc["_id"]): {k: v for k, v in doc.items() if k != "computed_at"}
            for cls in (RollupCell, MonthCell, RegionCell, RegionTotal) for doc in cls._get_collection().find({})}


@pytest.mark.parametrize("first, last, whole, edges", [
    ("2026-01-01", "2026-12-31", ("2026-01", "2026-12"), []),
    ("2026-01-15", "2026-03-31", ("2026-02", "2026-03"), [("2026-01-15", "2026-01-31")]),
    ("2026-01-01", "2026-03-10", ("2026-01", "2026-02"), [("2026-03-01", "2026-03-10")]),
    ("2026-01-15", "2026-03-10", ("2026-02", "2026-02"), [("2026-01-15", "2026-01-31"), ("2026-03-01", "2026-03-10")]),
    ("2026-02-03", "2026-02-20", None, [("2026-02-03", "2026-02-20")]),
    ("2026-01-20", "2026-02-10", None, [("2026-01-20", "2026-02-10")]),
    ("2024-02-01", "2024-02-29", ("2024-02", "2024-02"), []),
])
def test_a_period_is_read_as_whole_months_and_the_days_at_its_ends(first, last, whole, edges):
    from yishitang.stats.periods import split

    assert split(dt.date.fromisoformat(first), dt.date.fromisoformat(last)) == (whole, edges)


@pytest.mark.parametrize("first, last, years, ranges", [
    ("2026-01-01", "2026-11-27", True, [("year", "2026", "2026")]),  # to today: the whole year so far
    ("2026-01-01", "2026-11-27", False, [("month", "2026-01", "2026-11")]),
    ("2025-03-15", "2026-11-27", True, [("year", "2026", "2026"), ("month", "2025-04", "2025-12"),
                                        ("day", "2025-03-15", "2025-03-31")]),
    ("2024-01-01", "2025-12-31", True, [("year", "2024", "2025")]),
    ("2025-01-01", "2025-06-10", True, [("month", "2025-01", "2025-05"), ("day", "2025-06-01", "2025-06-10")]),
    ("2026-11-03", "2026-11-27", True, [("day", "2026-11-03", "2026-11-30")]),
])
def test_a_period_is_read_in_the_fewest_cells(first, last, years, ranges):
    from yishitang.stats.periods import covering, periods

    got = periods(dt.date.fromisoformat(first), dt.date.fromisoformat(last), dt.date(2026, 11, 27), years=years)
    assert got == ranges
    assert covering(got, first) is not None


def test_changed_definitions_go_live_until_the_job_rebuilds(app, client, login, people, known, monkeypatch):
    from yishitang.db import utcnow
    from yishitang.stats import jobs

    with app.app_context():
        jobs.refresh_rollups(utcnow())
    assert overview(client, login, people["admin"], **PERIOD)["rollup"]["as_of"] is not None
    # a one-day response deadline: B (4 days), D (2 days), H (2 days), K (3 days) are late now
    monkeypatch.setitem(app.config, "SETTINGS", app.config["SETTINGS"].replace(response_deadline_days=1))
    body = overview(client, login, people["admin"], **PERIOD)
    assert body["rollup"]["as_of"] is None and body["totals"]["responded_in_time"] == 4  # A E G I
    with app.app_context():
        assert jobs.refresh_rollups(utcnow())["mode"] == "rebuild"
    body = overview(client, login, people["admin"], **PERIOD)
    assert body["rollup"]["as_of"] is not None and body["totals"]["responded_in_time"] == 4


def test_queries_behind_the_figures_walk_an_index_range(app, known, db):
    """Each query names only fields of one index (equality, then a range): the planner scans that
    range of the index, not the collection."""
    from yishitang.db import utcnow

    day = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    plans = {
        "updated_at_1": db.issues.find({"updated_at": {"$gt": utcnow()}}),
        "studio_id_1_created_at_-1__id_-1": db.issues.find({"studio_id": known["A"].studio_id,
                                                           "created_at": {"$gte": day, "$lt": day + DAYS}}),
        "region_path_1_created_at_-1__id_-1": db.issues.find({"region_path": "211104",
                                                             "created_at": {"$gte": day, "$lt": day + DAYS}}),
        "region_path_1_day_1": db.stats_cells.find({"region_path": "211104", "day": {"$gte": "2026-03-01", "$lte": "2026-03-31"}}),
        "studio_id_1_day_1": db.stats_cells.find({"studio_id": known["A"].studio_id, "day": {"$gte": "2026-03-01", "$lte": "2026-03-31"}}),
        "region_path_1_month_1": db.stats_month_cells.find({"region_path": "211104", "month": {"$gte": "2026-01", "$lte": "2026-12"}}),
        "parent_code_1_grain_1_period_1": db.stats_region_cells.find(
            {"parent_code": "211104", "grain": "month", "period": {"$gte": "2026-01", "$lte": "2026-12"}}),
        "region_code_1_grain_1_period_1": db.stats_region_cells.find(
            {"region_code": "211104", "grain": "day", "period": {"$gte": "2026-03-01", "$lte": "2026-03-31"}}),
    }
    totals = {  # the same indexes on the region totals
        "parent_code_1_grain_1_period_1": db.stats_region_totals.find(
            {"parent_code": "211104", "grain": "year", "period": {"$gte": "2026", "$lte": "2026"}}),
        "region_code_1_grain_1_period_1": db.stats_region_totals.find(
            {"region_code": "211104", "grain": "month", "period": {"$gte": "2026-01", "$lte": "2026-12"}}),
    }
    for index, cursor in [*plans.items(), *totals.items()]:
        plan = cursor.explain()["queryPlanner"]["winningPlan"]
        assert plan["stage"] == "FETCH" and plan["inputStage"]["stage"] == "IXSCAN", (index, plan)
        assert plan["inputStage"]["indexName"] == index
