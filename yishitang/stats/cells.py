"""The figures themselves: an issue into counters, counters into a row of rates.

Pure functions over plain issue documents (as stored), shared by the rollup job, the request-time
merge and the live path, so every path counts exactly alike. The definitions (API.md, "Stats"):

- response: an issue answered (accepted or rejected) within the response deadline of its
  creation counts; issues withdrawn, or merged as a duplicate, before any answer are left out;
  an unanswered issue still inside its deadline is "pending" and left out until it is due.
- meeting: accepted issues (not duplicates) with a first face-to-face contact (`met_at`).
- closure: accepted issues (not duplicates) that are `closed`, over accepted issues.
- satisfaction: the reporter's latest rating, over issues the reporter rated at least once
  (a later resolve does not erase an "unsatisfied").
- median days to close: the median of close durations counted in steps (a tenth of a day below
  10 days, half a day below 60, whole days beyond; a duration counts as its step's start), so a
  cell holds at most a few hundred step counts however many issues it sums.
- overdue: open issues (any open state) whose `due_at` has passed.

Counters are plain sums, so cells add up. What depends on the clock (unanswered issues pending or
late, open issues overdue) is kept as a count of due instants already passed plus the list of
those still ahead when the cell was last compacted (`compact`): the rollup job compacts a cell once
its earliest due instant passes, so lists hold only deadlines that were still ahead a job run ago,
the live workload, never the history.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from ..db import as_utc
from ..issues.workflow import OPEN

COUNTERS = ("received", "responded_in_time", "responded_late", "withdrawn_before_response",
            "duplicate_before_response", "accepted", "met", "closed", "rated", "satisfied",
            "basically_satisfied", "unsatisfied", "escalated", "supervised", "unanswered_passed", "open_passed")
# Due instants (epoch ms) whose "pending or late" depends on the clock: the response deadlines of
# unanswered issues and the deadlines of open issues, each with the count of those already passed.
LISTS = {"unanswered_due": "unanswered_passed", "open_due": "open_passed"}
HISTOGRAM = "close_steps"  # step start in tenths of a day (as a string key) -> closed issues

# What the tally reads of an issue: the projection of every query behind the figures.
ISSUE_FIELDS = {
    "created_at": 1, "studio_id": 1, "region_code": 1, "region_path": 1, "township_code": 1, "category": 1,
    "status": 1, "first_response_at": 1, "accepted_at": 1, "closed_at": 1, "withdrawn_at": 1, "met_at": 1,
    "duplicate_of": 1, "escalated_count": 1, "supervised": 1, "feedback.rating": 1, "due_at": 1,
    "timeline.action": 1, "timeline.to_status": 1,
}

RATES = {  # rate -> (numerator, denominator) as computed by `row`
    "response_rate": ("responded_in_time", "response_base"),
    "meeting_rate": ("met", "accepted"),
    "closure_rate": ("closed", "accepted"),
    "satisfaction_rate": ("satisfied_total", "rated"),
}
MS_PER_DAY = 86_400_000


def new_counters() -> dict:
    return {**{name: 0 for name in COUNTERS}, **{name: [] for name in LISTS}, HISTOGRAM: {}}


def close_step(duration_ms: int) -> int:
    """The start of a close duration's step, in tenths of a day (see the module docstring)."""
    tenths = max(duration_ms, 0) * 10 // MS_PER_DAY
    if tenths < 100:
        return tenths
    if tenths < 600:
        return tenths - tenths % 5
    return tenths - tenths % 10


def epoch_ms(at: dt.datetime) -> int:
    return int(as_utc(at).timestamp() * 1000)


def local_day(at: dt.datetime, tz: ZoneInfo) -> str:
    return as_utc(at).astimezone(tz).date().isoformat()


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant a local calendar day begins."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.timezone.utc)


def latest_rating(issue: dict) -> str | None:
    """The reporter's last rating: a re-resolve clears `feedback`, the timeline keeps the verdict."""
    last = None
    for entry in issue.get("timeline") or ():
        if entry.get("action") == "feedback":
            last = entry
    if last is None:
        return None
    if last.get("to_status") == "closed":  # satisfied or basically satisfied: closed stays closed
        return (issue.get("feedback") or {}).get("rating") or "satisfied"
    return "unsatisfied"


