"""Rate limits shared by every process: fixed-window counters in MongoDB.

One counter document per (rule, caller, window), incremented atomically; MongoDB's TTL monitor
removes old windows. Every API worker and every container sees the same counts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import wraps

import mongoengine as me
from flask import request
from pymongo.errors import DuplicateKeyError

from . import config
from .auth import current_user
from .db import update_and_get, utcnow
from .errors import RateLimited


class RateCounter(me.Document):
    meta = {
        "collection": "rate_limits",
        "auto_create_index": False,
        "indexes": [{"fields": ["expires_at"], "expireAfterSeconds": 0}],
    }

    id = me.StringField(primary_key=True)  # "<rule>:<caller>:<window start>"
    count = me.IntField(default=0)
    expires_at = me.DateTimeField()


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_s: int
    per: str  # "ip" or "user"

    @classmethod
    def parse(cls, name: str, spec: str, per: str) -> "Rule":
        """`"10/3600"`: 10 per hour."""
        limit, _, window = spec.partition("/")
        return cls(name, int(limit), int(window), per)


def hit(rule: Rule, caller: str, now: dt.datetime | None = None, refund_refused: bool = False) -> str:
    """Count one request; over the limit is 429 with the seconds until the window ends.
    Returns the counter's id, for `refund`."""
    now = now or utcnow()
    start = math.floor(now.timestamp() / rule.window_s) * rule.window_s
    window_end = dt.datetime.fromtimestamp(start + rule.window_s, dt.timezone.utc)
    counter_id = f"{rule.name}:{caller}:{start}"
    count = _increment(counter_id, window_end + dt.timedelta(seconds=60))
    if count > rule.limit:
        if refund_refused:
            refund(counter_id)
        retry_after = max(1, math.ceil((window_end - now).total_seconds()))
        raise RateLimited(headers={"Retry-After": str(retry_after)})
    return counter_id


def refund(counter_id: str) -> None:
    """Give back one count: the request it stood for was not accepted."""
    RateCounter._get_collection().update_one({"_id": counter_id, "count": {"$gt": 0}}, {"$inc": {"count": -1}})


def _increment(counter_id: str, expires_at: dt.datetime) -> int:
    collection = RateCounter._get_collection()
    for _ in range(3):
        try:
            counter = update_and_get(collection, {"_id": counter_id},
                                     {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}},
                                     {"_id": counter_id}, upsert=True)
        except DuplicateKeyError:  # two first requests of a window raced to insert; the loser counts again
            continue
        if counter is not None:
            return counter["count"]
    raise RuntimeError(f"rate counter {counter_id} could not be incremented")


def client_ip() -> str:
    """The caller's address; behind trusted proxies ProxyFix has already put it in remote_addr."""
    return request.remote_addr or "unknown"


def limited(name: str, per: str, accepted_only: bool = False):
    """Decorate a view: its rule comes from the settings (`rate_limits[name]`, e.g. "10/3600").
    `accepted_only`: a request the view refuses (an error raised or answered) gives its count back,
    so rejected attempts never use up a quota; counting first keeps simultaneous requests in it."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            spec = config.settings().rate_limits.get(name)
            if not spec:
                return view(*args, **kwargs)
            caller = client_ip() if per == "ip" else str(current_user().id)
            counter_id = hit(Rule.parse(name, spec, per), caller, refund_refused=accepted_only)
            if not accepted_only:
                return view(*args, **kwargs)
            try:
                result = view(*args, **kwargs)
            except BaseException:
                refund(counter_id)
                raise
            if getattr(result, "status_code", 200) >= 400:
                refund(counter_id)
            return result

        return wrapper

    return decorator
