from ..api import Blueprint, binary
from ..auth import current_user
from . import export, service
from .schemas import OverviewSchema, StatsQuerySchema

blp = Blueprint("stats", __name__, url_prefix="/api/v1/stats",
                description="统计：答复率、见面率、办结率、满意率（联络员、管理员）")
STAFF = ("coordinator", "admin")
DEFINITIONS = """
Issues counted: those created in the period (`from`..`to`, local dates in `time_zone`, both
inclusive; default this year to today) at any studio in the region's subtree. Each issue counts
once, in its own studio's township and studio, whatever tier it was escalated to.

- `response_rate` 答复率 = `responded_in_time` / `response_base`: accepted or rejected within the
  response deadline (`response_deadline_days`, or the category's own) after submission. Issues
  withdrawn or merged as a duplicate before any answer are left out; an unanswered issue still
  inside its deadline is `response_pending` and left out until it falls due.
- `meeting_rate` 见面率 = `met` / `accepted`: accepted issues with a recorded face-to-face visit
  (`comment` with `visit=true`) or discussed at a held consultation.
- `closure_rate` 办结率 = `closed` / `accepted`: accepted issues now `closed`. Issues closed as
  duplicates are in neither number (the original carries them).
- `satisfaction_rate` 满意率 = (`satisfied` + `basically_satisfied`) / `rated`: the reporter's
  latest rating; an "unsatisfied" stays counted while the reopened issue is handled again.
- `median_days_to_close`: median of `closed_at − created_at` over the `closed` issues, in days
  (1 decimal, half up). `overdue_open`: open issues past their deadline now. `escalated`: issues
  escalated at least once. `supervised`: issues under supervision (督办).

Rates are fractions 0..1 (4 decimals), null when the denominator is 0. Coordinators see their
scope's subtree (another region: 403 `scope_forbidden`); admins any region. The figures come from
daily rollups patched with every issue written since (`rollup.as_of`): always current, exact.
"""


def documented(summary: str):
    """Summary plus the shared definitions as the docstring (read by the decorators above it)."""
    def decorator(func):
        func.__doc__ = f"{summary}\n{DEFINITIONS}"
        return func
    return decorator


@blp.route("/overview")
@blp.doc(operationId="stats_overview")
@blp.login_required(roles=STAFF)
@blp.arguments(StatsQuerySchema, location="query")
@blp.alt_response(404, response="DEFAULT_ERROR", description="region_not_found")
@blp.response(200, OverviewSchema)
@documented("Response, meeting, closure and satisfaction rates of a region, per group and in total.")
def overview(args):
    return service.overview(current_user(), **args)


@blp.route("/overview.csv")
@blp.doc(operationId="stats_overview_csv")
@blp.login_required(roles=STAFF)
@blp.arguments(StatsQuerySchema, location="query")
@blp.alt_response(404, response="DEFAULT_ERROR", description="region_not_found")
@blp.doc(responses=binary("UTF-8 with BOM; Chinese headers; rates in percent with one decimal; last row 合计",
                          "text/csv"))
@documented("The overview as CSV (Excel opens it), with Chinese headers.")
def overview_csv(args):
    data = service.overview(current_user(), **args)
    return export.attachment(export.to_csv(data), "text/csv", data, "csv")  # werkzeug adds the charset


@blp.route("/overview.xlsx")
@blp.doc(operationId="stats_overview_xlsx")
@blp.login_required(roles=STAFF)
@blp.arguments(StatsQuerySchema, location="query")
@blp.alt_response(404, response="DEFAULT_ERROR", description="region_not_found")
@blp.doc(responses=binary("sheet 统计 (rates as fractions formatted 0.0%) and sheet 说明 (period, definitions)",
                          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
@documented("The overview as an Excel workbook, with Chinese headers and the definitions.")
def overview_xlsx(args):
    data = service.overview(current_user(), **args)
    return export.attachment(export.to_xlsx(data), XLSX, data, "xlsx")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
