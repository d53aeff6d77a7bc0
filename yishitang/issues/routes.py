from flask import request
from flask.views import MethodView

from ..api import Blueprint, expected_version, paginate
from ..auth import ROLES, current_user, snapshot
from ..db import Row
from ..idempotency import describe as idempotency_header
from ..idempotency import idempotent
from ..ratelimit import limited
from . import service
from .schemas import (ActionSchema, FeedbackCreateSchema, IssueCreateSchema, IssueQuerySchema, IssueSchema,
                      IssueSummarySchema,
                      SimilarIssueSchema, SimilarQuerySchema, SupportStateSchema)

blp = Blueprint("issues", __name__, url_prefix="/api/v1/issues", description="民生议题：提出、受理、上报、办结、评价")


def with_etag(issue, status=200):
    return service.view(issue, current_user()), status, {"ETag": service.etag(issue)}


@blp.route("")
class Issues(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.arguments(IssueQuerySchema, location="query")
    @blp.response(200, IssueSummarySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List issues in the caller's reach, newest first.

        Residents: their own (and `board=1&studio=` for a studio's public board); members: their
        studios; coordinators: their scope; admins: all. `mine=1` lists one's own in any role.
        """
        user = current_user()
        page = paginate(service.search(user, **args), pagination_parameters)
        viewer = snapshot(user)
        return [service.view(Row(issue), viewer, with_timeline=False) for issue in page]

    @blp.login_required(roles=("resident",))
    @idempotency_header(blp)
    @idempotent
    @limited("issues", per="user", accepted_only=True)  # a refused issue (422, 404) uses no quota
    @blp.alt_response(429, response="DEFAULT_ERROR", description="too many issues raised (Retry-After)")
    @blp.arguments(IssueCreateSchema)
    @blp.response(201, IssueSchema)
    @blp.alt_response(422, response="DEFAULT_ERROR", description="validation_failed, content_risky")
    def post(self, args):
        """Raise an issue at a studio (resident); the text passes WeChat's content check first."""
        return with_etag(service.create(current_user(), **args), 201)


@blp.route("/similar")
@blp.login_required(roles=ROLES)
@blp.arguments(SimilarQuerySchema, location="query")
@blp.response(200, SimilarIssueSchema(many=True))
@blp.alt_response(404, response="DEFAULT_ERROR", description="the studio does not exist")
def similar(args):
    """Open issues of the studio that look like the same problem: support one instead of filing again."""
    user = current_user()
    return [{**service.view(issue, None, with_timeline=False), "similarity": score}
            for issue, score in service.similar(user, args["studio"], args["title"])]


@blp.route("/<issue_id>")
@blp.login_required(roles=ROLES)
@blp.response(200, IssueSchema)
def get_issue(issue_id):
    """One issue with its timeline, shaped for the caller; `ETag` carries its version."""
    return with_etag(service.get_visible(issue_id, current_user()))


@blp.route("/<issue_id>/actions", methods=["POST"])
@blp.login_required(roles=ROLES)
@idempotency_header(blp)
@idempotent
@blp.arguments(ActionSchema)
@blp.response(200, IssueSchema)
@blp.alt_response(409, response="DEFAULT_ERROR", description="invalid_transition and other state conflicts")
@blp.alt_response(412, response="DEFAULT_ERROR", description="If-Match names an older version")
def post_action(args, issue_id):
    """Act on an issue: accept, reject, escalate, start, resolve, withdraw, supervise, comment, close, approve, duplicate."""
    action = args.pop("action")
    issue = service.act(issue_id, current_user(), action, expected_version=expected_version(), **args)
    return with_etag(issue)


@blp.route("/<issue_id>/feedback", methods=["POST"])
@blp.login_required(roles=ROLES)
@idempotency_header(blp)
@idempotent
@blp.arguments(FeedbackCreateSchema)
@blp.response(200, IssueSchema)
def post_feedback(args, issue_id):
    """Rate a resolved issue (reporter): satisfied or basically satisfied closes it, unsatisfied reopens it."""
    issue = service.give_feedback(issue_id, current_user(), args["rating"], args.get("comment"),
                                  expected_version=expected_version())
    return with_etag(issue)


@blp.route("/<issue_id>/supports", methods=["POST", "DELETE"])
@blp.login_required(roles=("resident",))
@limited("supports", per="user")
@blp.alt_response(429, response="DEFAULT_ERROR", description="too many supports (Retry-After)")
@blp.response(200, SupportStateSchema)
def supports(issue_id):
    """附议: support a neighbour's issue (once per person), or take the support back (DELETE)."""
    if request.method == "DELETE":
        return service.withdraw_support(issue_id, current_user())
    return service.support(issue_id, current_user())
