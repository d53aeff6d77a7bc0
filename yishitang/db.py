"""Database connection, the base document and small helpers shared by every feature."""

from __future__ import annotations

import datetime as dt

import mongoengine as me
from bson import ObjectId
from bson.errors import InvalidId
from mongoengine.connection import get_db
from pymongo.uri_parser import parse_uri

from .errors import NotFound

ALIAS = "default"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def connect(settings) -> None:
    """Connect mongoengine (lazily: the driver only dials on first use)."""
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


def run_in_transaction(write):
    """Run `write(session)` in a multi-document transaction (retried on transient errors)."""
    with client().start_session() as session:
        return session.with_transaction(write)


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


class BaseDocument(me.Document):
    """created_at / updated_at on every document; indexes are created at start, not on first use."""

    meta = {"abstract": True, "auto_create_index": False}

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
