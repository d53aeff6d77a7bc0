"""Photos for the mini-program: thumbnails made at upload, signed links for `<image src>`, bombs
refused from the header, and WeChat's asynchronous media check pushed to /wechat/events."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from bson import ObjectId
from PIL import Image

from tests.test_app import assert_error
from tests.test_files import FILES, MP4, PNG, stored_counts, upload, uploaded

EVENTS = "/api/v1/wechat/events"
PUSH_TOKEN = "yishitang-demo-push-token"  # test mode's token, shared with the fake


def photo(width=1200, height=800, fmt="JPEG", colour=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, fmt)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, with almost no data behind it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def signed(query: str, **changes) -> str:
    path, _, qs = query.partition("?")
    values = {k: v[0] for k, v in parse_qs(qs).items()}
    values.update(changes)
    return path + "?" + "&".join(f"{k}={v}" for k, v in values.items())


# --- thumbnails and bombs ----------------------------------------------------------------------------

def test_a_photo_gets_a_jpeg_thumbnail_of_at_most_320_px_that_a_signed_link_serves(client, people, login):
    body = uploaded(client, login(people["resident"]), photo(1200, 800), filename="a.jpg")
    assert body["media_check"] == "pending" and body["url"].startswith("http://localhost/api/v1/files/")
    thumb = client.get(relative(body["thumb_url"]))  # no Authorization header, as <image src> sends none
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert thumb.headers["X-Content-Type-Options"] == "nosniff"
    image = Image.open(io.BytesIO(thumb.get_data()))
    assert image.format == "JPEG" and image.size == (320, 213)
    full = client.get(relative(body["url"]))
    assert full.status_code == 200 and hashlib.sha256(full.get_data()).hexdigest() == body["sha256"]


def test_a_transparent_png_thumbnail_is_flattened_on_white_and_a_tall_one_keeps_its_shape(client, people, login):
    out = io.BytesIO()
    Image.new("RGBA", (400, 1000), (0, 0, 0, 0)).save(out, "PNG")
    body = uploaded(client, login(people["resident"]), out.getvalue(), filename="a.png")
    image = Image.open(io.BytesIO(client.get(relative(body["thumb_url"])).get_data()))
    assert image.size == (128, 320) and image.getpixel((5, 5))[0] > 240  # white, not black


def test_videos_and_unreadable_images_are_stored_without_a_thumbnail(client, people, login):
    headers = login(people["resident"])
    video = uploaded(client, headers, MP4, filename="v.mp4")
    assert video["thumb_url"] is None and video["media_check"] == "unchecked"
    response = client.get(f"{FILES}/{video['id']}/thumb", headers=headers)
    assert_error(response, 404, "no_thumbnail")


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (10_000, 6_000)])
def test_a_decompression_bomb_is_refused_from_its_header_and_nothing_is_stored(client, people, login, db,
                                                                               width, height):
    """100k x 100k trips Pillow's own limit; 60 megapixels is below it and meets ours (50)."""
    response = upload(client, login(people["resident"]), png_claiming(width, height), filename="bomb.png")
    body = assert_error(response, 422, "image_too_large")
    assert "file" in body["errors"]
    assert stored_counts(db) == (0, 0, 0)


# --- signed links ------------------------------------------------------------------------------------

def test_a_tampered_or_borrowed_signature_is_403_and_no_signature_needs_a_token(client, people, login):
    body = uploaded(client, login(people["resident"]), photo(64, 64))
    url, thumb = relative(body["url"]), relative(body["thumb_url"])
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    assert_error(client.get(signed(url, sig="0" * 32)), 403, "bad_signature")
    assert_error(client.get(signed(url, exp=str(int(time.time()) + 99_999))), 403, "bad_signature")
    assert_error(client.get(signed(thumb, sig=sig)), 403, "bad_signature")  # the photo's signature, not the thumb's
    other = uploaded(client, login(people["neighbour"]), photo(64, 64, colour=(1, 2, 3)))
    assert_error(client.get(signed(url.replace(body["id"], other["id"]))), 403, "bad_signature")
    assert_error(client.get(signed(url, exp="soon")), 403, "bad_signature")
    assert_error(client.get(url.split("?")[0]), 401, "missing_token")


