"""`Idempotency-Key`: a retried write from a flaky phone returns the first answer, creating nothing.

The first request with a key claims it (a unique index on user and key); the response is stored
with the claim, and any repeat within 24 h gets that stored response back. A failed request
releases its claim so that the retry can really run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from functools import wraps

import mongoengine as me
from flask import request
from pymongo.errors import DuplicateKeyError

from .auth import current_user
from .db import Record, utcnow
from .errors import Conflict, InvalidInput

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
TTL = dt.timedelta(hours=24)
# A claim without a stored answer older than this belongs to a request that died (or whose release
# the database could not take): no request runs this long, so a retry may take the key over.
CLAIM_LEASE = dt.timedelta(minutes=1)


class IdempotencyRecord(Record):
    meta = {
        "collection": "idempotency_keys",
        "indexes": [
            {"fields": ["user_id", "key"], "unique": True},
            {"fields": ["created_at"], "expireAfterSeconds": int(TTL.total_seconds())},
        ],
    }

    user_id = me.ObjectIdField(required=True)
    key = me.StringField(required=True)
    fingerprint = me.StringField(required=True)  # method, path and body: one key, one request
    status = me.IntField()  # None while the first request runs
    body = me.StringField()
    headers = me.DictField()
    created_at = me.DateTimeField(required=True)


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(record: IdempotencyRecord):
    from flask import current_app

    response = current_app.response_class(record.body, status=record.status, mimetype="application/json")
    for key, value in (record.headers or {}).items():
        response.headers[key] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


KEPT_HEADERS = ("ETag", "Location", "X-Pagination")


def _release(record: IdempotencyRecord) -> None:
    """Give the key back after a failed request; if the database cannot take even that, the
    claim lapses after CLAIM_LEASE, and the request's own error is the one the caller sees."""
    try:
        record.delete()
    except Exception:
        log.warning("could not release Idempotency-Key claim %s; it lapses in %s", record.id, CLAIM_LEASE)


def idempotent(view):
    """Decorate a write (outside its response serialisation, inside authentication)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        return _claimed(view, args, kwargs)  # a module function: `make mutate` reaches it at run time

    return wrapper


def _claimed(view, args, kwargs):
    """Run the view once per (user, key): claim the key first, replay what the first run answered."""
    key = request.headers.get(HEADER)
    if key is None:
        return view(*args, **kwargs)
    if not 1 <= len(key) <= 128:
        raise InvalidInput("Idempotency-Key 长度应为 1 到 128 个字符", error="invalid_idempotency_key")
    user, fingerprint = current_user(), _fingerprint()
    since = utcnow() - TTL
    try:
        record = IdempotencyRecord(user_id=user.id, key=key, fingerprint=fingerprint, created_at=utcnow())
        record.save(force_insert=True)
    except (DuplicateKeyError, me.NotUniqueError):
        earlier = IdempotencyRecord.objects(user_id=user.id, key=key).first()
        claimed_at = earlier.created_at.replace(tzinfo=dt.timezone.utc) if earlier else None
        if earlier is None or claimed_at < since:
            # Expired but not yet swept by the TTL monitor: start afresh.
            IdempotencyRecord.objects(user_id=user.id, key=key).delete()
            return _claimed(view, args, kwargs)
        if earlier.status is None and claimed_at < utcnow() - CLAIM_LEASE:
            # The request that claimed it never finished: take it over (once, if two retries race).
            IdempotencyRecord.objects(id=earlier.id, status=None).delete()
            return _claimed(view, args, kwargs)
        if earlier.fingerprint != fingerprint:
            raise Conflict("该 Idempotency-Key 已用于另一个请求", error="idempotency_key_reused")
        if earlier.status is None:
            raise Conflict("相同的请求正在处理中，请稍后重试", error="request_in_progress",
                           headers={"Retry-After": "1"})
        return _replay(earlier)
    try:
        response = view(*args, **kwargs)
    except BaseException:
        _release(record)  # the retry must be able to run for real
        raise
    if response.status_code >= 500:
        _release(record)
        return response
    record.update(
        set__status=response.status_code,
        set__body=response.get_data(as_text=True),
        set__headers={k: response.headers[k] for k in KEPT_HEADERS if k in response.headers},
    )
    return response


def describe(blp):
    """OpenAPI documentation of the header, for the routes that honour it."""
    return blp.doc(parameters=[{
        "in": "header", "name": HEADER, "required": False, "schema": {"type": "string", "maxLength": 128},
        "description": "Same key from the same user within 24 h returns the first response and creates nothing.",
    }])


def idempotent_route(blp):
    """`idempotent`, with the header documented in the route's OpenAPI."""

    def decorator(view):
        return describe(blp)(idempotent(view))

    return decorator

