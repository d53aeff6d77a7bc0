"""People: sign-in, profiles, staff accounts, member assignment, and what others may see of them."""

from __future__ import annotations

import re

from bson import ObjectId
from flask import current_app
from mongoengine import NotUniqueError
from pymongo.errors import DuplicateKeyError
from werkzeug.security import check_password_hash, generate_password_hash

from .. import config, db
from ..auth import has_role
from ..db import get_or_404, given, object_id, utcnow
from ..errors import Conflict, DomainError, Forbidden, InvalidInput, Unauthorized, UpstreamUnavailable
from ..regions import service as regions
from ..studios import service as studios
from ..wechat import WeChatError, WeChatUnavailable
from . import lockout, tokens
from .models import RefreshToken, User

# A hash of a random password: checked when the username is unknown, so both paths take as long.
_DUMMY_HASH = generate_password_hash("no-such-user-padding")
HOME_KINDS = ("village", "community")
SCOPE_KINDS = ("district", "town", "street")


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


def view(user: User, viewer: User | None) -> dict:
    """What `viewer` may see of `user`: the phone in full only for the user themself and admins."""
    full = viewer is not None and (viewer.id == user.id or has_role(viewer, "admin"))
    return {
        "id": str(user.id),
        "display_name": user.display_name,
        "roles": list(user.roles),
        "username": user.username,
        "phone": user.phone if full else mask_phone(user.phone),
        "home_region_code": user.home_region_code,
        "studio_ids": [str(s) for s in user.studio_ids],
        "committee": user.committee,
        "scope_region_code": user.scope_region_code,
        "active": user.active,
        "created_at": user.created_at,
    }


def _wechat():
    return current_app.extensions["wechat"]


def _wechat_unavailable(exc) -> DomainError:
    return UpstreamUnavailable(
        "微信服务暂时不可用，请稍后重试", error="wechat_unavailable",
        headers={"Retry-After": config.settings().retry_after_s},
    )


# --- sign-in -----------------------------------------------------------------------------------

def wechat_login(code: str) -> dict:
    """`wx.login` code -> openid via jscode2session; a resident is created on first login."""
    try:
        session = _wechat().code2session(code)
    except WeChatUnavailable as exc:
        raise _wechat_unavailable(exc) from None
    except WeChatError as exc:
        if exc.errcode == 40226:
            raise Forbidden("该微信账号存在风险，暂时无法登录", error="wechat_user_blocked") from None
        if exc.errcode in (40029, 40163):
            raise Unauthorized("微信登录凭证无效或已使用，请重新登录", error="invalid_wechat_code") from None
        raise _wechat_unavailable(exc) from None
    user = _resident_for(session["openid"], session.get("unionid"))
    if not user.active:
        raise Unauthorized("账号已停用", error="account_disabled")
    return tokens.issue(user)


def _resident_for(openid: str, unionid: str | None) -> User:
    now = utcnow()
    on_insert = {"display_name": "微信用户" + openid[-4:], "roles": ["resident"], "active": True,
                 "token_version": 0, "studio_ids": [], "region_codes": [], "created_at": now}
    collection = User._get_collection()
    for _ in range(2):  # a concurrent first login may win the insert; then we read its document
        try:
            raw = db.update_and_get(
                collection, {"openid": openid},
                {"$setOnInsert": on_insert, "$set": {"updated_at": now, **({"unionid": unionid} if unionid else {})}},
                {"openid": openid}, upsert=True)
            return User._from_son(raw)
        except DuplicateKeyError:
            continue
    return User.objects.get(openid=openid)


