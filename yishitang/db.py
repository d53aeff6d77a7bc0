"""Database connection, the base document and small helpers shared by every feature.

What a database does differently is decided here and nowhere else: feature code says what it
wants ("the newest issues of this studio, on this index"), this module decides how (whether to
name the index, no findAndModify on hot paths, what runs after a transaction commits).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import time

import mongoengine as me
import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from mongoengine.connection import get_db
from pymongo.uri_parser import parse_uri

from . import failpoints
from .errors import NotFound

ALIAS = "default"
# How long a transaction may keep retrying transient errors (set from the settings at connect).
_transaction_time_limit_s = 6.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def connect(settings) -> None:
    """Connect mongoengine (lazily: the driver only dials on first use)."""
    global _transaction_time_limit_s
    _transaction_time_limit_s = max(1.0, 2 * settings.mongodb_timeout_ms / 1000)
    me.disconnect(ALIAS)
    me.connect(
        host=settings.mongodb_uri,
        db=parse_uri(settings.mongodb_uri)["database"] or settings.mongodb_db,
        alias=ALIAS,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        retryWrites=True,
    )


def database():
    return get_db(ALIAS)


def client():
    return database().client


def ping() -> bool:
    try:
        client().admin.command("ping")
        return True
    except Exception:  # any failure means "not ready"
        return False


def update_and_get(collection, query, update, key: dict, *, upsert=False, session=None,
                   projection=None) -> dict | None:
    """What `find_one_and_update(..., return_document=AFTER)` answers, as `update_one` and then
    `find_one` by `key` (a filter naming the one document, e.g. its `_id`).

    Valid on any MongoDB; used on hot paths because SecantusDB 0.7 answers findAndModify with a
    collection scan while both of these ride an index. The read may see a later write: callers
    only need "at least as new as mine".
    """
    result = update_by_id(collection, query, update, upsert=upsert, session=session)
    if result.upserted_id is not None:
        return collection.find_one({"_id": result.upserted_id}, projection, session=session)
    if not result.matched_count:
        return None
    return collection.find_one(key, projection, session=session)


def next_in_sequence(collection, name: str, *, session=None) -> int:
    """The next number of a named counter (1, 2, ...), atomically: the one findAndModify left,
    since a number must be unique (an update and a later read could hand two callers the same)."""
    counter = collection.find_one_and_update({"_id": name}, {"$inc": {"seq": 1}}, upsert=True,
                                             return_document=pymongo.ReturnDocument.AFTER, session=session)
    return counter["seq"]


def hint_for(query: dict, index: list[tuple[str, int]]) -> list[tuple[str, int]] | None:
    """The index to name to the planner for `query`, or None to let the planner choose.

    SecantusDB's planner takes an index only when it covers every predicate field, never for
    `$all`, and not for an `$in` beside another predicate; there the index is named. Otherwise it
    is not, because SecantusDB walks a named index whole where its planner walks only the
    matching range. (MongoDB's planner does well either way.)
    """
    fields, operators = _predicates(query)
    planner_finds_it = (not fields - {name for name, _ in index} and "$all" not in operators
                        and ("$in" not in operators or len(fields) == 1))
    return None if planner_finds_it else index


def on_index(found, query: dict, index: list[tuple[str, int]]):
    """A cursor or queryset for `query`, read along `index` (see `hint_for`)."""
    hint = hint_for(query, index)
    return found.hint(hint) if hint else found


def _predicates(query: dict) -> tuple[set[str], set[str]]:
    """The fields a query filters on and the operators it uses on them."""
    fields, operators = set(), set()
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            for part in value:
                more_fields, more_operators = _predicates(part)
                fields |= more_fields
                operators |= more_operators
        else:
            fields.add(key)
            if isinstance(value, dict):
                operators |= {op for op in value if op.startswith("$")}
    return fields, operators


_after_commit: dict[int, list] = {}


def after_commit(session, announce) -> None:
    """Call `announce()` once the transaction of `session` has committed (never for an attempt
    that aborted or is retried: people are told only what stays); at once without a session."""
    if session is None:
        announce()
    else:
        _after_commit[id(session)].append(announce)


def update_by_id(collection, query: dict, update: dict, *, upsert=False, session=None):
    """`update_one` of the document `query["_id"]` names, conditional on the other fields of `query`.

    The _id index is named when other fields are there too (`hint_for`): SecantusDB's planner
    would plan `{_id, version, status}` as a scan. Unlike a hinted find, a hinted update does not
    walk the index whole (4 ms either way at 20 000 issues).
    """
    hint = hint_for(query, [("_id", 1)]) if "_id" in query else None
    return collection.update_one(query, update, upsert=upsert, session=session, hint=hint)


def run_in_transaction(write):
    """Run `write(session)` in a multi-document transaction, retried on transient errors.

    What `ClientSession.with_transaction` does, but retrying for at most twice the server
    selection timeout instead of 120 s: when the database cannot write (primary gone, server
    stopped mid-request) the caller gets a 503 in seconds rather than a request hanging for two
    minutes. (A `pymongo.timeout` around `with_transaction` would bound it too, but then its
    abort of the failed attempt has no time left and the transaction stays open on the server,
    holding its documents.)
    """
    deadline = time.monotonic() + _transaction_time_limit_s
    with client().start_session() as session:
        for attempt in itertools.count():
            if attempt:
                failpoints.reach("transaction.retry")  # tests see a guarded write meet another
                time.sleep(random.uniform(0, min(0.5, 0.005 * 2 ** attempt)))  # conflicting writers spread out
            session.start_transaction()
            announcements = _after_commit[id(session)] = []
            try:
                result = write(session)
                _commit(session, deadline)
                del _after_commit[id(session)]
                for announce in announcements:
                    announce()
                return result
            except BaseException as exc:
                _after_commit.pop(id(session), None)
                if session.in_transaction:
                    session.abort_transaction()  # never raises; frees what the attempt holds
                if not _transient(exc, "TransientTransactionError"):
                    raise
                if time.monotonic() >= deadline:
                    # Still failing: a database that cannot write now, a 503 at the edge.
                    raise pymongo.errors.NetworkTimeout(
                        f"transaction not committed within {_transaction_time_limit_s:.0f}s: {exc}") from exc


def _commit(session, deadline) -> None:
    while True:
        try:
            session.commit_transaction()
            return
        except pymongo.errors.PyMongoError as exc:
            expired = isinstance(exc, pymongo.errors.OperationFailure) and exc.code == 50
            if expired or not _transient(exc, "UnknownTransactionCommitResult") or time.monotonic() >= deadline:
                raise
            # The commit may have applied or not: committing again is safe.


def _transient(exc, label) -> bool:
    return isinstance(exc, pymongo.errors.PyMongoError) and exc.has_error_label(label)


def all_documents():
    """Every concrete Document class that has been imported."""
    seen, todo = [], list(me.Document.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not cls._meta.get("abstract") and cls not in seen:
            seen.append(cls)
    return seen


def ensure_indexes() -> None:
    """Create the indexes declared on the models (idempotent; called at start)."""
    for cls in all_documents():
        cls.ensure_indexes()


class Record(me.Document):
    """A stored document whose indexes are created at start (`ensure_indexes`), not on first use."""

    meta = {"abstract": True, "auto_create_index": False}


class BaseDocument(Record):
    """A record stamped with created_at / updated_at."""

    meta = {"abstract": True}

    created_at = me.DateTimeField(default=utcnow, required=True)
    updated_at = me.DateTimeField(default=utcnow, required=True)

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)


def object_id(value) -> ObjectId:
    """Parse a 24-hex id; anything else is simply unknown, hence 404."""
    try:
        return ObjectId(str(value))
    except (InvalidId, TypeError):
        raise NotFound() from None


def given(**conditions) -> dict:
    """The filters a search was given: those whose value is neither None nor an empty string."""
    return {field: value for field, value in conditions.items() if value is not None and value != ""}


def get_or_404(doc_cls, id_, **filters):
    doc = doc_cls.objects(id=object_id(id_), **filters).first()
    if doc is None:
        raise NotFound()
    return doc


class Row(dict):
    """A raw MongoDB document read with attribute access (`row.id` is `_id` where there is one),
    nested documents too.

    Hot read paths use these instead of mongoengine documents, whose construction costs more than
    the query; a field the document lacks reads as None.
    """

    __slots__ = ()

    def __getattr__(self, name):
        value = self.get("_id" if name == "id" and "_id" in self else name)
        if type(value) is dict:
            return Row(value)
        if type(value) is list and value and type(value[0]) is dict:
            return [Row(item) for item in value]
        return value


def iso(value: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601 with offset (stored times are UTC)."""
    return as_utc(value).isoformat() if value is not None else None


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """mongoengine hands back naive datetimes on some paths; they are always UTC here."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value
