"""Uploads: sniff the type from the bytes, store them in GridFS, attach them to an issue, read them back.

Only the bytes decide the type. MP4 is accepted for the ISO base media brands that phones and
WeChat produce (isom, iso2-6, mp41, mp42, avc1, `M4V `, dash, mmp4, MSNV); QuickTime (`qt  `),
HEIC/AVIF images, 3GP and audio-only (`M4A `) share the container but are not MP4 video, so they
are refused rather than served under a type they are not.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import unicodedata

import gridfs
from bson import ObjectId
from bson.errors import InvalidId

from .. import db
from ..db import database, get_or_404, utcnow
from ..errors import DomainError, InvalidInput, NotFound, PayloadTooLarge
from . import images, links, moderation
from .images import MAX_PIXELS, THUMBNAIL_PX  # noqa: F401  (limits served by GET /meta)
from .models import CONTENT_TYPES, UploadedFile  # noqa: F401

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 9  # WeChat's image picker allows 9 at a time
BUCKET = "uploads"
FILENAME_MAX = 100

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MP4_BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
    b"avc1", b"M4V ", b"dash", b"mmp4", b"MSNV",
})
SNIFF_BYTES = 16  # the longest signature checked below


class UnsupportedFileType(DomainError):
    status, error, message = 415, "unsupported_file_type", "仅支持 JPEG、PNG、WebP 图片和 MP4 视频"


def sniff(head: bytes) -> tuple[str, str] | None:
    """(content_type, kind) from the first bytes of a file, or None when it is none of ours."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "image"
    if head.startswith(PNG_SIGNATURE):
        return "image/png", "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:15] == b"VP8":  # VP8, VP8L or VP8X
        return "image/webp", "image"
    if len(head) >= 16 and head[4:8] == b"ftyp" and head[8:12] in MP4_BRANDS:
        (box_size,) = struct.unpack(">I", head[:4])
        if box_size >= 16:  # size, type, major brand, minor version
            return "video/mp4", "video"
    return None


def sanitise_filename(name: str | None) -> str | None:
    """The last path segment, without control characters, at most 100 characters (extension kept)."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: FILENAME_MAX - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:FILENAME_MAX]
    return name or None


def _bucket() -> gridfs.GridFSBucket:
    return gridfs.GridFSBucket(database(), bucket_name=BUCKET)


def _read_at_most(stream, limit: int) -> bytes:
    """Up to `limit` bytes; loops because a raw stream may return fewer than asked."""
    parts, remaining = [], limit
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def store(owner, stream, filename: str | None) -> UploadedFile:
    """Check and store one upload of `owner`; nothing is kept when any step fails."""
    data = _read_at_most(stream, MAX_BYTES + 1)
    if not data:
        raise InvalidInput("文件为空", error="empty_file", errors={"file": ["文件为空"]})
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge("文件不能超过 10 MB", error="file_too_large", errors={"file": ["文件不能超过 10 MB"]})
    sniffed = sniff(data[:SNIFF_BYTES])
    if sniffed is None:
        raise UnsupportedFileType(errors={"file": ["仅支持 JPEG、PNG、WebP 图片和 MP4 视频"]})
    content_type, kind = sniffed
    small = images.thumbnail(data) if kind == "image" else None  # refuses a decompression bomb first
    name = sanitise_filename(filename)
    bucket, gridfs_id = _bucket(), ObjectId()
    # GridIn aborts (deletes its chunks) itself when the upload fails half-way.
    bucket.upload_from_stream_with_id(gridfs_id, name or "upload", data,
                                      metadata={"owner_id": owner.id, "content_type": content_type})
    upload = UploadedFile(
        owner_id=owner.id, content_type=content_type, kind=kind, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), gridfs_id=gridfs_id, filename=name,
        media_check={"state": "unsent" if kind == "image" else "unchecked"},
    )
    try:
        if small is not None:
            thumb, upload.width, upload.height = small
            upload.thumb_gridfs_id, upload.thumb_size = ObjectId(), len(thumb)
            bucket.upload_from_stream_with_id(upload.thumb_gridfs_id, "thumb.jpg", thumb,
                                              metadata={"owner_id": owner.id, "content_type": "image/jpeg"})
        upload.save(force_insert=True)
    except Exception:
        delete_bytes(gridfs_id, upload.thumb_gridfs_id)  # no bytes without their owner record
        raise
    if kind == "image" and moderation.request_check(upload, owner):
        upload.media_check.state = "pending"
    return upload


def delete_bytes(*gridfs_ids) -> None:
    for gridfs_id in filter(None, gridfs_ids):
        try:
            _bucket().delete(gridfs_id)
        except gridfs.NoFile:
            pass
        except Exception:  # keep the original failure; log the stray bytes for a person to remove
            log.exception("could not delete GridFS file %s", gridfs_id)


ATTACH_ERROR = "附件不存在、已被使用或不属于您"


def attach(file_ids: list[str], owner_id, issue_id, session=None) -> list[ObjectId]:
    """Attach the caller's unattached uploads to an issue, all or none; `session` joins a transaction."""
    if len(file_ids) > MAX_ATTACHMENTS:
        raise InvalidInput(errors={"attachments": [f"最多 {MAX_ATTACHMENTS} 个附件"]})
    try:
        ids = [ObjectId(str(value)) for value in file_ids]
    except (InvalidId, TypeError):
        raise InvalidInput(errors={"attachments": [ATTACH_ERROR]}) from None
    if len(set(ids)) != len(ids):
        raise InvalidInput(errors={"attachments": ["附件不能重复"]})
    if not ids:
        return []
    collection = UploadedFile._get_collection()
    free = {"_id": {"$in": ids}, "owner_id": owner_id, "issue_id": None}
    # Checked first so that the usual refusals write nothing at all.
    if collection.count_documents(free, session=session) != len(ids):
        raise InvalidInput(errors={"attachments": [ATTACH_ERROR]})
    result = collection.update_many(free, {"$set": {"issue_id": issue_id, "updated_at": utcnow()}}, session=session)
    if result.modified_count != len(ids):
        # Another request took one of them in between: give back the ones this call took.
        collection.update_many({"_id": {"$in": ids}, "issue_id": issue_id},
                               {"$set": {"issue_id": None}}, session=session)
        raise InvalidInput(errors={"attachments": [ATTACH_ERROR]})
    return ids


