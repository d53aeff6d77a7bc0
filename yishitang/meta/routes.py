from ..api import Blueprint
from . import service
from .schemas import MetaSchema

blp = Blueprint("meta", __name__, url_prefix="/api/v1/meta", description="小程序启动所需：标签、订阅消息模板、上传限制")


@blp.route("")
@blp.doc(operationId="get_meta")
@blp.response(200, MetaSchema)
def get_meta():
    """Labels of every enum, subscribe template ids, upload limits and the server time (no sign-in)."""
    return service.meta()
