from flask import current_app
from flask.views import MethodView

from .. import pagination
from ..api import DEFAULT_ERROR, STALE, Blueprint, binary, etag, expected_version, shown_by
from ..auth import ROLES, STAFF_ROLES, current_user
from . import access, checkin, minutes, presenters, queries, service
from .schemas import (CancelSchema, CheckinCodeSchema, CheckinCreateSchema, CheckinResultSchema,
                      ConsultationCreateSchema, ConsultationPatchSchema, ConsultationQuerySchema, ConsultationSchema,
                      MinutesInSchema)

DESCRIPTION = """民生议事堂：安排议事会、签到、纪要，推动议题办结。

Decisions where the contract is silent:
- Status: `planned` -> `held` at the first sign-in -> `minuted` when minutes are saved (also
  straight from `planned`: signing in is optional); only a `planned` session may be edited or
  cancelled.
- Seeing a session: admins all; coordinators their scope; members their studios; residents the
  studio of their home community; anyone the sessions they host, take part in as a member, are
  invited to, or whose linked issue they raised. Others get 404. Managing (schedule, edit,
  cancel): the studio's members, coordinators in scope, admins (403 for others who can see it).
- Times are returned in Asia/Shanghai (`+08:00`); a session lasts at most 12 h and is booked at
  most a year ahead. Sessions that only touch (one ends as the next starts) do not overlap.
- Sign-in opens 30 minutes before the start and closes at the end. The code changes every minute
  and is accepted for 5 minutes; it is an HMAC of the session and the minute.
- `ETag` is the session's version: edits, cancel and minutes bump it; sign-ins do not, so a host's
  open page stays valid while people sign in.
- Minutes corrections (author, 7 days) may reword summary and decisions; what moved the issues
  (`resolved`, `owner_unit`, `due_at`) is locked (409 `outcome_locked`), and no issue moves twice.
  An issue withdrawn by its reporter before the minutes keeps its outcome on record only.
"""

blp = Blueprint("consultations", __name__, url_prefix="/api/v1/consultations", description=DESCRIPTION)

ERROR = DEFAULT_ERROR


shown = shown_by(presenters.view)


@blp.route("")
class Consultations(MethodView):
    @blp.doc(operationId="list_consultations")
    @blp.list_route(ConsultationQuerySchema, ConsultationSchema, roles=ROLES, cursor=True)
    def get(self, args, pagination_parameters, cursor=None):
        """List sessions in the caller's reach, latest start first (`order=asc`: soonest first).

        Who sees a session: admins all; coordinators those of studios in their scope; members
        those of their studios; residents those of the studio of their home community; anyone
        the sessions they host, attend as a member, are invited to or whose linked issue they
        raised. `from`/`to` bound the start time (a date means that day in Asia/Shanghai);
        `region` is any ancestor region of the studio. Sorted by (starts_at, id).
        """
        user = current_user()
        order = queries.LATEST if args.get("order", "desc") == "desc" else queries.SOONEST
        return presenters.views(pagination.page(queries.search(user, **args), pagination_parameters, order), user)

    @blp.doc(operationId="create_consultation")
    @blp.command(ConsultationCreateSchema, ConsultationSchema, roles=STAFF_ROLES, status=201,
                 errors={409: "consultation_overlap, issue_not_schedulable", 422: "validation_failed, time_in_past"})
    def post(self, args):
        """Schedule a session at a studio; its linked issues move to `scheduled`.

        By a member of the studio, a coordinator whose scope covers it, or an admin. Times are
        ISO 8601 with offset, stored in UTC and returned in Asia/Shanghai. A studio holds no two
        overlapping sessions (cancelled ones aside); nothing is written when any check fails.
        Host, members and invitees are notified (`consultation_scheduled`); reporters of the
        linked issues through their issue.
        """
        return shown(service.create(current_user(), **args), 201)