def get(file_id) -> UploadedFile:
    return get_or_404(UploadedFile, file_id)


_may_see_issue = None  # (user, issue_id) -> bool: registered by the issues feature


def set_issue_visibility(rule) -> None:
    """Issues build on files, not the other way: the issues feature tells files, at app creation,
    who may see an issue (`rule(user, issue_id) -> bool`), as `auth.set_user_loader` does for users."""
    global _may_see_issue
    _may_see_issue = rule


def can_read(user, upload: UploadedFile) -> bool:
    """The owner; otherwise whoever may see the issue the file is attached to."""
    if user is None:
        return False
    if upload.owner_id == user.id:
        return True
    return upload.issue_id is not None and bool(_may_see_issue(user, upload.issue_id))


def get_readable(user, file_id) -> UploadedFile:
    """The file if `user` may read it; unknown and not allowed are the same 404."""
    upload = get(file_id)
    if not can_read(user, upload):
        raise NotFound()
    return upload


def open_stream(upload: UploadedFile) -> gridfs.GridOut:
    """A seekable file object over the bytes (for streaming and byte ranges)."""
    try:
        return _bucket().open_download_stream(upload.gridfs_id)
    except gridfs.NoFile:
        log.error("upload %s has no bytes (GridFS file %s)", upload.id, upload.gridfs_id)
        raise NotFound() from None


def open_thumbnail(upload: UploadedFile) -> gridfs.GridOut:
    if not upload.thumb_gridfs_id:
        raise NotFound("该文件没有缩略图", error="no_thumbnail")
    try:
        return _bucket().open_download_stream(upload.thumb_gridfs_id)
    except gridfs.NoFile:
        raise NotFound("该文件没有缩略图", error="no_thumbnail") from None


def present(upload) -> dict:
    """An upload as its uploader sees it: with signed links and the media check's state."""
    check = upload.media_check
    return {"id": str(upload.id), "content_type": upload.content_type, "kind": upload.kind, "size": upload.size,
            "sha256": upload.sha256, "created_at": upload.created_at, **_links(upload),
            "media_check": check.state if check else "unchecked"}


def _links(upload) -> dict:
    expires = links.expiry()
    return {"url": links.url(upload.id, expires=expires),
            "thumb_url": links.url(upload.id, "thumb", expires=expires) if upload.thumb_gridfs_id else None}


def describe(file_ids, *, public: bool) -> list[dict]:
    """Attachments as views list them, `{id, kind, content_type, url, thumb_url, media_check}`, in
    the given order; the public board gets only photos WeChat passed, without the check's state."""
    return describe_many([(file_ids, public)])[0]


def describe_many(groups) -> list[list[dict]]:
    """`describe` for each `(file_ids, public)` of a page, with one query."""
    wanted = {ObjectId(str(i)) for ids, _public in groups for i in ids or ()}
    fields = {"content_type": 1, "kind": 1, "thumb_gridfs_id": 1, "media_check": 1}
    found = {doc["_id"]: doc for doc in UploadedFile._get_collection().find({"_id": {"$in": list(wanted)}}, fields)} \
        if wanted else {}
    expires = links.expiry()
    return [[_attachment(found[oid], public, expires) for oid in map(lambda i: ObjectId(str(i)), ids or ())
             if oid in found and (not public or _check_state(found[oid]) == "pass")]
            for ids, public in groups]


def _check_state(doc) -> str:
    return (doc.get("media_check") or {}).get("state", "unchecked")


def _attachment(doc, public: bool, expires: int) -> dict:
    return {"id": str(doc["_id"]), "kind": doc["kind"], "content_type": doc["content_type"],
            "url": links.url(doc["_id"], expires=expires),
            "thumb_url": links.url(doc["_id"], "thumb", expires=expires) if doc.get("thumb_gridfs_id") else None,
            "media_check": None if public else _check_state(doc)}


def read(upload: UploadedFile) -> bytes:
    with open_stream(upload) as grid_out:
        return grid_out.read()



def personal_data(user) -> dict:
    return {"uploads": [{"id": str(u.id), "content_type": u.content_type, "size": u.size, "filename": u.filename,
                         "issue_id": str(u.issue_id) if u.issue_id else None, "created_at": u.created_at}
                        for u in UploadedFile.objects(owner_id=user.id)]}


def forget(user, session=None) -> None:
    """Uploads never attached to an issue go, once the rest of the erasure has committed (GridFS
    bytes are not written in a transaction); photos of issues stay with the public record."""
    db.after_commit(session, lambda: _remove_unattached(user))


def _remove_unattached(user) -> int:
    removed = 0
    for upload in UploadedFile.objects(owner_id=user.id, issue_id=None):
        if UploadedFile._get_collection().delete_one({"_id": upload.id, "issue_id": None}).deleted_count:
            delete_bytes(upload.gridfs_id, upload.thumb_gridfs_id)
            removed += 1
    return removed