def password_login(username: str, password: str) -> dict:
    lockout.refuse_if_locked(username)  # before the password: a locked account tells a guesser nothing
    user = User.objects(username=username).first()
    valid = check_password_hash(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    if user is None or not user.password_hash or not valid:
        lockout.record_failure(username)
        raise Unauthorized("用户名或密码错误", error="invalid_credentials")
    lockout.clear(username)
    if not user.active:
        raise Unauthorized("账号已停用", error="account_disabled")
    return tokens.issue(user)


def logout(user: User, family: str | None, refresh_token: str | None) -> None:
    if refresh_token:
        tokens.revoke_token_family(refresh_token, user.id)
    elif family:
        tokens.revoke_family(family)


# --- profiles ------------------------------------------------------------------------------------

def update_me(user: User, display_name=None, home_region_code=None, phone_code=None) -> User:
    if display_name is not None:
        user.display_name = display_name
    if home_region_code is not None:
        user.home_region_code = regions.get_for_field(home_region_code, "home_region_code", HOME_KINDS).code
    if phone_code is not None:
        user.phone = _phone_from_code(phone_code)
    _refresh_region_codes(user)
    user.save()
    return user


def _phone_from_code(code: str) -> str:
    try:
        return _wechat().phone_number(code)
    except WeChatUnavailable as exc:
        raise _wechat_unavailable(exc) from None
    except WeChatError as exc:
        if exc.errcode == 40029:
            raise InvalidInput("手机号授权已失效，请重新授权", error="invalid_phone_code",
                               errors={"phone_code": ["授权码无效或已使用"]}) from None
        raise _wechat_unavailable(exc) from None


def _refresh_region_codes(user: User) -> None:
    """Every region the user belongs to, with ancestors, for subtree filters."""
    codes: list[str] = []
    for code in (user.home_region_code, user.scope_region_code):
        if code:
            codes += regions.path_of(code)
    if user.studio_ids:
        for studio in studios.get_many(user.studio_ids):
            codes += studio.region_path
    user.region_codes = list(dict.fromkeys(codes))


# --- staff accounts (admin) ------------------------------------------------------------------------

def create_staff(username, password, display_name, roles, phone=None, committee=None,
                 studio_ids=None, scope_region_code=None) -> User:
    user = User(username=username, password_hash=generate_password_hash(password),
                display_name=display_name, roles=list(dict.fromkeys(roles)), phone=phone)
    _apply_duties(user, committee=committee, studio_ids=studio_ids or [], scope_region_code=scope_region_code)
    try:
        user.save(force_insert=True)
    except NotUniqueError:
        raise Conflict("用户名已被使用", error="username_taken") from None
    return user


def update_user(user: User, actor: User, **changes) -> User:
    if user.id == actor.id and (changes.get("active") is False or
                                ("roles" in changes and "admin" not in changes["roles"])):
        raise Conflict("不能停用自己或撤销自己的管理员角色", error="cannot_demote_self")
    new_password = "password" in changes
    if new_password:
        user.password_hash = generate_password_hash(changes.pop("password"))
    for key in ("display_name", "phone"):
        if key in changes:
            setattr(user, key, changes.pop(key))
    if "roles" in changes:
        user.roles = list(dict.fromkeys(changes.pop("roles")))
    active = changes.pop("active", None)
    _apply_duties(user, **changes)
    disable = active is False and user.active
    if disable:
        user.active = False
    elif active is True:
        user.active = True
    if disable or new_password:  # a new password ends every sign-in made with the old one
        user.token_version += 1  # access tokens already handed out stop working on their next use
    user.save()
    if disable or new_password:
        tokens.revoke_user(user.id)
    if new_password and user.username:
        lockout.clear(user.username)  # what a locked-out staff member asks an admin for
    return user


def _apply_duties(user: User, **duties) -> None:
    """Check and set committee, studios and scope against the user's roles."""
    if "committee" in duties:
        user.committee = duties["committee"]
    if "studio_ids" in duties:
        user.studio_ids = [s.id for s in studios.get_many(duties["studio_ids"])]
    if "scope_region_code" in duties:
        code = duties["scope_region_code"]
        user.scope_region_code = regions.get_for_field(code, "scope_region_code", SCOPE_KINDS).code if code else None
    if "coordinator" in user.roles and not user.scope_region_code:
        raise InvalidInput(errors={"scope_region_code": ["联络员必须指定管辖地区（镇街或区）"]})
    if "coordinator" not in user.roles:
        user.scope_region_code = None
    if "member" not in user.roles:
        if duties.get("studio_ids"):
            raise InvalidInput(errors={"studio_ids": ["只有委员可以分配到工作室"]})
        user.studio_ids = []
    _refresh_region_codes(user)


def get(user_id) -> User:
    return get_or_404(User, user_id)


def search(role=None, region=None, q=None, active=None):
    pattern = re.compile(re.escape(q)) if q else None
    by_name = {"$or": [{"display_name": pattern}, {"username": pattern}]} if pattern else None
    query = User.objects(**given(roles=role, region_codes=region, active=active, __raw__=by_name))
    return query.order_by("display_name", "id")


# --- studio members ---------------------------------------------------------------------------------

def member_ids_by_studio(studio_ids) -> dict:
    """studio id -> ids of its members, with one query for any number of studios."""
    return {sid: [m["id"] for m in found] for sid, found in members_by_studio(studio_ids, active_only=False).items()}


def members_by_studio(studio_ids, active_only=True) -> dict:
    """studio id -> its members as a studio page shows them `{id, display_name, committee}`
    (no phone, no username), with one query for any number of studios."""
    result = {sid: [] for sid in studio_ids}
    query = {"studio_ids": {"$in": list(studio_ids)}, "roles": "member", **({"active": True} if active_only else {})}
    for user in User._get_collection().find(query, {"studio_ids": 1, "display_name": 1, "committee": 1, "active": 1}):
        for sid in user.get("studio_ids") or ():
            if sid in result:
                result[sid].append({"id": str(user["_id"]), "display_name": user.get("display_name"),
                                    "committee": user.get("committee"), "active": user.get("active", True)})
    return result


def assign_members(studio, member_ids: list[str]) -> list[str]:
    """Make exactly these members the studio's members; idempotent, so a retry converges."""
    oids = [object_id(i) for i in dict.fromkeys(member_ids)]
    members = list(User.objects(id__in=oids, roles="member", active=True).only("id"))
    if len(members) != len(oids):
        raise InvalidInput(errors={"member_ids": ["包含不存在、已停用或不是委员的用户"]})
    User.objects(id__in=oids).update(add_to_set__studio_ids=studio.id, add_to_set__region_codes=studio.region_path)
    for former in User.objects(studio_ids=studio.id, id__nin=oids):
        former.studio_ids = [s for s in former.studio_ids if s != studio.id]
        _refresh_region_codes(former)
        former.save()
    return [str(o) for o in oids]


def active_by_id(user_ids) -> dict:
    """user id -> user, for the accounts among these that are active."""
    return {u.id: u for u in User.objects(id__in=list(user_ids), active=True)}


def display_names(user_ids) -> dict:
    """user id -> display name, with one query for any number of people."""
    return {u.id: u.display_name for u in User.objects(id__in=list(set(user_ids))).only("display_name")}


def active_member_ids(studio_id: ObjectId) -> list:
    """The studio's members in office: who answers for an issue at the grassroots tier."""
    return [u.id for u in User.objects(studio_ids=studio_id, roles="member", active=True).only("id")]


def active_coordinator_ids(scope_region_code: str) -> list:
    """Coordinators whose scope is exactly this township or district."""
    return [u.id for u in User.objects(scope_region_code=scope_region_code, roles="coordinator", active=True).only("id")]


def wechat_openid(user_id) -> str | None:
    """Where a WeChat message for the person goes; None for a disabled account or one without WeChat."""
    user = User.objects(id=user_id).only("openid", "active").first()
    return user.openid if user is not None and user.active and user.openid else None


# --- personal data (PIPL) ------------------------------------------------------------------------

FORGOTTEN = "已注销用户"  # the name left where a deleted account's name was
_personal_data = None  # (export, erase): registered by `yishitang.personal_data`, which gathers from every feature


def set_personal_data(export, erase) -> None:
    """The routes under /me serve what the top-level `personal_data` module gathers (it sits above
    the features it asks, so it registers here at app creation, as `auth.set_user_loader` does)."""
    global _personal_data
    _personal_data = (export, erase)


def export_personal_data(user: User) -> dict:
    return _personal_data[0](user)


def erase_personal_data(user: User) -> None:
    _personal_data[1](user)


def personal_data(user: User) -> dict:
    """What the users feature holds about a person: the profile and how many sign-ins are live."""
    return {"profile": {**view(user, user), "openid": user.openid, "unionid": user.unionid},
            "sign_ins": RefreshToken.objects(user_id=user.id, revoked_at=None, used_at=None).count()}


def forget(user: User, session=None) -> None:
    """The account stays as a husk (ids elsewhere point at it); phone, WeChat ids and sign-ins go."""
    now = utcnow()
    User._get_collection().update_one({"_id": user.id}, {
        "$set": {"display_name": FORGOTTEN, "active": False, "deleted_at": now, "updated_at": now,
                 "region_codes": [], "roles": ["resident"]},
        "$unset": {"phone": "", "openid": "", "unionid": "", "home_region_code": ""},
        "$inc": {"token_version": 1},
    }, session=session)
    db.after_commit(session, lambda: tokens.revoke_user(user.id))

