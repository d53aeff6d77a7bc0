from flask import current_app, request
from flask.views import MethodView
from werkzeug.wsgi import wrap_file

from .. import auth
from ..api import DEFAULT_ERROR, Blueprint, binary
from ..auth import ROLES, current_user
from . import links, service
from .models import CONTENT_TYPES
from .schemas import LinkQuerySchema, UploadedFileSchema, UploadSchema

blp = Blueprint("files", __name__, url_prefix="/api/v1/files", description="照片与视频")

# Served files never run as a page: the type is the sniffed one, and a browser may not guess another.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
}
# A bearer token or a signed link: `<image src>` cannot send a header.
BEARER_OR_LINK = [{"bearerAuth": []}, {}]


@blp.route("")
class Files(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.arguments(UploadSchema, location="files")
    @blp.response(201, UploadedFileSchema)
    @blp.errors({413: "文件超过 10 MB（file_too_large）或请求体过大（payload_too_large）",
                 415: "不是 JPEG、PNG、WebP 或 MP4（unsupported_file_type）",
                 422: "图片超过 5000 万像素（image_too_large），空文件（empty_file）"})
    def post(self, args):
        """Upload a photo or video (multipart field `file`) for an issue or its resolution evidence.

        Photos get a JPEG thumbnail (at most 320 px) and go to WeChat's asynchronous media check;
        they reach the public board once WeChat's verdict is `pass`.
        """
        upload = args["file"]
        return service.present(service.store(current_user(), upload.stream, upload.filename))


def _served(file_id, variant):
    """The file behind a signed link (`exp` + `sig`), or one the bearer may read."""
    if "sig" in request.args or "exp" in request.args:
        links.verify(file_id, variant, request.args.get("exp"), request.args.get("sig"))
        return service.get(file_id)
    auth.authenticate(ROLES)
    return service.get_readable(current_user(), file_id)


def _documented(func):
    func = blp.arguments(LinkQuerySchema, location="query", as_kwargs=True)(func)
    func = blp.doc(security=BEARER_OR_LINK)(func)
    func = blp.alt_response(401, response=DEFAULT_ERROR, description="no link and no valid token")(func)
    func = blp.alt_response(403, response=DEFAULT_ERROR, description="link_expired, bad_signature")(func)
    func = blp.alt_response(404, response=DEFAULT_ERROR, description="不存在或无权查看（两者同一答复）")(func)
    func = blp.alt_response(304, description="not modified (If-None-Match)")(func)
    return func


@blp.route("/<file_id>")
class FileById(MethodView):
    @blp.doc(responses={
        **binary("The bytes, with the sniffed type; supports `Range` and `If-None-Match` (ETag = sha256).",
                 *CONTENT_TYPES),
        **binary("the requested byte range (`Range`)", *CONTENT_TYPES, status=206)})
    def get(self, file_id, **_link):
        """The bytes of a file: by signed link (`url`), or for the uploader and whoever may see its issue."""
        upload = _served(file_id, "file")
        stream = wrap_file(request.environ, service.open_stream(upload))
        response = _file_response(stream, upload.content_type, upload.size, upload.sha256, upload)
        # Byte ranges let phones seek in videos (iOS plays MP4 only from servers that honour Range).
        return response.make_conditional(request, accept_ranges=True, complete_length=upload.size)

    get = _documented(get)


@blp.route("/<file_id>/thumb")
class ThumbById(MethodView):
    @blp.doc(operationId="get_thumbnail", responses=binary(
        "A JPEG of at most 320 px; 404 for videos and images Pillow could not read.", "image/jpeg"))
    def get(self, file_id, **_link):
        """A photo's thumbnail: by signed link (`thumb_url`), or for those who may read the photo."""
        upload = _served(file_id, "thumb")
        stream = wrap_file(request.environ, service.open_thumbnail(upload))
        response = _file_response(stream, "image/jpeg", upload.thumb_size, f"{upload.sha256}-thumb", upload)
        return response.make_conditional(request)

    get = _documented(get)


def _file_response(stream, content_type, size, etag, upload):
    response = current_app.response_class(stream, mimetype=content_type, direct_passthrough=True)
    response.content_length = size
    response.set_etag(etag)
    response.last_modified = upload.created_at
    response.headers.update(SECURITY_HEADERS)
    return response
