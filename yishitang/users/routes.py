from flask import g
from flask.views import MethodView

from ..api import Blueprint, paginate
from ..auth import ROLES, current_user
from ..ratelimit import limited
from . import service
from .schemas import (LogoutSchema, PersonalDataSchema, MePatchSchema, PasswordLoginSchema, RefreshSchema, StaffCreateSchema,
                      TokenSchema, UserPatchSchema, UserQuerySchema, UserSchema, WeChatLoginSchema)
from . import tokens

auth_blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="登录与令牌")
me_blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="当前用户")
users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="用户管理（管理员）")


def _signed_in(pair: dict) -> dict:
    return {**pair, "user": service.view(pair["user"], pair["user"])}


@auth_blp.route("/wechat-login", methods=["POST"])
@limited("login", per="ip")
@auth_blp.alt_response(429, response="DEFAULT_ERROR", description="too many logins from this address (Retry-After)")
@auth_blp.arguments(WeChatLoginSchema)
@auth_blp.response(200, TokenSchema)
@auth_blp.errors({401: "invalid_wechat_code, account_disabled", 503: "wechat_unavailable (Retry-After)"})
def wechat_login(args):
    """Sign in with a `wx.login` code; a resident account is created on first login."""
    return _signed_in(service.wechat_login(args["code"]))


@auth_blp.route("/password-login", methods=["POST"])
@limited("login", per="ip")
@auth_blp.alt_response(429, response="DEFAULT_ERROR",
                       description="rate_limited: too many logins from this address; login_locked: too many wrong "
                                   "passwords for this account, waits growing from 30 s to 30 min (Retry-After)")
@auth_blp.arguments(PasswordLoginSchema)
@auth_blp.response(200, TokenSchema)
@auth_blp.alt_response(401, response="DEFAULT_ERROR", description="invalid_credentials, account_disabled")
def password_login(args):
    """Sign in as staff with username and password."""
    return _signed_in(service.password_login(args["username"], args["password"]))


@auth_blp.route("/refresh", methods=["POST"])
@auth_blp.doc(operationId="refresh_tokens")
@auth_blp.arguments(RefreshSchema)
@auth_blp.response(200, TokenSchema)
@auth_blp.alt_response(401, response="DEFAULT_ERROR", description="invalid_refresh_token, refresh_token_reused (the whole sign-in is revoked)")
def refresh(args):
    """Trade a refresh token for a new pair; every refresh token works once."""
    return _signed_in(tokens.rotate(args["refresh_token"]))


@auth_blp.route("/logout", methods=["POST"])
@auth_blp.login_required(roles=ROLES)
@auth_blp.arguments(LogoutSchema, required=False)
@auth_blp.response(204)
def logout(args):
    """Revoke this sign-in's refresh tokens."""
    service.logout(current_user(), g.claims.get("fam"), (args or {}).get("refresh_token"))


@me_blp.route("")
class Me(MethodView):
    @me_blp.login_required(roles=ROLES)
    @me_blp.response(200, UserSchema)
    def get(self):
        """The signed-in user, with their own phone number in full."""
        return service.view(current_user(), current_user())

    @me_blp.login_required(roles=ROLES)
    @me_blp.arguments(MePatchSchema)
    @me_blp.response(200, UserSchema)
    def patch(self, args):
        """Change display name, home region, or phone (through a WeChat phone code)."""
        user = service.update_me(current_user(), **args)
        return service.view(user, user)

    @me_blp.login_required(roles=("resident",))
    @me_blp.response(204)
    def delete(self):
        """Delete the caller's resident account: their issues stay for the public record, anonymised."""
        service.erase_personal_data(current_user())


@me_blp.route("/export")
@me_blp.login_required(roles=ROLES)
@me_blp.response(200, PersonalDataSchema)
def export_me():
    """Everything stored about the caller, as one JSON document (PIPL: the right to a copy)."""
    return service.export_personal_data(current_user())


@users_blp.route("")
class Users(MethodView):
    @users_blp.list_route(UserQuerySchema, UserSchema, roles=("admin",))
    def get(self, args, pagination_parameters):
        """List users by role, region subtree, name; sorted by display name."""
        page = paginate(service.search(**args), pagination_parameters)
        return [service.view(u, current_user()) for u in page]

    @users_blp.login_required(roles=("admin",))
    @users_blp.arguments(StaffCreateSchema)
    @users_blp.response(201, UserSchema)
    def post(self, args):
        """Create a staff account (member, coordinator, admin)."""
        return service.view(service.create_staff(**args), current_user())


@users_blp.route("/<user_id>")
class UserById(MethodView):
    @users_blp.login_required(roles=("admin",))
    @users_blp.response(200, UserSchema)
    def get(self, user_id):
        """One user."""
        return service.view(service.get(user_id), current_user())

    @users_blp.login_required(roles=("admin",))
    @users_blp.arguments(UserPatchSchema)
    @users_blp.response(200, UserSchema)
    def patch(self, args, user_id):
        """Change roles, scope, studios, committee; `active: false` revokes every token at once."""
        user = service.update_user(service.get(user_id), current_user(), **args)
        return service.view(user, current_user())
