import marshmallow as ma
from flask_smorest.fields import Upload


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
    created_at = ma.fields.DateTime(dump_only=True)
