"""The WeChat client against the fake WeChat server over real HTTP, with the token cache in the real database."""

from __future__ import annotations

import datetime as dt
import logging
import threading

import pytest
import requests

from yishitang.db import as_utc, utcnow
from yishitang.devtools.embedded import free_port
from yishitang.errors import UpstreamUnavailable
from yishitang.devtools.fakewechat import FakeWeChat
from yishitang.wechat import WeChatClient, WeChatError, WeChatToken, WeChatUnavailable, fit_value

SEND = "/cgi-bin/message/subscribe/send"
TOKEN = "/cgi-bin/stable_token"
LOGIN = "/sns/jscode2session"
TEMPLATE = "tmpl-issue-status"


@pytest.fixture
def sleeps():
    """Backoff pauses the client asked for; nothing really sleeps."""
    return []


@pytest.fixture
def wechat(settings, db, sleeps):
    return WeChatClient(settings, sleep=sleeps.append)


def calls_to(fake, path) -> list[dict]:
    return [params for called, params in fake.calls if called == path]


def our_log(caplog) -> str:
    """Our own log lines (urllib3's DEBUG lines print whole URLs, secret included: keep it above DEBUG)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("yishitang"))


def send_status(wechat, openid="o-resident"):
    wechat.send_subscribe_message(
        openid, TEMPLATE, {"thing1": "路灯不亮", "phrase2": "已受理"}, page="pages/issue/detail?id=1"
    )


# -- login -------------------------------------------------------------------------------------


def test_login_code_works_once(wechat, fake_wechat):
    code = fake_wechat.issue_login_code("o-alice", unionid="u-alice")

    session = wechat.code2session(code)

    assert session["openid"] == "o-alice"
    assert session["unionid"] == "u-alice"
    assert session["session_key"]
    with pytest.raises(WeChatError) as refused:
        wechat.code2session(code)
    assert refused.value.errcode == 40029
    assert not isinstance(refused.value, WeChatUnavailable)
    assert len(calls_to(fake_wechat, LOGIN)) == 2  # a refused code is not retried


def test_login_without_unionid_has_no_unionid_key(wechat, fake_wechat):
    session = wechat.code2session(fake_wechat.issue_login_code("o-bob"))

    assert set(session) == {"openid", "session_key"}


def test_wrong_secret_is_refused_and_not_logged(settings, db, fake_wechat, caplog):
    wechat = WeChatClient(settings.replace(wechat_secret="not-the-secret"), sleep=lambda s: None)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(WeChatError) as refused:
        wechat.code2session(fake_wechat.issue_login_code("o-alice"))

    assert refused.value.errcode == 40125
    assert "not-the-secret" not in our_log(caplog)
    assert "40125" in our_log(caplog)


# -- the shared access token -----------------------------------------------------------------


def test_token_fetched_once_and_shared_by_two_clients(settings, db, fake_wechat):
    first, second = WeChatClient(settings), WeChatClient(settings)

    first.check_text("小区门口路灯坏了", "o-alice")
    second.check_text("楼道堆满杂物", "o-bob")
    first.check_text("垃圾没人清", "o-carol")

    fetches = calls_to(fake_wechat, TOKEN)
    assert len(fetches) == 1
    assert fetches[0]["force_refresh"] is False
    cached = list(db.wechat_tokens.find())
    assert len(cached) == 1
    assert cached[0]["appid"] == settings.wechat_appid
    used = {params["access_token"] for params in calls_to(fake_wechat, "/wxa/msg_sec_check")}
    assert used == {cached[0]["access_token"]}


def test_a_process_keeps_the_token_in_memory_until_near_expiry(settings, db, fake_wechat):
    client = WeChatClient(settings)
    client.check_text("小区门口路灯坏了", "o-alice")
    db.wechat_tokens.update_one({}, {"$set": {"access_token": "changed-elsewhere"}})
    client.check_text("楼道堆满杂物", "o-bob")  # no database read: the copy in memory is used
    used = [params["access_token"] for params in calls_to(fake_wechat, "/wxa/msg_sec_check")]
    assert used[0] == used[1] != "changed-elsewhere"

    client._memo = (used[0], utcnow() + dt.timedelta(minutes=4))  # near expiry: read the shared copy again
    assert client.access_token() == "changed-elsewhere"
    assert len(calls_to(fake_wechat, TOKEN)) == 1


def test_concurrent_first_fetches_leave_one_cache_document(settings, db, fake_wechat):
    tokens, errors = [], []
    start = threading.Barrier(6)

    def fetch():
        start.wait()
        try:
            tokens.append(WeChatClient(settings).access_token())
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(tokens)) == 1  # stable_token hands every process the same token
    assert db.wechat_tokens.count_documents({}) == 1


@pytest.mark.parametrize("minutes_left, refreshed", [(4, True), (6, False)])
def test_cached_token_refreshed_only_near_expiry(wechat, fake_wechat, settings, minutes_left, refreshed):
    WeChatToken(
        appid=settings.wechat_appid,
        access_token="cached-token",
        expires_at=utcnow() + dt.timedelta(minutes=minutes_left),
    ).save()

    token = wechat.access_token()

    assert (token != "cached-token") is refreshed
    assert len(calls_to(fake_wechat, TOKEN)) == (1 if refreshed else 0)
    cached = WeChatToken.objects.get(appid=settings.wechat_appid)
    assert cached.access_token == token
    if refreshed:
        left = as_utc(cached.expires_at) - utcnow()
        assert dt.timedelta(minutes=115) < left <= dt.timedelta(hours=2)


@pytest.mark.parametrize("spoil", ["invalidate_tokens", "expire_tokens"])
def test_refused_token_is_refreshed_once_and_the_send_succeeds(wechat, fake_wechat, spoil):
    fake_wechat.grant("o-resident", TEMPLATE)
    old = wechat.access_token()
    getattr(fake_wechat, spoil)()  # 40001 / 42001 on the next use

    send_status(wechat)

    assert len(fake_wechat.sent) == 1
    new = WeChatToken.objects.get().access_token
    assert new != old
    assert [params["access_token"] for params in calls_to(fake_wechat, SEND)] == [old, new]
    # WeChat handed out a new token without forcing: the daily forced-refresh quota is untouched.
    assert [params["force_refresh"] for params in calls_to(fake_wechat, TOKEN)] == [False, False]


def test_forced_refresh_only_when_wechat_returns_the_refused_token(wechat, fake_wechat):
    fake_wechat.grant("o-resident", TEMPLATE)
    old = wechat.access_token()
    fake_wechat.fail_next(SEND, 40001)  # WeChat itself still considers `old` current

    send_status(wechat)

    assert [params["force_refresh"] for params in calls_to(fake_wechat, TOKEN)] == [False, False, True]
    new = WeChatToken.objects.get().access_token
    assert new != old
    assert [params["access_token"] for params in calls_to(fake_wechat, SEND)] == [old, new]
    assert len(fake_wechat.sent) == 1


def test_past_the_daily_forced_refreshes_the_send_fails_once_and_spends_no_more(wechat, fake_wechat, settings):
    credentials = {"grant_type": "client_credential", "appid": settings.wechat_appid, "secret": settings.wechat_secret}
    for _ in range(20):  # other processes spent today's forced refreshes
        forced = requests.post(fake_wechat.url + TOKEN, json={**credentials, "force_refresh": True}, timeout=5).json()
        assert "access_token" in forced
    fake_wechat.grant("o-resident", TEMPLATE)
    wechat.access_token()
    fake_wechat.fail_next(SEND, 40001)  # WeChat still hands out the refused token: only a forced refresh helps

    with pytest.raises(WeChatError) as refused:
        send_status(wechat)

    assert refused.value.errcode == 45009
    assert [params["force_refresh"] for params in calls_to(fake_wechat, TOKEN)][20:] == [False, False, True]
    assert len(calls_to(fake_wechat, SEND)) == 1 and fake_wechat.sent == []


# -- the fake is as strict as WeChat (../shared/WECHAT_API.md) ---------------------------------------


def test_the_fake_reads_the_access_token_from_the_query_string_only(wechat, fake_wechat):
    token = wechat.access_token()
    check = {"content": "路灯不亮", "version": 2, "scene": 2, "openid": "o-resident"}
    in_body = requests.post(fake_wechat.url + "/wxa/msg_sec_check", json={**check, "access_token": token}, timeout=5)
    assert in_body.json()["errcode"] == 41001
    in_query = requests.post(fake_wechat.url + "/wxa/msg_sec_check", params={"access_token": token}, json=check, timeout=5)
    assert in_query.json()["errcode"] == 0


def test_the_fake_wants_each_call_s_grant_type_where_wechat_reads_it(fake_wechat, settings):
    code = fake_wechat.issue_login_code("o-strict")
    login = {"appid": settings.wechat_appid, "secret": settings.wechat_secret, "js_code": code}
    assert requests.get(fake_wechat.url + LOGIN, params=login, timeout=5).json()["errcode"] == 40002
    assert requests.post(fake_wechat.url + LOGIN, json={**login, "grant_type": "authorization_code"},
                         timeout=5).status_code == 405  # a GET call: a body is not where its input goes
    assert requests.get(fake_wechat.url + LOGIN, params={**login, "grant_type": "authorization_code"},
                        timeout=5).json()["openid"] == "o-strict"
    credentials = {"grant_type": "client_credential", "appid": settings.wechat_appid, "secret": settings.wechat_secret}
    assert requests.post(fake_wechat.url + TOKEN, params=credentials, json={}, timeout=5).json()["errcode"] == 40002
    assert "access_token" in requests.post(fake_wechat.url + TOKEN, json=credentials, timeout=5).json()


def test_token_refused_twice_is_an_error_after_one_retry(wechat, fake_wechat):
    fake_wechat.grant("o-resident", TEMPLATE)
    fake_wechat.fail_next(SEND, 40001, times=5)

    with pytest.raises(WeChatError) as refused:
        send_status(wechat)

    assert refused.value.errcode == 40001
    assert len(calls_to(fake_wechat, SEND)) == 2
    assert fake_wechat.sent == []


# -- busy answers, quotas, timeouts, unreachable ---------------------------------------------


def test_busy_twice_then_success_sends_once(wechat, fake_wechat, sleeps):
    fake_wechat.grant("o-resident", TEMPLATE, count=3)
    wechat.access_token()
    fake_wechat.fail_next(SEND, -1, times=2)

    send_status(wechat)

    assert len(calls_to(fake_wechat, SEND)) == 3
    assert len(fake_wechat.sent) == 1
    assert sleeps == [0.2, 0.4]  # exponential backoff


def test_minute_quota_forever_is_unavailable_after_three_attempts(wechat, fake_wechat, sleeps):
    fake_wechat.grant("o-resident", TEMPLATE)
    wechat.access_token()
    fake_wechat.fail_next(SEND, 45011, times=10)

    with pytest.raises(WeChatUnavailable) as unavailable:
        send_status(wechat)

    assert unavailable.value.errcode == 45011
    assert isinstance(unavailable.value, UpstreamUnavailable) and unavailable.value.status == 503
    assert len(calls_to(fake_wechat, SEND)) == 3
    assert fake_wechat.sent == []
    assert fake_wechat.grants_left("o-resident", TEMPLATE) == 1
    assert sleeps == [0.2, 0.4]


def test_timeout_is_retried(wechat, fake_wechat):
    code = fake_wechat.issue_login_code("o-alice")
    fake_wechat.fail_next(LOGIN, "timeout")

    session = wechat.code2session(code)

    assert session["openid"] == "o-alice"
    assert len(calls_to(fake_wechat, LOGIN)) == 2


def test_unreachable_wechat_is_unavailable_and_keeps_the_secret_out_of_logs(settings, db, caplog):
    sleeps = []
    wechat = WeChatClient(settings.replace(wechat_api_base=url_nobody_listens_on()), sleep=sleeps.append)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(WeChatUnavailable) as unavailable:
        wechat.code2session("any-code")

    assert unavailable.value.errcode == -1
    assert sleeps == [0.2, 0.4]  # three attempts
    assert "unavailable" in our_log(caplog)
    assert settings.wechat_secret not in our_log(caplog)


def url_nobody_listens_on() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- subscribe messages ----------------------------------------------------------------------


def test_send_without_grant_is_43101_and_not_retried(wechat, fake_wechat, sleeps):
    with pytest.raises(WeChatError) as refused:
        send_status(wechat)

    assert refused.value.errcode == 43101
    assert not isinstance(refused.value, WeChatUnavailable)
    assert len(calls_to(fake_wechat, SEND)) == 1
    assert sleeps == []


def test_each_grant_permits_one_send(wechat, fake_wechat):
    fake_wechat.grant("o-resident", TEMPLATE)

    send_status(wechat)
    with pytest.raises(WeChatError) as refused:
        send_status(wechat)

    assert refused.value.errcode == 43101
    assert fake_wechat.sent == [
        {
            "touser": "o-resident",
            "template_id": TEMPLATE,
            "data": {"thing1": "路灯不亮", "phrase2": "已受理"},
            "page": "pages/issue/detail?id=1",
            "miniprogram_state": "formal",
        }
    ]


def test_long_values_are_fitted_and_accepted(wechat, fake_wechat):
    fake_wechat.grant("o-resident", TEMPLATE)
    long_values = {
        "thing1": "三号楼二单元门口的路灯已经连续坏了两个星期，晚上回家很不安全",
        "phrase2": "正在协调处理中",
        "name3": "社区议事协商工作室第一小组",
        "character_string4": "DW-2024-" + "0" * 40,
        "number5": "9" * 40,
        "phone_number6": "+86 138 1234 5678 0000",
        "time7": "2024年10月1日 15:01",
    }

    wechat.send_subscribe_message("o-resident", TEMPLATE, long_values)

    data = fake_wechat.sent[0]["data"]
    assert data["thing1"] == "三号楼二单元门口的路灯已经连续坏了两个…"
    assert len(data["thing1"]) == 20
    assert data["phrase2"] == "正在协调处"
    assert len(data["name3"]) == 10
    assert len(data["character_string4"]) == 32 and len(data["number5"]) == 32
    assert len(data["phone_number6"]) == 17
    assert data["time7"] == "2024年10月1日 15:01"


def test_the_fake_refuses_values_past_the_limits(wechat, fake_wechat):
    """What the fitting avoids: the same long thing sent as is gets 47003 and consumes no grant."""
    fake_wechat.grant("o-resident", TEMPLATE)
    body = {"touser": "o-resident", "template_id": TEMPLATE, "data": {"thing1": {"value": "长" * 21}}}

    answer = requests.post(
        fake_wechat.url + SEND, params={"access_token": wechat.access_token()}, json=body, timeout=5
    )

    assert answer.status_code == 200
    assert answer.json()["errcode"] == 47003
    assert fake_wechat.sent == []
    assert fake_wechat.grants_left("o-resident", TEMPLATE) == 1


@pytest.mark.parametrize(
    "key, value, fitted",
    [
        ("thing1", "短标题", "短标题"),
        ("thing1", "  两行\n标题  ", "两行 标题"),
        ("thing2", "一" * 20, "一" * 20),
        ("thing2", "一" * 21, "一" * 19 + "…"),
        ("phrase3", "已办结啦啦啦", "已办结啦啦"),
        ("time4", "2024-10-01 15:01", "2024-10-01 15:01"),
        ("number5", 42, "42"),
    ],
)
def test_fit_value(key, value, fitted):
    assert fit_value(key, value) == fitted


# -- content checks and phone numbers --------------------------------------------------------


@pytest.mark.parametrize(
    "verdict, expected",
    [
        (None, {"suggest": "pass", "label": 100}),
        (("review", 10001), {"suggest": "review", "label": 10001}),
        (("risky", 20003), {"suggest": "risky", "label": 20003}),
    ],
)
def test_check_text(wechat, fake_wechat, verdict, expected):
    if verdict:
        fake_wechat.set_text_verdict("加微信", *verdict)

    result = wechat.check_text("物业不作为，加微信详聊", "o-alice", scene=3)

    assert result == expected
    sent = calls_to(fake_wechat, "/wxa/msg_sec_check")[0]
    assert (sent["version"], sent["scene"], sent["openid"]) == (2, 3, "o-alice")


@pytest.mark.parametrize("content, scene, errcode", [("", 2, 44002), ("正常内容", 9, 40129)])
def test_check_text_refusals_are_errors(wechat, content, scene, errcode):
    with pytest.raises(WeChatError) as refused:
        wechat.check_text(content, "o-alice", scene=scene)

    assert refused.value.errcode == errcode


def test_media_check_returns_a_trace_id(wechat, fake_wechat):
    trace_id = wechat.check_media_async("https://example.invalid/a.jpg", "o-alice")

    assert trace_id
    assert calls_to(fake_wechat, "/wxa/media_check_async")[0]["media_type"] == 2


def test_phone_code_works_once(wechat, fake_wechat):
    code = fake_wechat.issue_phone_code("13812345678")

    assert wechat.phone_number(code) == "13812345678"
    with pytest.raises(WeChatError) as refused:
        wechat.phone_number(code)
    assert refused.value.errcode == 40029


# -- the fake's control endpoints and demo mode ----------------------------------------------


def test_control_endpoints_over_http(wechat, fake_wechat):
    def control(name, **body):
        answer = requests.post(f"{fake_wechat.url}/__fake__/{name}", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        return answer.json()

    login_code = control("login-code", openid="o-remote", unionid="u-remote")["code"]
    assert wechat.code2session(login_code)["unionid"] == "u-remote"
    phone_code = control("phone-code", phone="13900000000")["code"]
    assert wechat.phone_number(phone_code) == "13900000000"

    control("grant", openid="o-remote", template_id=TEMPLATE, count=1)
    control("fail", path=SEND, errcode=-1, times=1)
    send_status(wechat, "o-remote")
    assert len(calls_to(fake_wechat, SEND)) == 2  # the injected -1, then the send
    sent = requests.get(f"{fake_wechat.url}/__fake__/sent", timeout=5).json()["sent"]
    assert [message["touser"] for message in sent] == ["o-remote"]

    control("invalidate-tokens")
    with pytest.raises(WeChatError) as refused:  # the grant was used: the refreshed call reaches 43101
        send_status(wechat, "o-remote")
    assert refused.value.errcode == 43101
    assert len(calls_to(fake_wechat, TOKEN)) == 2

    control("reset")
    assert requests.get(f"{fake_wechat.url}/__fake__/sent", timeout=5).json()["sent"] == []
    bad = requests.post(f"{fake_wechat.url}/__fake__/fail", json={"path": SEND}, timeout=5)
    assert bad.status_code == 400


@pytest.fixture
def demo(settings, db):
    fake = FakeWeChat(appid="wx-demo-appid", secret="wx-demo-secret", demo=True).start()
    demo_settings = settings.replace(
        wechat_api_base=fake.url, wechat_appid="wx-demo-appid", wechat_secret="wx-demo-secret"
    )
    yield fake, WeChatClient(demo_settings, sleep=lambda s: None)
    fake.stop()


def test_demo_codes_work_once_and_grants_are_unlimited(demo):
    fake, demo_wechat = demo
    assert demo_wechat.code2session("demo:o-visitor:1")["openid"] == "o-visitor"
    assert demo_wechat.code2session("demo:o-visitor:2")["openid"] == "o-visitor"
    with pytest.raises(WeChatError) as reused:
        demo_wechat.code2session("demo:o-visitor:1")
    assert reused.value.errcode == 40029

    assert demo_wechat.phone_number("demo-phone:13812345678:a") == "13812345678"
    with pytest.raises(WeChatError):
        demo_wechat.phone_number("demo-phone:13812345678:a")
    with pytest.raises(WeChatError):
        demo_wechat.phone_number("demo-phone:1381234:b")  # not 11 digits

    for _ in range(3):
        send_status(demo_wechat, "o-visitor")  # no grant needed in demo mode
    assert [message["touser"] for message in fake.sent] == ["o-visitor"] * 3


def test_demo_codes_are_refused_outside_demo_mode(wechat):
    with pytest.raises(WeChatError) as refused:
        wechat.code2session("demo:o-visitor:1")
    assert refused.value.errcode == 40029
    with pytest.raises(WeChatError):
        wechat.phone_number("demo-phone:13812345678:a")
