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
"""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from ..db import as_utc

COUNTERS = ("received", "responded_in_time", "responded_late", "withdrawn_before_response",
            "duplicate_before_response", "accepted", "met", "closed", "rated", "satisfied",
            "basically_satisfied", "unsatisfied", "escalated", "supervised")
# Per-issue values kept as lists: the response due instants (epoch ms) of issues still unanswered,
# whose "pending or late" depends on the clock; close durations (ms) for an exact median.
LISTS = ("unanswered_due", "close_ms")

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
    return {**{name: 0 for name in COUNTERS}, **{name: [] for name in LISTS}}


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
        counters["unanswered_due"].append(epoch_ms(created + deadline))

    if issue.get("accepted_at") is not None and not duplicate:
        counters["accepted"] += 1
        if issue.get("met_at") is not None:
            counters["met"] += 1
        if issue.get("status") == "closed":
            counters["closed"] += 1
            closed = issue.get("closed_at")
            if closed is not None:
                counters["close_ms"].append(epoch_ms(closed) - epoch_ms(created))

    rating = latest_rating(issue)
    if rating is not None:
        counters["rated"] += 1
        counters[rating] += 1
    if (issue.get("escalated_count") or 0) > 0:
        counters["escalated"] += 1
    if issue.get("supervised"):
        counters["supervised"] += 1


def add(into: dict, counters: dict) -> None:
    for name in COUNTERS:
        into[name] += counters.get(name, 0)
    for name in LISTS:
        into[name].extend(counters.get(name, ()))


def rate(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def median_days(durations_ms: list[int]) -> float | None:
    if not durations_ms:
        return None
    days = Decimal(str(statistics.median(durations_ms))) / MS_PER_DAY
    return float(days.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def row(counters: dict, *, now: dt.datetime, overdue_open: int) -> dict:
    """The published figures of one group (or the totals) from its summed counters."""
    now_ms = epoch_ms(now)
    late = sum(1 for due in counters["unanswered_due"] if now_ms > due)
    pending = len(counters["unanswered_due"]) - late
    raw = {name: counters[name] for name in COUNTERS}
    raw["response_base"] = raw["responded_in_time"] + raw["responded_late"] + late
    raw["response_pending"] = pending
    raw["satisfied_total"] = raw["satisfied"] + raw["basically_satisfied"]
    rates = {name: rate(raw[num], raw[den]) for name, (num, den) in RATES.items()}
    return {
        "received": raw["received"],
        **rates,
        "median_days_to_close": median_days(counters["close_ms"]),
        "overdue_open": overdue_open,
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
