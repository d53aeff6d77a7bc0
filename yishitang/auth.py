"""Verify bearer access tokens and check roles and region scope on the signed-in user.

Issuing and rotating tokens needs the user model, so it lives in `users/tokens.py`; the users
feature registers the loader that turns verified claims into a user (`set_user_loader`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt
from flask import g, request

from . import config
from .errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
ROLES = ("resident", "member", "coordinator", "admin")
STAFF_ROLES = ("member", "coordinator", "admin")

_user_loader = None


def set_user_loader(loader) -> None:
    """`loader(claims) -> user`; raises Unauthorized for unknown, disabled or revoked users."""
    global _user_loader
    _user_loader = loader


def decode_access_token(token: str) -> dict:
    settings = config.settings()
    try:
        claims = jwt.decode(
            token,
            settings.signing_key,
            algorithms=[ALGORITHM],  # pinned: "none" and other algorithms are refused
            options={"require": ["exp", "iat", "sub", "type"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("登录已过期，请重新登录", error="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("登录凭证无效，请重新登录", error="invalid_token") from None
    if claims.get("type") != "access":
        raise Unauthorized("登录凭证无效，请重新登录", error="invalid_token")
    return claims


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("请先登录", error="missing_token")
    return token.strip()


def authenticate(roles=None):
    """Load the caller from the bearer token; check one of `roles` when given."""
    claims = decode_access_token(bearer_token())
    user = _user_loader(claims)
    g.user, g.claims = user, claims
    if roles and not set(roles) & set(user.roles):
        raise Forbidden("当前角色无权执行此操作", error="role_forbidden")
    return user


def current_user():
    return g.get("user")


@dataclass(frozen=True)
class Snapshot:
    """The parts of a user that access checks read, as plain values: a list page checks them for
    every row, and reading mongoengine fields each time costs more than the rows themselves."""

    id: object
    roles: frozenset
    studio_ids: frozenset
    scope_region_code: str | None


def snapshot(user) -> Snapshot | None:
    if user is None:
        return None
    return Snapshot(user.id, frozenset(user.roles or ()), frozenset(user.studio_ids or ()),
                    getattr(user, "scope_region_code", None))


def has_role(user, *roles) -> bool:
    return bool(user) and bool(set(roles) & set(user.roles))


def covers(user, region_path) -> bool:
    """Whether the user's coordinator scope (or admin role) covers a region, given its path."""
    if has_role(user, "admin"):
        return True
    return has_role(user, "coordinator") and user.scope_region_code in (region_path or ())


def require_scope(user, region_path) -> None:
    if not covers(user, region_path):
        raise Forbidden("该地区不在您的管辖范围内", error="scope_forbidden")
