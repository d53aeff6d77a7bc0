from flask import current_app, request
from flask.views import MethodView
from werkzeug.wsgi import wrap_file

from ..api import DEFAULT_ERROR, Blueprint
from ..auth import ROLES, current_user
from . import service
from .models import CONTENT_TYPES
from .schemas import UploadedFileSchema, UploadSchema

blp = Blueprint("files", __name__, url_prefix="/api/v1/files", description="照片与视频")

BINARY = {"schema": {"type": "string", "format": "binary"}}
# Served files never run as a page: the type is the sniffed one, and a browser may not guess another.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
}


@blp.route("")
class Files(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.arguments(UploadSchema, location="files")
    @blp.response(201, UploadedFileSchema)
    @blp.errors({413: "文件超过 10 MB（file_too_large）或请求体过大（payload_too_large）",
                 415: "不是 JPEG、PNG、WebP 或 MP4（unsupported_file_type）"})
    def post(self, args):
        """Upload a photo or video (multipart field `file`) for an issue or its resolution evidence."""
        upload = args["file"]
        return service.store(current_user(), upload.stream, upload.filename)


@blp.route("/<file_id>")
class FileById(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.alt_response(404, response=DEFAULT_ERROR, description="不存在或无权查看（两者同一答复）")
    @blp.doc(responses={"200": {
        "description": "The bytes, with the sniffed type; supports `Range` and `If-None-Match` (ETag = sha256).",
        "content": {content_type: BINARY for content_type in CONTENT_TYPES},
    }})
    def get(self, file_id):
        """The bytes of a file, for its uploader and for whoever may see the issue it is attached to."""
        upload = service.get_readable(current_user(), file_id)
        stream = wrap_file(request.environ, service.open_stream(upload))
        response = _file_response(stream, upload)
        # Byte ranges let phones seek in videos (iOS plays MP4 only from servers that honour Range).
        return response.make_conditional(request, accept_ranges=True, complete_length=upload.size)


def _file_response(stream, upload):
    response = current_app.response_class(stream, mimetype=upload.content_type, direct_passthrough=True)
    response.content_length = upload.size
    response.set_etag(upload.sha256)
    response.last_modified = upload.created_at
    response.headers.update(SECURITY_HEADERS)
    return response