def test_an_expired_link_is_403_link_expired(app, client, people, login):
    from yishitang.files import links

    body = uploaded(client, login(people["resident"]), photo(64, 64))
    with app.test_request_context():
        stale = links.url(body["id"], expires=int(time.time()) - 1)
    assert_error(client.get(relative(stale)), 403, "link_expired")


def test_links_are_stable_within_a_step_so_phones_reuse_their_image_cache(app):
    from yishitang.files import links

    with app.app_context():
        assert links.expiry(now=1_000_000, ttl_s=1800) == links.expiry(now=1_000_100, ttl_s=1800)
        assert 1_000_000 + 1800 <= links.expiry(now=1_000_000, ttl_s=1800) <= 1_000_000 + 2700


# --- WeChat's media check and its push ----------------------------------------------------------------

def push_query(token=PUSH_TOKEN, timestamp="1700000000", nonce="n0nce"):
    from yishitang.wechatpush.service import signature

    return {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


def verdict_event(trace_id, suggest="pass", label=100, errcode=0):
    return {"ToUserName": "gh_x", "FromUserName": "o-user", "CreateTime": 1700000000, "MsgType": "event",
            "Event": "wxa_media_check", "appid": "wx-test-appid", "trace_id": trace_id, "version": 2,
            "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label, "prob": 90}],
            "errcode": errcode, "errmsg": "ok", "result": {"suggest": suggest, "label": label}}


def media_check_request(fake_wechat, file_id):
    calls = [params for path, params in fake_wechat.calls if path == "/wxa/media_check_async"]
    return next(params for params in calls if f"/files/{file_id}?" in params["media_url"])


def test_an_uploaded_photo_is_sent_to_wechats_media_check_with_a_link_wechat_can_fetch(client, people, login,
                                                                                      fake_wechat, db):
    body = uploaded(client, login(people["resident"]), photo(64, 64))
    sent = media_check_request(fake_wechat, body["id"])
    assert (sent["media_type"], sent["version"], sent["openid"]) == (2, 2, people["resident"].openid)
    assert client.get(relative(sent["media_url"])).status_code == 200  # no token: WeChat has none
    record = db.uploads.find_one({"_id": ObjectId(body["id"])})
    assert record["media_check"]["state"] == "pending" and record["media_check"]["trace_id"]


def test_wechat_down_at_upload_leaves_the_check_unsent_and_the_job_sends_it_later(app, client, people, login,
                                                                                 fake_wechat, db):
    import datetime as dt

    from yishitang.files import jobs

    fake_wechat.fail_next("/wxa/media_check_async", -1, times=3)  # the client retries -1 itself
    body = uploaded(client, login(people["resident"]), photo(64, 64))
    assert body["media_check"] == "unsent"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=2)
    with app.test_request_context():
        assert jobs.resend_media_checks(later) == 1
        assert jobs.resend_media_checks(later) == 0
    assert db.uploads.find_one({"_id": ObjectId(body["id"])})["media_check"]["state"] == "pending"


def test_the_push_url_answers_wechats_verification_only_with_the_right_signature(client):
    query = push_query()
    response = client.get(EVENTS, query_string={**query, "echostr": "abc123"})
    assert response.status_code == 200 and response.get_data(as_text=True) == "abc123"
    assert_error(client.get(EVENTS, query_string={**push_query(token="wrong"), "echostr": "abc123"}),
                 403, "bad_signature")
    assert_error(client.get(EVENTS, query_string={"echostr": "abc123"}), 422, "validation_failed")


@pytest.mark.parametrize("suggest", ["pass", "review", "risky"])
def test_a_pushed_verdict_is_recorded_once_however_often_wechat_retries(client, people, login, fake_wechat, db,
                                                                        suggest):
    body = uploaded(client, login(people["resident"]), photo(64, 64))
    trace_id = db.uploads.find_one({"_id": ObjectId(body["id"])})["media_check"]["trace_id"]
    for _attempt in range(3):
        response = client.post(EVENTS, query_string=push_query(), json=verdict_event(trace_id, suggest, 20002))
        assert response.status_code == 200 and response.get_data(as_text=True) == "success"
    check = db.uploads.find_one({"_id": ObjectId(body["id"])})["media_check"]
    assert (check["state"], check["label"]) == (suggest, 20002)


