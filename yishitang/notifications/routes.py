from flask.views import MethodView

from .. import pagination
from ..api import NEXT_CURSOR, Blueprint
from ..auth import ROLES, current_user
from . import service
from .schemas import InboxQuerySchema, NotificationSchema, ReadAllSchema, UnreadCountSchema

blp = Blueprint("notifications", __name__, url_prefix="/api/v1/notifications", description="站内消息")


@blp.route("")
class Inbox(MethodView):
    @blp.doc(operationId="list_notifications")
    @blp.login_required(roles=ROLES)
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, NotificationSchema(many=True),
                  headers={"X-Unread-Count": {"schema": {"type": "integer"}}, **NEXT_CURSOR})
    @blp.paginate()
    @blp.cursor_list()
    def get(self, args, pagination_parameters, cursor=None):
        """The caller's inbox, newest first; `X-Unread-Count` says how many are unread."""
        user = current_user()
        items = pagination.page(service.inbox(user, args["unread"]), pagination_parameters)
        return items, 200, {"X-Unread-Count": str(service.unread_count(user))}


@blp.route("/<notification_id>/read", methods=["POST"])
@blp.doc(operationId="mark_notification_read")
@blp.login_required(roles=ROLES)
@blp.response(200, NotificationSchema)
def mark_read(notification_id):
    """Mark one of the caller's notifications read (idempotent)."""
    return service.mark_read(current_user(), notification_id)


@blp.route("/read-all", methods=["POST"])
@blp.login_required(roles=ROLES)
@blp.response(200, ReadAllSchema)
def read_all():
    """Mark every unread notification of the caller read; says how many were marked."""
    return {"marked": service.mark_all_read(current_user()), "unread_count": 0}


@blp.route("/unread-count")
@blp.login_required(roles=ROLES)
@blp.response(200, UnreadCountSchema)
def unread_count():
    """How many of the caller's notifications are unread (for the tab bar badge)."""
    return {"unread_count": service.unread_count(current_user())}
