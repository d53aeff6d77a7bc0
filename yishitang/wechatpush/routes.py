import marshmallow as ma
from flask import current_app, request

from ..api import DEFAULT_ERROR, Blueprint
from . import service

blp = Blueprint("wechat", __name__, url_prefix="/api/v1/wechat", description="微信消息推送（媒体内容安全检测结果）")
TEXT = {"schema": {"type": "string"}}


class PushQuerySchema(ma.Schema):
    signature = ma.fields.String(required=True, metadata={"description": "sha1 of sorted [Token, timestamp, nonce]"})
    timestamp = ma.fields.String(required=True)
    nonce = ma.fields.String(required=True)
    echostr = ma.fields.String(metadata={"description": "GET only: echoed back once the signature holds"})
    openid = ma.fields.String(metadata={"description": "sent by WeChat with some events; unused"})


def _text(body: str):
    return current_app.response_class(body, mimetype="text/plain")


@blp.route("/events", methods=["GET", "POST"])
@blp.arguments(PushQuerySchema, location="query", as_kwargs=True)
@blp.doc(responses={"200": {"description": "`echostr` (GET) or `success` (POST)", "content": {"text/plain": TEXT}}})
@blp.alt_response(403, response=DEFAULT_ERROR, description="bad_signature: not signed with WECHAT_PUSH_TOKEN")
@blp.alt_response(422, response=DEFAULT_ERROR, description="missing signature fields, or a body that is not a JSON object")
def events(**args):
    """WeChat's message push: GET verifies the URL, POST delivers events (`wxa_media_check`).

    Configure in the mini-program console: URL `https://<host>/api/v1/wechat/events`, Token =
    `WECHAT_PUSH_TOKEN`, data format JSON, plain mode. A push with a bad signature changes
    nothing; a repeated push (WeChat retries) is recorded once.
    """
    service.verify(args)
    if request.method == "GET":
        return _text(args.get("echostr") or "")
    service.receive(request.get_json(silent=True))
    return _text("success")
