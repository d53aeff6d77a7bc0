"""Access and refresh tokens: issue, rotate with reuse detection, revoke.

Access tokens are short-lived JWTs (HS256). Refresh tokens are opaque random strings stored
by hash; each refresh marks the old one used and issues the next in the same family, so a
second use of any used token reveals theft and revokes the whole family.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

import jwt
from bson import ObjectId

from .. import config
from .. import db
from ..auth import ALGORITHM
from ..db import utcnow
from ..errors import Unauthorized
from .models import RefreshToken, User



def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_token(user: User, family: str, now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    claims = {
        "sub": str(user.id),
        "type": "access",
        "roles": list(user.roles),
        "tv": user.token_version,
        "fam": family,
        "iat": now,
        "exp": now + dt.timedelta(seconds=config.settings().access_token_ttl_s),
    }
    return jwt.encode(claims, config.settings().signing_key, algorithm=ALGORITHM)


def issue(user: User, family: str | None = None) -> dict:
    """A new access + refresh token pair; a new family unless rotating an existing one."""
    now = utcnow()
    family = family or uuid.uuid4().hex
    refresh = secrets.token_urlsafe(32)
    RefreshToken(
        id=_digest(refresh), user_id=user.id, family=family, token_version=user.token_version,
        issued_at=now, expires_at=now + dt.timedelta(seconds=config.settings().refresh_token_ttl_s),
    ).save(force_insert=True)
    return {
        "access_token": access_token(user, family, now),
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": config.settings().access_token_ttl_s,
        "user": user,
    }


def rotate(refresh: str) -> dict:
    """Trade a refresh token for a new pair; a reused one revokes its family."""
    now = utcnow()
    digest = _digest(refresh)
    claimed = db.update_and_get(  # one conditional update: of two concurrent refreshes one wins
        RefreshToken._get_collection(), {"_id": digest, "used_at": None, "revoked_at": None, "expires_at": {"$gt": now}},
        {"$set": {"used_at": now}}, {"_id": digest})
    if claimed is None:
        known = RefreshToken.objects(id=digest).first()
        if known is not None and (known.used_at or known.revoked_at):
            revoke_family(known.family)
            raise Unauthorized("登录凭证已失效，请重新登录", error="refresh_token_reused")
        raise Unauthorized("登录凭证无效或已过期，请重新登录", error="invalid_refresh_token")
    claimed = RefreshToken._from_son(claimed)
    user = User.objects(id=claimed.user_id).first()
    if user is None or not user.active or user.token_version != claimed.token_version:
        revoke_family(claimed.family)
        raise Unauthorized("账号已停用或登录已失效", error="account_disabled")
    return issue(user, claimed.family)


def revoke_family(family: str) -> None:
    RefreshToken.objects(family=family, revoked_at=None).update(set__revoked_at=utcnow())


def revoke_token_family(refresh: str, user_id) -> None:
    """Revoke the sign-in a refresh token belongs to, if it is the caller's."""
    known = RefreshToken.objects(id=_digest(refresh), user_id=user_id).first()
    if known is not None:
        revoke_family(known.family)


def revoke_user(user_id) -> None:
    RefreshToken.objects(user_id=user_id, revoked_at=None).update(set__revoked_at=utcnow())


def load_user(claims: dict) -> User:
    """The user loader for `auth`: unknown, disabled or outdated tokens are refused at once."""
    # Every request runs this: a plain find_one, without mongoengine's queryset building.
    raw = User._get_collection().find_one({"_id": ObjectId(claims["sub"])}) if _is_oid(claims["sub"]) else None
    user = User._from_son(raw) if raw is not None else None
    if user is not None and not user.active:
        raise Unauthorized("账号已停用", error="account_disabled")
    if user is None or claims.get("tv") != user.token_version:
        raise Unauthorized("登录已失效，请重新登录", error="token_revoked")
    return user


def _is_oid(value) -> bool:
    return isinstance(value, str) and len(value) == 24 and all(c in "0123456789abcdef" for c in value)
