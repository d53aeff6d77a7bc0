"""Photos and videos: typed by their bytes, at most 10 MB, private until attached, served inertly."""

import base64
import datetime as dt
import hashlib
import io
import struct
import zlib

import gridfs
import pymongo.errors
import pytest
from bson import ObjectId

from tests.test_app import assert_error

FILES = "/api/v1/files"
MB = 1024 * 1024
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
}


def png_1x1() -> bytes:
    """A real 1x1 red PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


JPEG = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xdb\x00\x43\x00" + bytes(range(64)) + b"\xff\xd9")
PNG = png_1x1()
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")  # 1x1 lossless


def mp4(brand=b"isom") -> bytes:
    ftyp = struct.pack(">I", 24) + b"ftyp" + brand + struct.pack(">I", 0x200) + b"isomiso2"
    mdat = struct.pack(">I", 8 + 32) + b"mdat" + bytes(32)
    return ftyp + struct.pack(">I", 8) + b"free" + mdat


MP4 = mp4()

DISGUISED = {
    "html": b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>",
    "script": b"<script>fetch('/api/v1/me')</script>",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "pdf": b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF",
    "exe": b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(64),
    "quicktime": mp4(b"qt  "),
    "heic": mp4(b"heic"),
    "gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    "jpeg-then-nothing": b"\xff\xd8",
}


def upload(client, headers, data, filename="photo.jpg", content_type="image/jpeg"):
    return client.post(FILES, headers=headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(data), filename, content_type)})


def stored_counts(db):
    return db.uploads.count_documents({}), db["uploads.files"].count_documents({}), db["uploads.chunks"].count_documents({})


def uploaded(client, headers, data=PNG, **kwargs):
    response = upload(client, headers, data, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("data, content_type, kind", [
    (JPEG, "image/jpeg", "image"),
    (PNG, "image/png", "image"),
    (WEBP, "image/webp", "image"),
    (MP4, "video/mp4", "video"),
])
def test_upload_is_stored_in_gridfs_with_its_record(client, people, login, db, data, content_type, kind):
    resident = people["resident"]
    body = uploaded(client, login(resident), data, filename="随手拍 照片.bin", content_type="application/octet-stream")
    assert set(body) == {"id", "content_type", "kind", "size", "sha256", "created_at", "url", "thumb_url", "media_check"}
    assert (body["content_type"], body["kind"], body["size"]) == (content_type, kind, len(data))
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert dt.datetime.fromisoformat(body["created_at"]).utcoffset() is not None

    record = db.uploads.find_one({"_id": ObjectId(body["id"])})
    assert record["owner_id"] == resident.id and record["issue_id"] is None
    assert (record["content_type"], record["kind"], record["size"]) == (content_type, kind, len(data))
    assert record["filename"] == "随手拍 照片.bin"
    assert gridfs.GridFSBucket(db, bucket_name="uploads").open_download_stream(record["gridfs_id"]).read() == data
    with_thumb = 1 if record.get("thumb_gridfs_id") else 0  # photos Pillow can read (the tiny test JPEG is not one)
    assert with_thumb == (data in (PNG, WEBP))
    assert stored_counts(db) == (1, 1 + with_thumb, 1 + with_thumb)


def test_type_comes_from_the_bytes_not_the_name_or_declared_type(client, people, login, db):
    body = uploaded(client, login(people["resident"]), PNG, filename="photo.jpg", content_type="image/jpeg")
    assert body["content_type"] == "image/png"
    assert db.uploads.find_one()["content_type"] == "image/png"


@pytest.mark.parametrize("name", sorted(DISGUISED))
def test_anything_but_jpeg_png_webp_mp4_is_415_and_nothing_is_stored(client, people, login, db, name):
    response = upload(client, login(people["resident"]), DISGUISED[name], filename="x.jpg", content_type="image/jpeg")
    body = assert_error(response, 415, "unsupported_file_type")
    assert body["message"] == "仅支持 JPEG、PNG、WebP 图片和 MP4 视频"
    assert stored_counts(db) == (0, 0, 0)


def test_empty_file_is_422(client, people, login, db):
    body = assert_error(upload(client, login(people["resident"]), b""), 422, "empty_file")
    assert "file" in body["errors"]
    assert stored_counts(db) == (0, 0, 0)


def test_ten_megabytes_is_the_limit(client, people, login, db):
    headers = login(people["resident"])
    exactly = JPEG[:-2] + bytes(10 * MB - len(JPEG)) + b"\xff\xd9"
    assert uploaded(client, headers, exactly)["size"] == 10 * MB
    assert stored_counts(db)[:2] == (1, 1)

    body = assert_error(upload(client, headers, exactly + b"\x00"), 413, "file_too_large")
    assert body["message"] == "文件不能超过 10 MB"
    assert stored_counts(db)[:2] == (1, 1)


def test_a_request_body_over_the_limit_is_413_in_the_error_shape(client, people, login, db):
    response = upload(client, login(people["resident"]), JPEG + bytes(11 * MB))
    assert_error(response, 413, "payload_too_large")
    assert stored_counts(db) == (0, 0, 0)


def test_missing_file_field_is_422(client, people, login, db):
    headers = login(people["resident"])
    body = assert_error(client.post(FILES, headers=headers, content_type="multipart/form-data", data={}), 422, "validation_failed")
    assert body["errors"] == {"file": ["必填"]}
    # A text field called `file` is not a file.
    body = assert_error(client.post(FILES, headers=headers, content_type="multipart/form-data", data={"file": "abc"}),
                        422, "validation_failed")
    assert "file" in body["errors"]
    other = client.post(FILES, headers=headers, content_type="multipart/form-data",
                        data={"photo": (io.BytesIO(PNG), "a.png", "image/png")})
    assert assert_error(other, 422, "validation_failed")["errors"] == {"file": ["必填"]}
    assert stored_counts(db) == (0, 0, 0)


def test_uploading_and_reading_need_a_token(client, people, login, db):
    assert_error(client.post(FILES, content_type="multipart/form-data", data={"file": (io.BytesIO(PNG), "a.png")}),
                 401, "missing_token")
    file_id = uploaded(client, login(people["resident"]))["id"]
    assert_error(client.get(f"{FILES}/{file_id}"), 401, "missing_token")
    assert stored_counts(db)[0] == 1


@pytest.mark.parametrize("role", ["resident", "member", "coordinator", "admin"])
def test_every_role_may_upload(client, people, login, role):
    assert uploaded(client, login(people[role]), JPEG)["kind"] == "image"


def test_owner_reads_the_same_bytes_with_inert_headers(client, people, login):
    headers = login(people["resident"])
    file_id = uploaded(client, headers, WEBP, filename="a.png", content_type="image/png")["id"]
    response = client.get(f"{FILES}/{file_id}", headers=headers)
    assert response.status_code == 200
    assert response.get_data() == WEBP
    assert response.mimetype == "image/webp"
    assert response.headers["Content-Length"] == str(len(WEBP))
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name


def test_videos_are_served_in_byte_ranges_and_revalidated_by_etag(client, people, login):
    headers = login(people["resident"])
    body = uploaded(client, headers, MP4)
    url = f"{FILES}/{body['id']}"

    part = client.get(url, headers={**headers, "Range": "bytes=4-11"})
    assert part.status_code == 206
    assert part.get_data() == MP4[4:12] == b"ftypisom"
    assert part.headers["Content-Range"] == f"bytes 4-11/{len(MP4)}"
    assert part.headers["X-Content-Type-Options"] == "nosniff"

    full = client.get(url, headers=headers)
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["ETag"] == f'"{body["sha256"]}"'
    assert client.get(url, headers={**headers, "If-None-Match": full.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("reader", ["neighbour", "member", "coordinator", "admin"])
def test_an_unattached_file_is_for_its_owner_only(client, people, login, reader):
    file_id = uploaded(client, login(people["resident"]))["id"]
    unknown = assert_error(client.get(f"{FILES}/{ObjectId()}", headers=login(people[reader])), 404, "not_found")
    refused = assert_error(client.get(f"{FILES}/{file_id}", headers=login(people[reader])), 404, "not_found")
    assert refused == unknown  # no hint that the file exists


@pytest.mark.parametrize("file_id", ["65f000000000000000000001", "not-an-id", "0" * 25])  # fixed: xdist workers must collect the same ids
def test_unknown_or_malformed_id_is_404(client, people, login, file_id):
    assert_error(client.get(f"{FILES}/{file_id}", headers=login(people["resident"])), 404, "not_found")


def test_an_attached_file_is_for_whoever_may_see_its_issue(client, people, login, district):
    resident, member = people["resident"], people["member"]
    body = uploaded(client, login(resident), PNG)
    raised = client.post("/api/v1/issues", headers=login(resident), json={
        "title": "路灯不亮", "description": "幸福小区 3 号楼前的路灯坏了一个月，晚上出行不便。", "category": "safety",
        "studio_id": str(district["xingfu"].id), "attachments": [body["id"]]})
    assert raised.status_code == 201, raised.get_json()

    allowed = client.get(f"{FILES}/{body['id']}", headers=login(member))  # staff of the issue's studio
    assert allowed.status_code == 200 and allowed.get_data() == PNG
    assert allowed.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    # A neighbour sees the issue on the public board, but not its photos; another studio's member
    # cannot see the issue at all: both get the 404 of an unknown file.
    for outsider in (people["neighbour"], people["other_member"]):
        assert_error(client.get(f"{FILES}/{body['id']}", headers=login(outsider)), 404, "not_found")
    assert client.get(f"{FILES}/{body['id']}", headers=login(resident)).get_data() == PNG


# --- attach: called by the issues feature when an issue (or its resolution) lists `attachments` ---

@pytest.fixture
def three_uploads(client, people, login):
    headers = login(people["resident"])
    return [uploaded(client, headers, data)["id"] for data in (JPEG, PNG, MP4)]


def uploads_snapshot(db):
    return sorted((d["_id"], d.get("issue_id"), d["updated_at"]) for d in db.uploads.find())


def test_attach_sets_the_issue_on_every_file(people, db, three_uploads):
    from yishitang.files import service

    issue_id = ObjectId()
    ids = service.attach(three_uploads, people["resident"].id, issue_id)
    assert ids == [ObjectId(i) for i in three_uploads]
    assert {d["issue_id"] for d in db.uploads.find()} == {issue_id}
    assert service.attach([], people["resident"].id, ObjectId()) == []


REFUSED = "附件不存在、已被使用或不属于您"


@pytest.mark.parametrize("case, message", [
    ("wrong_owner", REFUSED), ("already_attached", REFUSED), ("unknown", REFUSED), ("malformed", REFUSED),
    ("too_many", "最多 9 个附件"), ("duplicate", "附件不能重复"),
])
def test_attach_refuses_and_changes_nothing(client, people, login, db, three_uploads, case, message):
    from yishitang.errors import InvalidInput
    from yishitang.files import service

    resident = people["resident"]
    ids, owner = list(three_uploads), resident.id
    if case == "wrong_owner":
        owner = people["neighbour"].id
    elif case == "already_attached":
        service.attach(ids[:1], resident.id, ObjectId())
    elif case == "unknown":
        ids.append(str(ObjectId()))
    elif case == "malformed":
        ids.append("not-an-id")
    elif case == "too_many":
        headers = login(resident)
        ids += [uploaded(client, headers, JPEG)["id"] for _ in range(7)]
    elif case == "duplicate":
        ids.append(ids[0])
    if case == "too_many":
        assert len(ids) == 10
    before = uploads_snapshot(db)

    with pytest.raises(InvalidInput) as refused:
        service.attach(ids, owner, ObjectId())
    assert refused.value.errors == {"attachments": [message]}
    assert uploads_snapshot(db) == before


def test_nine_attachments_are_allowed(client, people, login, db):
    from yishitang.files import service

    headers = login(people["resident"])
    ids = [uploaded(client, headers, JPEG)["id"] for _ in range(9)]
    issue_id = ObjectId()
    assert len(service.attach(ids, people["resident"].id, issue_id)) == 9
    assert db.uploads.count_documents({"issue_id": issue_id}) == 9


def test_attach_that_loses_a_race_gives_back_what_it_took(people, db, three_uploads, monkeypatch):
    """Another request attaches one file between the check and the update: all or none still holds."""
    from yishitang.errors import InvalidInput
    from yishitang.files import service
    from yishitang.files.models import UploadedFile

    real = UploadedFile._get_collection()
    rival = ObjectId()

    class RacingCollection:
        def __getattr__(self, name):
            return getattr(real, name)

        def count_documents(self, *args, **kwargs):
            count = real.count_documents(*args, **kwargs)
            real.update_one({"_id": ObjectId(three_uploads[1])}, {"$set": {"issue_id": rival}})
            return count

    monkeypatch.setattr(UploadedFile, "_get_collection", classmethod(lambda cls: RacingCollection()))
    with pytest.raises(InvalidInput):
        service.attach(three_uploads, people["resident"].id, ObjectId())
    by_id = {str(d["_id"]): d["issue_id"] for d in db.uploads.find()}
    assert by_id == {three_uploads[0]: None, three_uploads[1]: rival, three_uploads[2]: None}


def test_attach_takes_part_in_a_transaction(people, db, three_uploads):
    from yishitang.files import service

    issue_id = ObjectId()
    with db.client.start_session() as session, session.start_transaction():
        service.attach(three_uploads, people["resident"].id, issue_id, session=session)
        assert db.uploads.count_documents({"issue_id": issue_id}, session=session) == 3
        session.abort_transaction()
    assert db.uploads.count_documents({"issue_id": None}) == 3


# --- storage failures, names, sniffing, purge ---

def test_bytes_are_removed_when_the_record_cannot_be_written(client, people, login, db, monkeypatch):
    from yishitang.files.models import UploadedFile

    def failing_save(self, *args, **kwargs):
        raise pymongo.errors.AutoReconnect("connection lost")

    monkeypatch.setattr(UploadedFile, "save", failing_save)
    response = upload(client, login(people["resident"]), PNG)
    assert_error(response, 503, "database_unavailable")
    assert stored_counts(db) == (0, 0, 0)


@pytest.mark.parametrize("given, kept", [
    ("photo.jpg", "photo.jpg"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\Desktop\\小区路灯.jpg", "小区路灯.jpg"),
    ("a\x00b\r\nc\u202e.jpg", "abc.jpg"),
    ("  spaced   out  .png ", "spaced out .png"),
    ("", None),
    (None, None),
    ("..", None),
    ("长" * 120 + ".jpeg", "长" * 95 + ".jpeg"),
    ("x" * 150, "x" * 100),
])
def test_filenames_are_sanitised(given, kept):
    from yishitang.files.service import sanitise_filename

    assert sanitise_filename(given) == kept
    assert kept is None or len(kept) <= 100


def test_stored_filename_is_sanitised(client, people, login, db):
    uploaded(client, login(people["resident"]), PNG, filename="../" + "名" * 200 + ".png")
    assert db.uploads.find_one()["filename"] == "名" * 96 + ".png"


@pytest.mark.parametrize("head, expected", [
    (JPEG[:16], ("image/jpeg", "image")),
    (PNG[:16], ("image/png", "image")),
    (WEBP[:16], ("image/webp", "image")),
    (mp4(b"mp42")[:16], ("video/mp4", "video")),
    (mp4(b"M4V ")[:16], ("video/mp4", "video")),
    (mp4(b"dash")[:16], ("video/mp4", "video")),
    (PNG[:7], None),  # truncated signature
    (b"RIFF\x1a\x00\x00\x00WAVEfmt ", None),  # RIFF, but audio
    (b"RIFF\x1a\x00\x00\x00WEBPJUNK", None),
    (mp4(b"qt  ")[:16], None),
    (mp4(b"M4A ")[:16], None),
    (b"\x00\x00\x00\x08ftypisom\x00\x00\x02\x00", None),  # box too short to be an ftyp
    (mp4()[:12], None),  # cut before the minor version
    (b"", None),
])
def test_sniff(head, expected):
    from yishitang.files.service import sniff

    assert sniff(head) == expected


def test_purge_removes_old_unattached_uploads_only(client, people, login, db):
    from yishitang.files import jobs, service

    headers = login(people["resident"])
    old_loose, old_attached, fresh = (uploaded(client, headers, data)["id"] for data in (JPEG, PNG, WEBP))
    service.attach([old_attached], people["resident"].id, ObjectId())
    now = dt.datetime.now(dt.timezone.utc)
    db.uploads.update_many({"_id": {"$in": [ObjectId(old_loose), ObjectId(old_attached)]}},
                           {"$set": {"created_at": now - dt.timedelta(days=2)}})

    assert jobs.purge_unattached(now) == 1
    assert sorted(str(d["_id"]) for d in db.uploads.find()) == sorted([old_attached, fresh])
    assert stored_counts(db)[:2] == (2, 4)  # the PNG and the WebP, each with its thumbnail
    assert client.get(f"{FILES}/{old_loose}", headers=headers).status_code == 404
    assert jobs.purge_unattached(now) == 0


def test_purge_spares_a_file_attached_while_it_runs(client, people, login, db, monkeypatch):
    from yishitang.files import jobs
    from yishitang.files.models import UploadedFile

    file_id = ObjectId(uploaded(client, login(people["resident"]))["id"])
    real, issue_id = UploadedFile._get_collection(), ObjectId()

    class RacingCollection:
        def __getattr__(self, name):
            return getattr(real, name)

        def find(self, *args, **kwargs):
            found = list(real.find(*args, **kwargs))
            real.update_one({"_id": file_id}, {"$set": {"issue_id": issue_id}})  # the issue is submitted now
            return found

    monkeypatch.setattr(UploadedFile, "_get_collection", classmethod(lambda cls: RacingCollection()))
    assert jobs.purge_unattached(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)) == 0
    assert db.uploads.find_one({"_id": file_id})["issue_id"] == issue_id
    assert stored_counts(db)[:2] == (1, 2)  # the photo and its thumbnail


def test_openapi_documents_multipart_upload_and_binary_download(client):
    spec = client.get("/openapi.json").get_json()
    post = spec["paths"][FILES]["post"]
    form = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    schema = spec["components"]["schemas"][form["$ref"].rsplit("/", 1)[-1]]
    assert schema["properties"]["file"]["format"] == "binary" and schema["required"] == ["file"]
    assert {"201", "401", "413", "415", "422"} <= set(post["responses"])
    get = spec["paths"][FILES + "/{file_id}"]["get"]
    assert set(get["responses"]["200"]["content"]) == {"image/jpeg", "image/png", "image/webp", "video/mp4"}
    assert {"files"} == set(get["tags"]) and any(t["name"] == "files" and t["description"] == "照片与视频" for t in spec["tags"])
