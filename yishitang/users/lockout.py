"""Password guessing against one account: growing waits after a few wrong passwords.

The per-address login limit (ratelimit.py) does not stop guesses spread over many addresses, so
each username also has a record in MongoDB, shared by every process: after `FREE_FAILURES` wrong
passwords in a row the account refuses sign-in for 30 s, then twice as long after each further
wrong password, up to 30 minutes. A correct password or an admin's password reset clears it.
Unknown usernames are counted the same way, so the answer says nothing about who exists.
"""

from __future__ import annotations

import datetime as dt
import math

import mongoengine as me
from pymongo.errors import DuplicateKeyError

from ..db import as_utc, update_and_get, utcnow
from ..errors import RateLimited

FREE_FAILURES = 5
FIRST_WAIT_S = 30
LONGEST_WAIT_S = 30 * 60
FORGET_AFTER = dt.timedelta(days=1)  # failures older than this (and no wait left) are forgotten


class LoginFailures(me.Document):
    meta = {
        "collection": "login_failures",
        "auto_create_index": False,
        "indexes": [{"fields": ["expires_at"], "expireAfterSeconds": 0}],
    }

    id = me.StringField(primary_key=True)  # the username as typed, lower-cased
    failures = me.IntField(default=0)
    locked_until = me.DateTimeField()
    expires_at = me.DateTimeField()


def _key(username: str) -> str:
    return username.strip().lower()


def wait_s(failures: int) -> int:
    """Seconds an account waits after this many wrong passwords in a row."""
    if failures < FREE_FAILURES:
        return 0
    return min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** min(failures - FREE_FAILURES, 16))


def refuse_if_locked(username: str, now: dt.datetime | None = None) -> None:
    """429 with Retry-After while the account waits; checked before the password is."""
    now = now or utcnow()
    record = LoginFailures._get_collection().find_one({"_id": _key(username)}, {"locked_until": 1})
    locked_until = as_utc(record.get("locked_until")) if record else None
    if locked_until and locked_until > now:
        seconds = max(1, math.ceil((locked_until - now).total_seconds()))
        raise RateLimited(f"密码错误次数过多，请 {seconds} 秒后再试，或请管理员重置密码", error="login_locked",
                          headers={"Retry-After": str(seconds)})


def record_failure(username: str, now: dt.datetime | None = None) -> None:
    """One more wrong password: counted atomically, so simultaneous guesses each count."""
    now = now or utcnow()
    collection = LoginFailures._get_collection()
    for _ in range(3):
        try:
            record = update_and_get(collection, {"_id": _key(username)},
                                    {"$inc": {"failures": 1}, "$set": {"expires_at": now + FORGET_AFTER}},
                                    {"_id": _key(username)}, upsert=True)
            break
        except DuplicateKeyError:  # two first failures raced to insert; the loser counts again
            continue
    else:
        raise RuntimeError(f"login failures of {username!r} could not be counted")
    seconds = wait_s(record["failures"])
    if seconds:
        until = now + dt.timedelta(seconds=seconds)
        collection.update_one({"_id": _key(username)},
                              {"$max": {"locked_until": until, "expires_at": until + FORGET_AFTER}})


def clear(username: str) -> None:
    LoginFailures._get_collection().delete_one({"_id": _key(username)})
