from ..api import Blueprint
from ..auth import ROLES, current_user, snapshot
from . import service
from .schemas import FeedQuerySchema, FeedSchema

blp = Blueprint("feed", __name__, url_prefix="/api/v1/feed", description="居民首页：附近的工作室、议题与议事会")


@blp.route("")
@blp.doc(operationId="get_feed")
@blp.login_required(roles=ROLES)
@blp.arguments(FeedQuerySchema, location="query")
@blp.response(200, FeedSchema)
def get_feed(args):
    """A resident's home: the nearest studios, their newest public issues and their coming sessions.

    Issues are those of the studios' public boards (as `GET /issues?board=1` shows them), sessions
    those the caller may see (their home community's, those they are invited to).
    """
    user = current_user()
    return service.feed(user, snapshot(user), args["near"], args["studios"])