def test_a_push_with_a_bad_signature_is_refused_and_changes_nothing(client, people, login, db):
    body = uploaded(client, login(people["resident"]), photo(64, 64))
    before = db.uploads.find_one({"_id": ObjectId(body["id"])})
    trace_id = before["media_check"]["trace_id"]
    for query in (push_query(token="not-our-token"), {**push_query(), "nonce": "other"}, {}):
        response = client.post(EVENTS, query_string=query, json=verdict_event(trace_id))
        assert response.status_code in (403, 422)
    assert db.uploads.find_one({"_id": ObjectId(body["id"])}) == before


def test_a_failed_check_is_asked_again_and_other_events_are_acknowledged(client, people, login, db):
    body = uploaded(client, login(people["resident"]), photo(64, 64))
    trace_id = db.uploads.find_one({"_id": ObjectId(body["id"])})["media_check"]["trace_id"]
    assert client.post(EVENTS, query_string=push_query(), json=verdict_event(trace_id, errcode=-1008)).status_code == 200
    assert db.uploads.find_one({"_id": ObjectId(body["id"])})["media_check"]["state"] == "unsent"
    other = {"MsgType": "event", "Event": "user_authorization_revoke", "OpenID": "o-user"}
    assert client.post(EVENTS, query_string=push_query(), json=other).get_data(as_text=True) == "success"
    assert_error(client.post(EVENTS, query_string=push_query(), data="<xml/>", content_type="text/xml"),
                 422, "bad_push_body")


# --- the whole loop over real HTTP: WeChat fetches the photo by its link and pushes the verdict ------------

def test_the_fake_wechat_fetches_each_photo_and_pushes_signed_verdicts_risky_included(app, people, login, db,
                                                                                      fake_wechat):
    import requests

    from tests.test_dashboard import serving

    clean, risky = photo(64, 64, colour=(0, 128, 0)), photo(64, 64, colour=(255, 0, 255))
    fake_wechat.media.set_verdict(risky, "risky", 20002)
    headers = login(people["resident"])
    with serving(app) as base:
        fake_wechat.media.push_url = f"{base}{EVENTS}"
        ids = [requests.post(f"{base}{FILES}", headers=headers, files={"file": ("p.jpg", data)}, timeout=10).json()["id"]
               for data in (clean, risky)]
        events = fake_wechat.media.deliver()
        assert fake_wechat.media.deliver() == []  # each check is delivered once
    assert [e["result"]["suggest"] for e in events] == ["pass", "risky"]
    states = {str(d["_id"]): (d["media_check"]["state"], d["media_check"].get("label")) for d in db.uploads.find()}
    assert states == {ids[0]: ("pass", 100), ids[1]: ("risky", 20002)}
    assert {p["answer"] for p in fake_wechat.media.pushes} == {"success"}


def test_a_push_the_app_refuses_is_retried_and_a_forged_one_changes_nothing(app, people, login, db, fake_wechat):
    import requests

    from tests.test_dashboard import serving

    headers = login(people["resident"])
    with serving(app) as base:
        fake_wechat.media.push_url = f"{base}{EVENTS}"
        file_id = requests.post(f"{base}{FILES}", headers=headers, files={"file": ("p.jpg", photo(32, 32))},
                                timeout=10).json()["id"]
        trace_id = db.uploads.find_one({"_id": ObjectId(file_id)})["media_check"]["trace_id"]
        forged = fake_wechat.media.push(verdict_event(trace_id, "pass"), token="guessed-token")
        assert forged.status_code == 403 and forged.json()["error"] == "bad_signature"
        assert db.uploads.find_one({"_id": ObjectId(file_id)})["media_check"]["state"] == "pending"
        fake_wechat.media.push_url = f"{base}/api/v1/wechat/nowhere"  # the app answers 404: WeChat tries again
        fake_wechat.media.deliver()
    assert [p["status"] for p in fake_wechat.media.pushes] == [403, 404, 404, 404]