def tally(counters: dict, issue: dict, deadline: dt.timedelta) -> None:
    """Add one issue to a category's counters; `deadline` is its category's response deadline."""
    created = as_utc(issue["created_at"])
    duplicate = issue.get("duplicate_of") is not None
    counters["received"] += 1

    answered = issue.get("first_response_at")
    if answered is not None:
        in_time = as_utc(answered) - created <= deadline
        counters["responded_in_time" if in_time else "responded_late"] += 1
    elif issue.get("withdrawn_at") is not None:
        counters["withdrawn_before_response"] += 1
    elif duplicate:
        counters["duplicate_before_response"] += 1
    else:
        _due(counters, "unanswered_due", epoch_ms(created + deadline))

    if issue.get("accepted_at") is not None and not duplicate:
        counters["accepted"] += 1
        if issue.get("met_at") is not None:
            counters["met"] += 1
        if issue.get("status") == "closed":
            counters["closed"] += 1
            closed = issue.get("closed_at")
            if closed is not None:
                step = str(close_step(epoch_ms(closed) - epoch_ms(created)))
                counters[HISTOGRAM][step] = counters[HISTOGRAM].get(step, 0) + 1
    if issue.get("status") in OPEN and issue.get("due_at") is not None:
        _due(counters, "open_due", epoch_ms(issue["due_at"]))

    rating = latest_rating(issue)
    if rating is not None:
        counters["rated"] += 1
        counters[rating] += 1
    if (issue.get("escalated_count") or 0) > 0:
        counters["escalated"] += 1
    if issue.get("supervised"):
        counters["supervised"] += 1


def _due(counters: dict, name: str, due_ms: int) -> None:
    counters[name].append(due_ms)


def add(into: dict, counters: dict) -> None:
    for name in COUNTERS:
        into[name] += counters.get(name, 0)
    for name in LISTS:
        into[name].extend(counters.get(name, ()))
    steps = into[HISTOGRAM]
    for step, count in counters.get(HISTOGRAM, {}).items():
        steps[step] = steps.get(step, 0) + count


def compact(counters: dict, cutoff_ms: int) -> None:
    """Count the due instants before `cutoff_ms` as passed and keep only the later ones listed."""
    for name, passed in LISTS.items():
        ahead = [due for due in counters[name] if due >= cutoff_ms]
        counters[passed] += len(counters[name]) - len(ahead)
        counters[name] = ahead


def next_due(by_category: dict) -> int | None:
    """The earliest listed due instant of a cell: when it next needs compacting."""
    return min((due for counters in by_category.values() for name in LISTS for due in counters[name]), default=None)


def settle(counters: dict, now_ms: int) -> dict:
    """The counters with the clock applied (`now_ms` not before the cell's compaction): unanswered
    issues late or pending and open issues overdue counted, lists dropped."""
    settled = {name: counters.get(name, 0) for name in COUNTERS}
    settled[HISTOGRAM] = counters.get(HISTOGRAM, {})
    unanswered = counters.get("unanswered_due", ())
    late = sum(1 for due in unanswered if due < now_ms)
    settled["unanswered_late"] = settled["unanswered_passed"] + late
    settled["unanswered_pending"] = len(unanswered) - late
    settled["overdue_open"] = settled["open_passed"] + sum(1 for due in counters.get("open_due", ()) if due < now_ms)
    return settled


SETTLED = (*COUNTERS, "unanswered_late", "unanswered_pending", "overdue_open")


def new_settled() -> dict:
    return {**{name: 0 for name in SETTLED}, HISTOGRAM: {}}


def add_settled(into: dict, settled: dict) -> None:
    for name in SETTLED:
        into[name] += settled[name]
    steps = into[HISTOGRAM]
    for step, count in settled[HISTOGRAM].items():
        steps[step] = steps.get(step, 0) + count


def rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def median_days(steps: dict) -> float | None:
    """The median of the close steps (the mean of the middle two for an even count), in days."""
    total = sum(steps.values())
    if not total:
        return None
    middle, seen, ordered = [], 0, sorted((int(step), count) for step, count in steps.items())
    wanted = [(total - 1) // 2, total // 2]  # 0-based positions of the middle value(s)
    for step, count in ordered:
        while wanted and wanted[0] < seen + count:
            middle.append(step)
            wanted.pop(0)
        seen += count
    days = Decimal(sum(middle)) / len(middle) / 10
    return float(days.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def row(settled: dict) -> dict:
    """The published figures of one group (or the totals) from its settled counters."""
    late = settled["unanswered_late"]
    pending = settled["unanswered_pending"]
    raw = {name: settled[name] for name in COUNTERS}
    raw["response_base"] = raw["responded_in_time"] + raw["responded_late"] + late
    raw["response_pending"] = pending
    raw["satisfied_total"] = raw["satisfied"] + raw["basically_satisfied"]
    rates = {name: rate(raw[num], raw[den]) for name, (num, den) in RATES.items()}
    return {
        "received": raw["received"],
        **rates,
        "median_days_to_close": median_days(settled[HISTOGRAM]),
        "overdue_open": settled["overdue_open"],
        "escalated": raw["escalated"],
        "supervised": raw["supervised"],
        "responded_in_time": raw["responded_in_time"],
        "response_base": raw["response_base"],
        "response_pending": pending,
        "withdrawn_before_response": raw["withdrawn_before_response"],
        "duplicate_before_response": raw["duplicate_before_response"],
        "accepted": raw["accepted"],
        "met": raw["met"],
        "closed": raw["closed"],
        "rated": raw["rated"],
        "satisfied": raw["satisfied"],
        "basically_satisfied": raw["basically_satisfied"],
        "unsatisfied": raw["unsatisfied"],
    }
