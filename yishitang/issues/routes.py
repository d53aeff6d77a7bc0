from flask import request
from flask.views import MethodView

from .. import pagination
from ..api import STALE, Blueprint, expected_version, shown_by
from ..auth import ROLES, current_user, snapshot
from ..db import Row
from ..idempotency import idempotent_route
from ..ratelimit import limited
from . import access, presenters, queries, service
from .schemas import (ActionSchema, FeedbackCreateSchema, IssueCreateSchema, IssueQuerySchema, IssueSchema,
                      IssueSummarySchema,
                      SimilarIssueSchema, SimilarQuerySchema, SupportStateSchema)

blp = Blueprint("issues", __name__, url_prefix="/api/v1/issues", description="民生议题：提出、受理、上报、办结、评价")


shown = shown_by(presenters.view)


@blp.route("")
class Issues(MethodView):
    @blp.doc(operationId="list_issues")
    @blp.list_route(IssueQuerySchema, IssueSummarySchema, roles=ROLES, cursor=True)
    def get(self, args, pagination_parameters, cursor=None):
        """List issues in the caller's reach, newest first.

        Residents: their own (and `board=1&studio=` for a studio's public board); members: their
        studios; coordinators: their scope; admins: all. `mine=1` lists one's own in any role.
        """
        user = current_user()
        page = pagination.page(queries.search(user, **args), pagination_parameters)
        return presenters.page([Row(issue) for issue in page], snapshot(user))

    @blp.doc(operationId="create_issue")
    @blp.login_required(roles=("resident",))
    @idempotent_route(blp)
    @limited("issues", per="user", accepted_only=True)  # a refused issue (422, 404) uses no quota
    @blp.alt_response(429, response="DEFAULT_ERROR", description="too many issues raised (Retry-After)")
    @blp.arguments(IssueCreateSchema)
    @blp.response(201, IssueSchema)
    @blp.alt_response(422, response="DEFAULT_ERROR", description="validation_failed, content_risky")
    def post(self, args):
        """Raise an issue at a studio (resident); the text passes WeChat's content check first."""
        return shown(service.create(current_user(), **args), 201)


@blp.route("/similar")
@blp.doc(operationId="similar_issues")
@blp.login_required(roles=ROLES)
@blp.arguments(SimilarQuerySchema, location="query")
@blp.response(200, SimilarIssueSchema(many=True))
@blp.alt_response(404, response="DEFAULT_ERROR", description="the studio does not exist")
def similar(args):
    """Open issues of the studio that look like the same problem: support one instead of filing again."""
    user = current_user()
    return [{**presenters.view(issue, None, with_timeline=False), "similarity": score}
            for issue, score in queries.similar(user, args["studio"], args["title"])]


@blp.route("/<issue_id>")
@blp.login_required(roles=ROLES)
@blp.response(200, IssueSchema)
def get_issue(issue_id):
    """One issue with its timeline, shaped for the caller; `ETag` carries its version."""
    issue, seen = access.get_visible(issue_id, current_user())
    return shown(issue, seen=seen)


@blp.route("/<issue_id>/actions", methods=["POST"])
@blp.doc(operationId="act_on_issue")
@blp.command(ActionSchema, IssueSchema, roles=ROLES,
             errors={409: "invalid_transition and other state conflicts", 412: STALE})
def post_action(args, issue_id):
    """Act on an issue: accept, reject, escalate, start, resolve, withdraw, supervise, comment, close, approve, duplicate."""
    action = args.pop("action")
    issue = service.act(issue_id, current_user(), action, expected_version=expected_version(), **args)
    return shown(issue)


@blp.route("/<issue_id>/feedback", methods=["POST"])
@blp.doc(operationId="rate_issue")
@blp.command(FeedbackCreateSchema, IssueSchema, roles=ROLES,
             errors={409: "invalid_transition: the issue is not waiting for a rating", 412: STALE})
def post_feedback(args, issue_id):
    """Rate a resolved issue (reporter): satisfied or basically satisfied closes it, unsatisfied reopens it."""
    issue = service.give_feedback(issue_id, current_user(), args["rating"], args.get("comment"),
                                  expected_version=expected_version())
    return shown(issue)


@blp.route("/<issue_id>/supports", methods=["POST", "DELETE"])
@blp.login_required(roles=("resident",))
@limited("supports", per="user")
@blp.alt_response(429, response="DEFAULT_ERROR", description="too many supports (Retry-After)")
@blp.errors({409: "own_issue, issue_closed"})
@blp.response(200, SupportStateSchema)
def supports(issue_id):
    """附议: support a neighbour's issue (once per person), or take the support back (DELETE)."""
    if request.method == "DELETE":
        return service.withdraw_support(issue_id, current_user())
    return service.support(issue_id, current_user())
