import marshmallow as ma
from flask_smorest.fields import Upload

from ..fields import LocalDateTime


class UploadSchema(ma.Schema):
    file = Upload(required=True, metadata={
        "description": (
            "JPEG, PNG, WebP or MP4, at most 10 MB. The type is sniffed from the bytes, never taken "
            "from the name or the declared type; MP4 means the ISO brands isom, iso2-6, mp41, mp42, "
            "avc1, M4V, dash, mmp4 and MSNV (QuickTime, HEIC and 3GP are refused). The file is private "
            "to its uploader until an issue lists it in `attachments` (at most 9 per issue); uploads "
            "never attached may be removed after a day."
        ),
    })


class UploadedFileSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    content_type = ma.fields.String(dump_only=True, metadata={"description": "sniffed from the bytes"})
    kind = ma.fields.String(dump_only=True, metadata={"description": "image | video"})
    size = ma.fields.Integer(dump_only=True, metadata={"description": "bytes"})
    sha256 = ma.fields.String(dump_only=True, metadata={"description": "hex digest of the bytes"})
    created_at = LocalDateTime(dump_only=True)
    url = ma.fields.String(dump_only=True, metadata={"description": "signed link, works without a token for a while"})
    thumb_url = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "signed link to the thumbnail; null for videos"})
    media_check = ma.fields.String(dump_only=True, metadata={"description": "WeChat's media check: unsent | pending | pass | review | risky | unchecked"})


class LinkQuerySchema(ma.Schema):
    exp = ma.fields.String(metadata={"description": "signed link: expiry (unix seconds)"})
    sig = ma.fields.String(metadata={"description": "signed link: signature"})


class AttachmentSchema(ma.Schema):
    id = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "image | video"})
    content_type = ma.fields.String()
    url = ma.fields.String(metadata={"description": "signed link to the file, works without a token for `FILE_URL_TTL` s"})
    thumb_url = ma.fields.String(allow_none=True, metadata={"description": "signed link to a JPEG of at most 320 px; null for videos"})
    media_check = ma.fields.String(allow_none=True, metadata={
        "description": "WeChat's verdict: unsent | pending | pass | review | risky | unchecked (videos); "
                       "shown to the uploader and staff, null on the public board (which shows `pass` only)"})