@blp.route("/<consultation_id>")
class ConsultationById(MethodView):
    @blp.login_required(roles=ROLES)
    @blp.response(200, ConsultationSchema)
    def get(self, consultation_id):
        """One session, shaped for the caller; `ETag` carries its version.

        Residents see no invitee list, no sign-in list and no earlier minutes; no phone numbers
        are shown to anyone here.
        """
        c, seen = access.get_visible(consultation_id, current_user())
        return shown(c, seen=seen)

    @blp.login_required(roles=STAFF_ROLES)
    @blp.arguments(ConsultationPatchSchema)
    @blp.response(200, ConsultationSchema)
    @blp.errors({409: "consultation_not_editable, consultation_overlap, issue_not_schedulable", 412: STALE})
    def patch(self, args, consultation_id):
        """Edit or reschedule a planned session (same people as scheduling).

        `issue_ids` replaces the list: added issues are scheduled, removed ones go back to
        `accepted`. A change of topic, time, place or format tells everyone concerned
        (`consultation_changed`); people newly added are invited (`consultation_scheduled`).
        """
        return shown(service.update(consultation_id, current_user(), expected_version=expected_version(), **args))


@blp.route("/<consultation_id>/cancel", methods=["POST"])
@blp.doc(operationId="cancel_consultation")
@blp.command(CancelSchema, ConsultationSchema, roles=STAFF_ROLES,
             errors={409: "consultation_not_cancellable (held, minuted or cancelled)", 412: STALE})
def cancel(args, consultation_id):
    """Cancel a planned session: linked issues go back to `accepted`, everyone concerned is told."""
    return shown(service.cancel(consultation_id, current_user(), args["reason"], expected_version=expected_version()))


@blp.route("/<consultation_id>/checkin-code")
@blp.login_required(roles=STAFF_ROLES)
@blp.response(200, CheckinCodeSchema)
@blp.alt_response(409, response=ERROR, description="checkin_closed, consultation_cancelled")
def checkin_code(consultation_id):
    """The sign-in code to show as a QR code: a new one every minute, each accepted for 5 minutes.

    For the host and members of the session, members of the studio, coordinators in scope and
    admins; from 30 minutes before the start until the end. The code is an HMAC of the session
    and the minute, so a photo of it soon stops working.
    """
    return checkin.checkin_code(consultation_id, current_user())


@blp.route("/<consultation_id>/checkins", methods=["POST"])
@blp.doc(operationId="check_in")
@blp.command(CheckinCreateSchema, CheckinResultSchema, roles=ROLES, status=201,
             errors={409: "checkin_closed, already_checked_in, consultation_full, consultation_cancelled",
                     422: "invalid_checkin_code, checkin_code_expired"})
def post_checkin(args, consultation_id):
    """Sign in to a session with the code shown there (once per person, within the capacity).

    Anyone who can see the session may sign in. The first sign-in marks it `held`.
    """
    return checkin.check_in(consultation_id, current_user(), args["code"]), 201


@blp.route("/<consultation_id>/minutes", methods=["PUT"])
@blp.login_required(roles=STAFF_ROLES)
@blp.arguments(MinutesInSchema)
@blp.response(200, ConsultationSchema)
@blp.errors({409: "consultation_not_started, consultation_cancelled, outcome_locked, correction_window_closed",
             412: STALE,
             422: "outcome_issue_not_linked, outcome_missing, outcome_duplicate, validation_failed"})
def put_minutes(args, consultation_id):
    """Record the minutes: one outcome per linked issue; each issue moves to `consulted` or `resolved`.

    First minutes: by the host, a member of the session, a coordinator in scope or an admin,
    once the session has started; the session becomes `minuted`. Unresolved outcomes hand the
    issue to `owner_unit` with `due_at`. Corrections: only the author, within 7 days of the
    first minutes; earlier versions are kept in `minutes_history`; a correction may reword the
    summary and decisions but not change what moved an issue (`resolved`, `owner_unit`,
    `due_at`: 409 `outcome_locked`), and moves no issue again.
    """
    return shown(minutes.record_minutes(consultation_id, current_user(), expected_version=expected_version(), **args))


@blp.route("/<consultation_id>.ics")
@blp.doc(operationId="get_consultation_ics")
@blp.login_required(roles=ROLES)
@blp.doc(responses=binary("an iCalendar (RFC 5545) VEVENT, times in UTC", "text/calendar"))
def get_ics(consultation_id):
    """The session as an iCalendar event for phone calendars (`text/calendar`)."""
    c, _ = access.get_visible(consultation_id, current_user())
    response = current_app.response_class(presenters.calendar_text(c), content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="consultation-{c.id}.ics"'
    response.headers["ETag"] = etag(c.version)
    return response
